import { Agent } from 'node:https';
import { FortError } from './errors.js';
import { createJsonClient, replaceableAgent } from './https-json.js';
import type { TlsMaterial } from './tls.js';
import type { UpdateStateView, UpdateSummary } from './update-state.js';
import type { LogLevelView, TemporaryLevel } from './log-level.js';

export interface AgentHealth {
  status: 'healthy' | 'degraded' | 'starting' | 'draining' | 'unhealthy';
  live: boolean;
  ready: boolean;
  version: string;
  fortId: string;
  uptimeSeconds: number;
  modules: Record<string, { state: string; detail?: string; since: string; info?: Record<string, unknown> }>;
  /** A level the operator asked of the deployment manager, for a while (`fortctl log-level`). */
  logLevels?: { 'deployment-manager'?: TemporaryLevel };
}

export interface AgentVersion {
  version: string;
  node: string;
  fortId: string;
  schemaVersion: number;
  startedAt: string;
}

/** One entry of `GET /admin/v1/audit`; `detail` is the stored JSON (e.g. `{decision, reason}`). */
export interface AuditEntry {
  seq: number;
  ts: string;
  actor: string;
  action: string;
  target: string | null;
  detail: unknown;
}

/** RFC 9457 fields of an error answer. */
/** A dead-lettered event as operators see it (`GET /admin/v1/events/dead`): never the payload. */
export interface DeadLetterView {
  seq: number;
  receivedAt: string;
  topic: string;
  reasonCode: string;
  reason: string;
  eventId: string | null;
  type: string | null;
  size: number;
}

/** One certificate's expiry (`GET /admin/v1/certs`, `fortctl certs check`). */
export interface CertificateReport {
  /** What the certificate is for, e.g. "admin API (trust zone)". */
  role: string;
  file: string;
  subject: string;
  issuer: string;
  notAfter: string;
  daysLeft: number;
  /** Every certificate of a bundle file (CAs) is reported; `index` says which. */
  index: number;
}

/** What a TLS server serves after `POST /admin/v1/reload-certs`; never key material. */
export interface ServedCertificate {
  role: string;
  file: string;
  subject: string;
  serialNumber: string;
  notAfter: string;
  fingerprint256: string;
}

export interface Problem {
  status?: number;
  code?: string;
  title?: string;
  detail?: string;
}

export interface AdminApp {
  id: string;
  name: string;
  space: string;
  versionId: number | null;
  updatedAt: string;
  tables: string[];
  rows: number | null;
}

/** One reload (`GET /admin/v1/reloads`). */
export interface AdminReload {
  id: string;
  appId: string;
  /** queued, running, succeeded, failed, cancelled or interrupted */
  state: string;
  /** Who asked first: `event:<id>`, `user:<name>`, `operator:<cn>`. */
  source: string;
  /** Requests folded into this one while it was queued. */
  requests: number;
  /** Starts so far (a crash during a run counts one). */
  attempts: number;
  requestedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  versionId: number | null;
  rows: number | null;
  errorCode: string | null;
  errorMessage: string | null;
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
  const base = new URL(opts.url);
  // One TLS context and kept-alive connection for a poller that lives for months; a new one
  // when its certificate is renewed (reloadTls).
  const agents = replaceableAgent(({ ca, cert, key }: TlsMaterial) => {
    if (!ca)
      throw new FortError('FORT_ERR_TLS_MATERIAL', 'the admin client needs the trust-zone CA to verify the agent');
    return new Agent({ ca, cert, key, keepAlive: true, maxSockets: 1 });
  }, opts.tls);
  const http = createJsonClient({
    agent: agents.get,
    timeoutMs: opts.timeoutMs ?? 5000,
    peer: `agent admin API ${opts.url}`,
    errorCode: 'FORT_ERR_ADMIN_LINK',
  });

  const call = async <T>(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    body?: unknown,
  ): Promise<{ statusCode: number; body: T }> => {
    const res = await http.send(new URL(path, base), { method, ...(body === undefined ? {} : { body }) });
    return { statusCode: res.statusCode, body: http.json<T>(res) };
  };

