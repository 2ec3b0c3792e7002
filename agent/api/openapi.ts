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
          summary: 'A page of rows (app.read)',
          parameters: [
            appId,
            { name: 'table', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
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
