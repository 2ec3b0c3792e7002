import got, { RequestError, type Got } from 'got';
import { FortError } from './errors.js';
import type { TlsMaterial } from './tls.js';

export interface AgentHealth {
  status: 'healthy' | 'starting' | 'draining' | 'unhealthy';
  live: boolean;
  ready: boolean;
  version: string;
  fortId: string;
  uptimeSeconds: number;
  modules: Record<string, { state: string; detail?: string; since: string }>;
}

export interface AgentVersion {
  version: string;
  node: string;
  fortId: string;
  schemaVersion: number;
  startedAt: string;
}

export interface AdminClientOptions {
  /** e.g. https://127.0.0.1:8444 */
  url: string;
  /** This trust-zone member's cert + key, and the trust-zone root the agent must chain to. */
  tls: TlsMaterial;
  timeoutMs?: number;
}

/** Client of the agent's trust-zone admin API (fortctl, deployment manager). */
export function createAdminClient(opts: AdminClientOptions) {
  if (!opts.tls.ca) throw new FortError('FORT_ERR_TLS_MATERIAL', 'the admin client needs the trust-zone CA to verify the agent');
  const http: Got = got.extend({
    prefixUrl: opts.url,
    https: { certificateAuthority: opts.tls.ca, certificate: opts.tls.cert, key: opts.tls.key },
    timeout: { request: opts.timeoutMs ?? 5000 },
    retry: { limit: 0 },
    throwHttpErrors: false,
    responseType: 'json',
  });

  const call = async <T>(method: 'GET' | 'POST', path: string): Promise<{ statusCode: number; body: T }> => {
    try {
      const res = await http<T>(path, { method });
      return { statusCode: res.statusCode, body: res.body };
    } catch (err) {
      const code = err instanceof RequestError ? err.code : undefined;
      throw new FortError('FORT_ERR_ADMIN_LINK', `agent admin API ${opts.url} unreachable: ${code ?? ''} ${(err as Error).message}`.replace(/\s+/g, ' '), {
        fatal: false,
        cause: err,
      });
    }
  };

  return {
    health: () => call<AgentHealth>('GET', 'admin/v1/health'),
    version: () => call<AgentVersion>('GET', 'admin/v1/version'),
    drain: () => call<{ status: string }>('POST', 'admin/v1/drain'),
  };
}
export type AdminClient = ReturnType<typeof createAdminClient>;

/** The TLS/network error code behind an admin-link failure, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE. */
export function linkErrorCode(err: unknown): string | undefined {
  const cause = err instanceof FortError ? err.cause : err;
  return cause instanceof RequestError ? cause.code : undefined;
}
