import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { sendProblem } from '../../lib/http-problem.js';
import { AuthorizationUnavailableError, type Authorizer } from '../cloud/authorizer.js';
import type { CloudAction } from '../cloud/client.js';
import type { AppCatalog, AppSummary } from '../apps/catalog.js';
import type { AuditWriter } from '../audit/writer.js';

/** The value, or undefined with a 400 naming the first problem sent. */
export function parse<T>(schema: z.ZodType<T>, value: unknown, reply: FastifyReply): T | undefined {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  void sendProblem(reply, 'FORT_ERR_BAD_REQUEST', `${issue.path.join('.') || 'request'}: ${issue.message}`);
  return undefined;
}

/** What every data route asks before it touches data: the cloud's decision (audited), then the app. */
export function appAccess(deps: { catalog: AppCatalog; authorizer: Authorizer; audit: AuditWriter }) {
  const { catalog, authorizer, audit } = deps;

  /** Fail closed: audited as a deny, answered 503 (never served from a stale decision). */
  function refuseUnavailable(req: FastifyRequest, reply: FastifyReply, action: CloudAction, target: string) {
    audit.write({
      actor: req.identity!.user,
      action,
      target,
      detail: { decision: 'deny', reason: 'authz_unavailable', requestId: req.id },
    });
    return sendProblem(
      reply,
      'FORT_ERR_AUTHZ_UNAVAILABLE',
      'the cloud cannot be reached to authorise this request and no fresh decision is cached; try again shortly',
    );
  }

  /** Allowed → true. Otherwise the reply (403 or 503) is sent and the decision audited. */
  async function allowed(
    req: FastifyRequest,
    reply: FastifyReply,
    action: CloudAction,
    resource: string,
  ): Promise<boolean> {
    const who = req.identity!;
    try {
      const d = await authorizer.decide({ user: who.user, tenant: who.tenant, action, resource });
      audit.write({
        actor: who.user,
        action,
        target: resource,
        detail: { decision: d.allow ? 'allow' : 'deny', source: d.source, requestId: req.id },
      });
      if (d.allow) return true;
      void sendProblem(reply, 'FORT_ERR_FORBIDDEN', `${action} on ${resource} is not allowed for this user`);
    } catch (err) {
      if (!(err instanceof AuthorizationUnavailableError)) throw err;
      void refuseUnavailable(req, reply, action, resource);
    }
    return false;
  }

  /** The app, or undefined with a 404 sent (asked after authorisation, so existence is not leaked). */
  function existing(reply: FastifyReply, id: string): AppSummary | undefined {
    const a = catalog.get(id);
    if (!a) void sendProblem(reply, 'FORT_ERR_NOT_FOUND', `no app ${id} on this fort`);
    return a;
  }

  return { refuseUnavailable, allowed, existing };
}
