/** The client API's OpenAPI 3.1 document (served at /api/v1/openapi.json). Kept next to the routes it describes. */
const problem = { $ref: '#/components/responses/Problem' };
const errors = { 400: problem, 401: problem, 403: problem, 404: problem, 429: problem, 503: problem };
const appId = { name: 'id', in: 'path', required: true, schema: { type: 'string', maxLength: 128 } };
const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const appSchema = {
  type: 'object',
  required: ['id', 'name', 'space', 'updatedAt', 'hasData'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    space: { type: 'string' },
    updatedAt: { type: 'string', format: 'date-time' },
    hasData: { type: 'boolean' },
  },
};

const cell = { type: ['string', 'number', 'boolean', 'null'] };
const selection = {
  oneOf: [
    {
      type: 'object',
      required: ['field', 'values'],
      properties: { field: { type: 'string' }, values: { type: 'array', items: cell, maxItems: 1000 } },
    },
    {
      type: 'object',
      required: ['field', 'range'],
      properties: {
        field: { type: 'string' },
        range: {
          type: 'object',
          properties: { min: { type: ['number', 'string'] }, max: { type: ['number', 'string'] } },
        },
      },
    },
    {
      type: 'object',
      required: ['field', 'contains'],
      properties: { field: { type: 'string' }, contains: { type: 'string', maxLength: 256 } },
    },
  ],
};
const selectionsParam = {
  name: 'selections',
  in: 'query',
  description: 'JSON list of selections (as in a query)',
  schema: { type: 'string' },
};
const engineErrors = { ...errors, 409: problem, 422: problem };

