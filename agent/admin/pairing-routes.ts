import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { FortError } from '../../lib/errors.js';
import { sendBadRequest, sendProblem } from '../../lib/http-problem.js';
import type { FortIdentity } from '../pairing/identity.js';
import type { PairRequest } from '../pairing/pair.js';
import { DEPLOYMENT_MANAGER_ONLY, OPERATOR_ONLY } from './roles.js';

export interface AdminPairingDeps {
  pair(req: PairRequest, by: string): Promise<FortIdentity>;
  /**
   * Asks the cloud to revoke this fort, then forgets the identity (keys deleted, data kept).
   * With `force`, also when the cloud cannot be told. Throws FORT_ERR_CONFLICT when not paired.
   */
  unpair(opts: { force: boolean }, by: string): Promise<{ fortId: string; cloudTold: boolean }>;
  /** New keys registered with the cloud and put in place; throws FORT_ERR_CONFLICT when not paired. */
  rotateKeys(by: string): Promise<{ fortId: string; previousValidUntil: string }>;
  /** For the deployment manager: a certificate for its own key from the cloud; FORT_ERR_CONFLICT when not paired. */
  updateIdentity(csr: string): Promise<unknown>;
  /** Called once the answer is sent: the agent restarts to run with (or without) its identity. */
  restart(reason: string): void;
}

const unpairBody = z.strictObject({ force: z.boolean().default(false) });
const updateIdentityBody = z.strictObject({
  csr: z.string().max(16_384).includes('BEGIN CERTIFICATE REQUEST', { error: 'expected a PEM certificate request' }),
});

const pairBody = z.strictObject({
  cloud: z.url({ protocol: /^https$/, error: "expected the cloud's https URL" }),
  code: z.string().trim().min(8, { error: 'expected the one-time code' }).max(128),
  tenant: z.string().trim().min(1).max(128).optional(),
});

/** Pairing, unpairing and key rotation (operators), and the deployment manager's update identity. */
export function registerPairingRoutes(app: FastifyInstance, deps: AdminPairingDeps) {
  /** The answer first, then the restart that applies the change (the caller learns it succeeded). */
  const answerThenRestart = (reply: FastifyReply, answer: object, reason: string) => {
    reply.send({ ...answer, restarting: true });
    setImmediate(() => deps.restart(reason));
    return reply;
  };

  app.post('/admin/v1/pair', OPERATOR_ONLY, async (req, reply) => {
    const by = req.peer?.name ?? 'unknown';
    const body = pairBody.safeParse(req.body);
    if (!body.success) return sendBadRequest(reply, body.error);
    try {
      const id = await deps.pair(
        { cloud: body.data.cloud, code: body.data.code, ...(body.data.tenant ? { tenant: body.data.tenant } : {}) },
        by,
      );
      return answerThenRestart(
        reply,
        { fortId: id.fort_id, tenant: id.tenant, pairedAt: id.paired_at },
        `paired as ${id.fort_id} by ${by}`,
      );
    } catch (err) {
      if (!(err instanceof FortError)) throw err;
      if (err.code === 'FORT_ERR_CONFLICT' || err.code === 'FORT_ERR_PAIRING') return sendProblem(reply, err);
      throw err;
    }
  });

  // The deployment manager keeps its own key (another system user): it sends a CSR, the agent
  // (the one that talks to the cloud API) gets it signed.
  app.post('/admin/v1/update-identity', DEPLOYMENT_MANAGER_ONLY, async (req, reply) => {
    const body = updateIdentityBody.safeParse(req.body);
    if (!body.success) return sendBadRequest(reply, body.error);
    try {
      return await deps.updateIdentity(body.data.csr);
    } catch (err) {
      if (!(err instanceof FortError)) throw err;
      if (err.code === 'FORT_ERR_CONFLICT') return sendProblem(reply, err);
      return sendProblem(reply, 'FORT_ERR_UPSTREAM', err.message);
    }
  });

  app.post('/admin/v1/rotate-keys', OPERATOR_ONLY, async (req, reply) => {
    const by = req.peer?.name ?? 'unknown';
    try {
      const done = await deps.rotateKeys(by);
      return answerThenRestart(reply, done, `keys rotated by ${by}`);
    } catch (err) {
      if (!(err instanceof FortError)) throw err;
      if (err.code === 'FORT_ERR_CONFLICT') return sendProblem(reply, err);
      return sendProblem(reply, 'FORT_ERR_UPSTREAM', `${err.message}; the current keys stay in use`);
    }
  });

  app.post('/admin/v1/unpair', OPERATOR_ONLY, async (req, reply) => {
    const by = req.peer?.name ?? 'unknown';
    const body = unpairBody.safeParse(req.body ?? {});
    if (!body.success) return sendBadRequest(reply, body.error);
    try {
      const done = await deps.unpair({ force: body.data.force }, by);
      return answerThenRestart(reply, done, `unpaired ${done.fortId} by ${by}`);
    } catch (err) {
      if (!(err instanceof FortError)) throw err;
      if (err.code === 'FORT_ERR_CONFLICT') return sendProblem(reply, err);
      return sendProblem(
        reply,
        'FORT_ERR_UPSTREAM',
        `${err.message}; nothing was changed (fortctl unpair --force forgets the identity anyway)`,
      );
    }
  });
}