  return {
    health: () => call<AgentHealth>('GET', '/admin/v1/health'),
    version: () => call<AgentVersion>('GET', '/admin/v1/version'),
    drain: () => call<{ status: string }>('POST', '/admin/v1/drain'),
    deadLetters: (limit = 50) => call<{ deadLetters: DeadLetterView[] }>('GET', `/admin/v1/events/dead?limit=${limit}`),
    certificates: () => call<{ certificates: CertificateReport[] }>('GET', '/admin/v1/certs'),
    pair: (req: { cloud: string; code: string; tenant?: string }) =>
      call<{ fortId: string; tenant: string; pairedAt: string } & Problem>('POST', '/admin/v1/pair', req),
    unpair: (force: boolean) =>
      call<{ fortId: string; cloudTold: boolean } & Problem>('POST', '/admin/v1/unpair', { force }),
    updateIdentity: (csr: string) =>
      call<Record<string, unknown> & Problem>('POST', '/admin/v1/update-identity', { csr }),
    /** The deployment manager's update state, for the agent's metrics and `fortctl update status` (204 when taken). */
    reportUpdateState: (summary: UpdateSummary) => call<Problem>('PUT', '/admin/v1/update-state', summary),
    updateState: () => call<UpdateStateView & Problem>('GET', '/admin/v1/update-state'),
    /** `GET /admin/v1/metrics`: Prometheus text, not JSON. */
    async metrics(): Promise<{ statusCode: number; contentType: string; text: string }> {
      const res = await http.send(new URL('/admin/v1/metrics', base), { headers: { accept: 'text/plain' } });
      return { statusCode: res.statusCode, contentType: String(res.headers['content-type'] ?? ''), text: res.text };
    },
    reloadCerts: () => call<{ served: ServedCertificate[] } & Problem>('POST', '/admin/v1/reload-certs', {}),
    /** A service's log level for a while (`fortctl log-level`). */
    setLogLevel: (service: string, level: string, forSeconds: number) =>
      call<TemporaryLevel & { service: string; applies?: string } & Problem>('PUT', '/admin/v1/log-level', {
        service,
        level,
        for_seconds: forSeconds,
      }),
    logLevels: () =>
      call<{
        agent: LogLevelView;
        engine?: LogLevelView | { error: string };
        'deployment-manager': TemporaryLevel | null;
      }>('GET', '/admin/v1/log-level'),
    rotateKeys: () =>
      call<{ fortId: string; previousValidUntil: string } & Problem>('POST', '/admin/v1/rotate-keys', {}),
    /** Audit entries recorded at or after `since`: the newest `limit` (agent default 200, at most 1000), newest last. */
    audit: (since: Date, limit?: number) => {
      const query = new URLSearchParams({
        since: since.toISOString(),
        ...(limit === undefined ? {} : { limit: String(limit) }),
      });
      return call<{ entries: AuditEntry[] }>('GET', `/admin/v1/audit?${query.toString()}`);
    },
    /** Registers (or updates) an app from its definition file's text. */
    addApp: (definition: string, format: 'toml' | 'json') =>
      call<{ app: AdminApp; created: boolean } & Problem>('POST', '/admin/v1/apps', { definition, format }),
    apps: () => call<{ apps: AdminApp[] }>('GET', '/admin/v1/apps'),
    reloads: (filter: { app?: string; state?: string; limit?: number } = {}) => {
      const query = new URLSearchParams(
        Object.entries(filter)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => [k, String(v)] as [string, string]),
      );
      return call<{ reloads: AdminReload[] } & Problem>('GET', `/admin/v1/reloads?${query.toString()}`);
    },
    startReload: (appId: string) =>
      call<{ reload: AdminReload; coalesced: boolean } & Problem>('POST', '/admin/v1/reloads', { appId }),
    cancelReload: (id: string) =>
      call<{ result: string } & Problem>('POST', `/admin/v1/reloads/${encodeURIComponent(id)}/cancel`, {}),
    /** A renewed certificate (SIGHUP): used from the next request on. */
    reloadTls: (tls: TlsMaterial) => agents.replace(tls),
    close: () => agents.destroy(),
  };
}
export type AdminClient = ReturnType<typeof createAdminClient>;

/**
 * Polls the agent's health until `accept` says yes (e.g. back after a restart, as the fort it
 * became), or `timeoutMs` passed; unreachable in between is expected. The health, or undefined.
 */
export async function waitForHealth(
  health: () => Promise<{ body: AgentHealth }>,
  accept: (h: AgentHealth) => boolean,
  timeoutMs: number,
  intervalMs = 250,
): Promise<AgentHealth | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = await health().catch(() => undefined);
    if (h && accept(h.body)) return h.body;
    if (Date.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The TLS/network error code behind an admin-link failure, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE. */
export function linkErrorCode(err: unknown): string | undefined {
  const cause = err instanceof FortError ? err.cause : err;
  return (cause as NodeJS.ErrnoException | undefined)?.code;
}