export function openApiDocument(version: string) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Fort client API',
      version,
      description:
        'Customer data served on the private network to browsers holding a cloud-issued user token. Every call is authorised by the cloud (cached) and audited.',
    },
    security: [{ bearer: [] }],
    paths: {
      '/api/v1/apps': {
        get: {
          summary: 'Apps the user may list (app.list)',
          responses: {
            200: {
              description: 'apps',
              ...json({ type: 'object', properties: { apps: { type: 'array', items: appSchema } } }),
            },
            ...errors,
          },
        },
      },
      '/api/v1/apps/{id}': {
        get: {
          summary: 'One app (app.read)',
          parameters: [appId],
          responses: { 200: { description: 'the app', ...json(appSchema) }, ...errors },
        },
      },
      '/api/v1/apps/{id}/tables': {
        get: {
          summary: "Tables of the app's current version (app.read); none for an app without data",
          parameters: [appId],
          responses: {
            200: {
              description: 'tables',
              ...json({
                type: 'object',
                properties: {
                  tables: {
                    type: 'array',
                    items: { type: 'object', properties: { name: { type: 'string' }, rowCount: { type: 'integer' } } },
                  },
                },
              }),
            },
            ...errors,
          },
        },
      },
      '/api/v1/apps/{id}/tables/{table}/rows': {
        get: {
          summary:
            "A page of rows (app.read). Versions served by fort-engine: keyset pages (after = the last page's next), selections, sort, fields, and the answer carries version and next; older versions: offset paging",
          parameters: [
            appId,
            { name: 'table', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 } },
            { name: 'after', in: 'query', schema: { type: 'string' } },
            {
              name: 'sort',
              in: 'query',
              description: 'field or field:desc, comma separated',
              schema: { type: 'string' },
            },
            { name: 'fields', in: 'query', description: 'comma separated', schema: { type: 'string' } },
            selectionsParam,
          ],
          responses: {
            200: {
              description: 'rows',
              ...json({
                type: 'object',
                properties: {
                  columns: { type: 'array', items: { type: 'string' } },
                  rows: { type: 'array', items: { type: 'array' } },
                  offset: { type: 'integer' },
                  limit: { type: 'integer' },
                  total: { type: 'integer' },
                },
              }),
            },
            ...errors,
          },
        },
      },
      '/api/v1/apps/{id}/schema': {
        get: {
          summary: "Tables and typed fields of the app's current version, served by fort-engine (app.read)",
          parameters: [appId],
          responses: { 200: { description: 'the schema', ...json({ type: 'object' }) }, ...engineErrors },
        },
      },
      '/api/v1/apps/{id}/query': {
        post: {
          summary:
            'Selections, dimensions and measures computed on the fort (app.read): one keyset page of groups, with the version id',
          parameters: [appId],
          requestBody: {
            required: true,
            ...json({
              type: 'object',
              properties: {
                table: { type: 'string', description: "default: the app's only table" },
                selections: { type: 'array', items: selection, maxItems: 32 },
                dimensions: { type: 'array', items: { type: 'string' }, maxItems: 8 },
                measures: {
                  type: 'array',
                  maxItems: 16,
                  items: {
                    type: 'object',
                    required: ['op'],
                    properties: {
                      op: { enum: ['sum', 'count', 'count_distinct', 'avg', 'min', 'max'] },
                      field: { type: 'string' },
                      as: { type: 'string' },
                    },
                  },
                },
                sort: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['by'],
                    properties: { by: { type: 'string' }, dir: { enum: ['asc', 'desc'] } },
                  },
                },
                limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 },
                after: { type: 'string' },
              },
            }),
          },
          responses: {
            200: {
              description: 'one page of the answer',
              ...json({
                type: 'object',
                required: ['version', 'columns', 'rows', 'next'],
                properties: {
                  version: { type: 'string' },
                  columns: { type: 'array', items: { type: 'object' } },
                  rows: { type: 'array', items: { type: 'array', items: cell } },
                  next: { type: ['string', 'null'] },
                },
              }),
            },
            ...engineErrors,
          },
        },
      },
      '/api/v1/apps/{id}/export': {
        post: {
          summary:
            "A query's whole answer as CSV, streamed page after page (app.read); same body as query (limit and after ignored); at most api.export_max_rows rows",
          parameters: [appId],
          requestBody: { required: true, ...json({ type: 'object' }) },
          responses: {
            200: {
              description: 'CSV (RFC 4180; text that would run as a formula is prefixed with a quote mark)',
              content: { 'text/csv': { schema: { type: 'string' } } },
            },
            ...engineErrors,
          },
        },
      },
      '/api/v1/apps/{id}/fields/{field}/values': {
        get: {
          summary:
            "A list box (app.read): the field's values with counts, possible or excluded under the other fields' selections",
          parameters: [
            appId,
            { name: 'field', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'table', in: 'query', schema: { type: 'string' } },
            selectionsParam,
            { name: 'search', in: 'query', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 10_000, default: 1000 } },
          ],
          responses: { 200: { description: 'values', ...json({ type: 'object' }) }, ...engineErrors },
        },
      },
      '/api/v1/apps/{id}/reloads': {
        post: {
          summary: 'Queue a reload (app.reload)',
          parameters: [appId],
          responses: { 202: { description: 'queued', ...json({ type: 'object' }) }, ...errors },
        },
      },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      responses: {
        Problem: {
          description:
            'RFC 9457 problem details with a stable code (FORT_ERR_UNAUTHENTICATED, FORT_ERR_FORBIDDEN, FORT_ERR_AUTHZ_UNAVAILABLE, FORT_ERR_AUTHN_UNAVAILABLE, FORT_ERR_NOT_FOUND, FORT_ERR_BAD_REQUEST, FORT_ERR_RATE_LIMITED, …)',
          content: {
            'application/problem+json': {
              schema: {
                type: 'object',
                required: ['type', 'title', 'status', 'code'],
                properties: {
                  type: { type: 'string' },
                  title: { type: 'string' },
                  status: { type: 'integer' },
                  code: { type: 'string' },
                  detail: { type: 'string' },
                  requestId: { type: 'string' },
                },
              },
            },
          },
        },
      },
    },
  };
}
