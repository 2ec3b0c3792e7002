import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AuthRequestError, parseAuthRequest } from './auth-request.js';
import { DEVICE_REPORTED_STATUSES, type DeploymentBook } from './deployments.js';
import type { DeviceRegistry } from './devices.js';
import { HTTP_STATUS, MenderOpError } from './errors.js';
import { fail, type MenderHttp } from './http.js';
import type { DeviceTokens, LinkSigner } from './tokens.js';
import { issueDetail } from '../../lib/http-problem.js';

export interface DeviceRouteDeps {
  devices: DeviceRegistry;
  deployments: DeploymentBook;
  tokens: DeviceTokens;
  signer: LinkSigner;
  now: () => Date;
  downloadLinkSeconds: number;
  /** Retry-After of a 401 to a device awaiting acceptance. */
  pendingRetrySeconds: number;
}

const nextQuery = z.object({ artifact_name: z.string().min(1), device_type: z.string().min(1) });
const nextBody = z.looseObject({
  device_provides: z
    .record(z.string(), z.string())
    .refine((p) => !!p['artifact_name'] && !!p['device_type'], { error: 'needs artifact_name and device_type' }),
});
const statusBody = z.looseObject({ status: z.enum(DEVICE_REPORTED_STATUSES), substate: z.string().optional() });
const logBody = z.looseObject({
  messages: z.array(z.looseObject({ timestamp: z.string(), level: z.string(), message: z.string() })),
});
const inventoryValue = z.union([z.string(), z.number(), z.array(z.union([z.string(), z.number()]))]);
const inventoryBody = z.array(
  z.looseObject({ name: z.string().min(1), value: inventoryValue, description: z.string().optional() }),
);

/**
 * The Mender device API (shared/PROTOCOLS.md "Mender device API"): auth requests signed over the
 * raw body, then a device JWT on every other call.
 */
export function registerDeviceRoutes(app: MenderHttp, deps: DeviceRouteDeps) {
  // The signature covers the exact bytes sent: keep them next to the parsed body.
  const rawBodies = new WeakMap<FastifyRequest, Buffer>();
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const raw = body as Buffer;
    rawBodies.set(req, raw);
    if (raw.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(raw.toString('utf8')));
    } catch {
      done(Object.assign(new Error('body is not JSON'), { statusCode: 400 }), undefined);
    }
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    if (err instanceof MenderOpError) return fail(reply, HTTP_STATUS[err.kind], err.message);
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) return fail(reply, status, err.message);
    req.log.error({ err }, 'mender device request failed');
    return fail(reply, 500, 'internal error');
  });

  app.post('/api/devices/v1/authentication/auth_requests', async (req, reply) => {
    const raw = rawBodies.get(req);
    if (!raw) return fail(reply, 400, 'expected an application/json body');
    let parsed;
    try {
      parsed = parseAuthRequest(raw, req.headers['x-men-signature']);
    } catch (err) {
      if (!(err instanceof AuthRequestError)) throw err;
      deps.devices.recordFailure({
        identity: null,
        keyFingerprint: null,
        result: err.status === 401 ? 'bad-signature' : 'bad-request',
        detail: err.message,
      });
      return fail(reply, err.status, err.message);
    }
    const { device, authSet } = deps.devices.authenticate(parsed);
    if (authSet.status === 'accepted') {
      const token = await deps.tokens.issue({ deviceId: device.id, authSetId: authSet.id });
      return reply.code(200).type('application/jwt').send(token);
    }
    if (authSet.status === 'pending') reply.header('retry-after', String(deps.pendingRetrySeconds));
    return fail(reply, 401, authSet.status === 'pending' ? 'device not accepted yet (pending)' : 'device rejected');
  });

  app.register(async (scope) => {
    const claims = new WeakMap<FastifyRequest, string>();
    const deviceOf = (req: FastifyRequest) => claims.get(req)!;
    scope.addHook('onRequest', async (req, reply) => {
      const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
      const c = m ? await deps.tokens.verify(m[1]!) : undefined;
      if (!c || !deps.devices.isAccepted(c.deviceId, c.authSetId)) {
        return fail(
          reply.header('www-authenticate', 'Bearer'),
          401,
          m ? 'invalid or expired token' : 'missing device token',
        );
      }
      claims.set(req, c.deviceId);
    });

    const next = (req: FastifyRequest, reply: FastifyReply, provides: Record<string, string>) => {
      const deviceId = deviceOf(req);
      deps.devices.polled(deviceId, provides);
      const found = deps.deployments.next(deviceId, provides['device_type']!);
      if (!found) return reply.code(204).send();
      const { deployment, artifact } = found;
      const source = deps.signer.link(artifact.id, new Date(deps.now().getTime() + deps.downloadLinkSeconds * 1000));
      return reply.code(200).send({
        id: deployment.id,
        artifact: {
          id: artifact.id,
          artifact_name: artifact.name,
          source,
          device_types_compatible: artifact.deviceTypes,
        },
      });
    };

    scope.get('/api/devices/v1/deployments/device/deployments/next', async (req, reply) => {
      const q = nextQuery.safeParse(req.query);
      if (!q.success) return fail(reply, 400, issueDetail(q.error));
      return next(req, reply, q.data);
    });

    scope.post('/api/devices/v2/deployments/device/deployments/next', async (req, reply) => {
      const b = nextBody.safeParse(req.body);
      if (!b.success) return fail(reply, 400, issueDetail(b.error));
      return next(req, reply, b.data.device_provides);
    });

    scope.put<{ Params: { id: string } }>(
      '/api/devices/v1/deployments/device/deployments/:id/status',
      async (req, reply) => {
        const b = statusBody.safeParse(req.body);
        if (!b.success) return fail(reply, 400, issueDetail(b.error));
        deps.deployments.report(req.params.id, deviceOf(req), b.data.status, b.data.substate ?? null);
        return reply.code(204).send();
      },
    );

    scope.put<{ Params: { id: string } }>(
      '/api/devices/v1/deployments/device/deployments/:id/log',
      async (req, reply) => {
        const b = logBody.safeParse(req.body);
        if (!b.success) return fail(reply, 400, issueDetail(b.error));
        deps.deployments.storeLog(
          req.params.id,
          deviceOf(req),
          b.data.messages.map(({ timestamp, level, message }) => ({ timestamp, level, message })),
        );
        return reply.code(204).send();
      },
    );

    for (const method of ['PATCH', 'PUT'] as const) {
      scope.route({
        method,
        url: '/api/devices/v1/inventory/device/attributes',
        handler: async (req, reply) => {
          const b = inventoryBody.safeParse(req.body);
          if (!b.success) return fail(reply, 400, issueDetail(b.error));
          deps.devices.setInventory(
            deviceOf(req),
            b.data.map(({ name, value }) => ({ name, value })),
            method === 'PATCH' ? 'merge' : 'replace',
          );
          return reply.code(200).send();
        },
      });
    }
  });
}
