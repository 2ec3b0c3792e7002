import type { DevCloudServer } from '../server.js';
import { z } from 'zod';
import { sendRawProblem, sendBadRequest } from '../../lib/http-problem.js';
import { problemErrorHandler } from './problems.js';
import type { SigningKeys } from './signing-keys.js';

const name = z.string().min(1).max(256);
const loginSchema = z.strictObject({
  user: name,
  tenant: name,
  fort: name.optional(),
  ttl_seconds: z.int().min(1).max(86_400).optional(),
});
const redirectLoginSchema = z.strictObject({
  user: name,
  tenant: name,
  fort: name.optional(),
  redirect_uri: z.string().max(2048),
});
const retireSchema = z.strictObject({ kid: z.string().min(1).max(256) });

export interface UserRoutesDeps {
  keys: SigningKeys;
  userTokenSeconds: number;
  /** Origins (`https://host:port`) the redirect login may send a token to. */
  fortOrigins: readonly string[];
  /** The tenant's forts (the policy's and the paired ones): who a token may be for. */
  fortsOf: (tenant: string) => string[];
}

/** The public JWKS, plus the dev-only login and key rotation routes (CLOUD-API.md). */
export async function userRoutes(app: DevCloudServer, deps: UserRoutesDeps) {
  app.setErrorHandler(problemErrorHandler);
  const origins = new Set(deps.fortOrigins.map((o) => new URL(o).origin));
  /** The fort a token is for: the one named, of the tenant; or the tenant's only one. A refusal says why. */
  const fortFor = (tenant: string, named: string | undefined): { fort: string } | { refused: string } => {
    const forts = deps.fortsOf(tenant);
    if (named)
      return forts.includes(named) ? { fort: named } : { refused: `fort: ${named} is not a fort of ${tenant}` };
    if (forts.length === 1) return { fort: forts[0]! };
    return { refused: `fort: name the fort the token is for (tenant ${tenant} has ${forts.length})` };
  };

  app.get('/.well-known/jwks.json', async (_req, reply) =>
    reply.header('cache-control', 'max-age=300').send(deps.keys.jwks()),
  );

  app.post('/dev/v1/login', async (req, reply) => {
    const body = loginSchema.safeParse(req.body);
    if (!body.success) return sendBadRequest(reply, body.error);
    const target = fortFor(body.data.tenant, body.data.fort);
    if ('refused' in target) return sendRawProblem(reply, 400, 'FORT_ERR_BAD_REQUEST', 'Bad request', target.refused);
    const { token, expiresAt } = await deps.keys.sign({
      user: body.data.user,
      tenant: body.data.tenant,
      fort: target.fort,
      ttlSeconds: body.data.ttl_seconds ?? deps.userTokenSeconds,
    });
    return reply.header('cache-control', 'no-store').send({ token, expires_at: expiresAt.toISOString() });
  });

  // A stand-in for the cloud's login redirect: the token travels in the fragment, which
  // browsers never send to a server, and only to a fort registered for it (no open redirect).
  app.get('/dev/v1/login', async (req, reply) => {
    const q = redirectLoginSchema.safeParse(req.query);
    if (!q.success) return sendBadRequest(reply, q.error);
    let target: URL;
    try {
      target = new URL(q.data.redirect_uri);
    } catch {
      return sendRawProblem(reply, 400, 'FORT_ERR_BAD_REQUEST', 'Bad request', 'redirect_uri is not a URL');
    }
    if (!origins.has(target.origin))
      return sendRawProblem(
        reply,
        400,
        'FORT_ERR_BAD_REQUEST',
        'Bad request',
        'redirect_uri is not on a configured fort origin',
      );
    const fort = fortFor(q.data.tenant, q.data.fort);
    if ('refused' in fort) return sendRawProblem(reply, 400, 'FORT_ERR_BAD_REQUEST', 'Bad request', fort.refused);
    const { token } = await deps.keys.sign({
      user: q.data.user,
      tenant: q.data.tenant,
      fort: fort.fort,
      ttlSeconds: deps.userTokenSeconds,
    });
    target.hash = `token=${token}`;
    return reply
      .header('cache-control', 'no-store')
      .header('referrer-policy', 'no-referrer')
      .redirect(target.href, 302);
  });

  app.post('/dev/v1/jwks/rotate', async () => ({ kid: await deps.keys.rotate() }));

  app.post('/dev/v1/jwks/retire', async (req, reply) => {
    const body = retireSchema.safeParse(req.body);
    if (!body.success) return sendBadRequest(reply, body.error);
    switch (deps.keys.retire(body.data.kid)) {
      case 'unknown':
        return sendRawProblem(
          reply,
          404,
          'FORT_ERR_NOT_FOUND',
          'No such signing key',
          `kid ${body.data.kid} is not served`,
        );
      case 'current':
        return sendRawProblem(
          reply,
          409,
          'FORT_ERR_CONFLICT',
          'Key is current',
          'rotate to a new key before retiring this one',
        );
      case 'retired':
        return { retired: body.data.kid };
    }
  });
}
