import { Agent, request } from 'node:https';
import { FortError } from './errors.js';
import type { TlsMaterial } from './tls.js';

export interface AgentHealth {
  status: 'healthy' | 'degraded' | 'starting' | 'draining' | 'unhealthy';
  live: boolean;
  ready: boolean;
  version: string;
  fortId: string;
  uptimeSeconds: number;
  modules: Record<string, { state: string; detail?: string; since: string; info?: Record<string, unknown> }>;
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

/**
 * Client of the agent's trust-zone admin API (fortctl, deployment manager). Plain
 * `node:https` rather than got: this is one JSON request to loopback with no retries, and
 * got adds ~22 MB RSS to the deployment manager, whose idle budget is 60 MB.
 */
export function createAdminClient(opts: AdminClientOptions) {
  const { ca, cert, key } = opts.tls;
  if (!ca) throw new FortError('FORT_ERR_TLS_MATERIAL', 'the admin client needs the trust-zone CA to verify the agent');
  const base = new URL(opts.url);
  const timeoutMs = opts.timeoutMs ?? 5000;
  // One TLS context and kept-alive connection for a poller that lives for months.
  const agent = new Agent({ ca, cert, key, keepAlive: true, maxSockets: 1 });

  const call = <T>(method: 'GET' | 'POST', path: string): Promise<{ statusCode: number; body: T }> =>
    new Promise((resolve, reject) => {
      const fail = (err: NodeJS.ErrnoException) =>
        reject(new FortError('FORT_ERR_ADMIN_LINK', `agent admin API ${opts.url} unreachable: ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' '), { fatal: false, cause: err }));
      const req = request(new URL(path, base), { method, agent, timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ statusCode: res.statusCode ?? 0, body: (text ? JSON.parse(text) : {}) as T });
          } catch {
            fail(Object.assign(new Error(`answered ${res.statusCode} with a non-JSON body`), { code: 'FORT_ERR_BAD_RESPONSE' }));
          }
        });
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', fail);
      req.end();
    });

  return {
    health: () => call<AgentHealth>('GET', '/admin/v1/health'),
    version: () => call<AgentVersion>('GET', '/admin/v1/version'),
    drain: () => call<{ status: string }>('POST', '/admin/v1/drain'),
    close: () => agent.destroy(),
  };
}
export type AdminClient = ReturnType<typeof createAdminClient>;

/** The TLS/network error code behind an admin-link failure, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE. */
export function linkErrorCode(err: unknown): string | undefined {
  const cause = err instanceof FortError ? err.cause : err;
  return (cause as NodeJS.ErrnoException | undefined)?.code;
}
