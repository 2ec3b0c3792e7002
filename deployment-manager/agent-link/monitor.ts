import { linkErrorCode, type AdminClient, type AgentHealth } from '../../lib/admin-client.js';
import type { Logger } from '../../lib/logger.js';

export type AgentView =
  | { kind: 'unknown' }
  | { kind: 'healthy'; version: string; at: Date }
  | { kind: 'unhealthy'; status: string; at: Date }
  | { kind: 'unreachable'; error: string; code?: string; at: Date };

/**
 * Periodic health check of the agent over the trust-zone admin link. Logs transitions only,
 * so a long outage is one line, not one per interval.
 */
export function createAgentMonitor(deps: {
  client: AdminClient;
  intervalMs: number;
  log: Logger;
  onHealthy?: (health: AgentHealth) => void;
  now?: () => Date;
}) {
  const now = deps.now ?? (() => new Date());
  let view: AgentView = { kind: 'unknown' };
  let timer: NodeJS.Timeout | undefined;

  const record = (next: AgentView, detail: Record<string, unknown>) => {
    const changed = next.kind !== view.kind || ('code' in next && 'code' in view && next.code !== view.code);
    view = next;
    if (!changed) return;
    if (next.kind === 'healthy') deps.log.info(detail, 'agent healthy');
    else deps.log.warn(detail, 'agent health check failed');
  };

  const check = async (): Promise<AgentView> => {
    try {
      const { statusCode, body } = await deps.client.health();
      // 200 = serving; `degraded` (cloud link down) is not the agent's fault to roll back for.
      if (statusCode === 200 && (body.status === 'healthy' || body.status === 'degraded')) {
        record({ kind: 'healthy', version: body.version, at: now() }, { version: body.version });
        deps.onHealthy?.(body);
      } else {
        const status = (body as Partial<AgentHealth>).status ?? `http ${statusCode}`;
        record({ kind: 'unhealthy', status, at: now() }, { statusCode, status });
      }
    } catch (err) {
      const code = linkErrorCode(err);
      record(
        { kind: 'unreachable', error: (err as Error).message, ...(code ? { code } : {}), at: now() },
        { code, error: (err as Error).message },
      );
    }
    return view;
  };

  return {
    check,
    get view() {
      return view;
    },
    start() {
      const tick = () => {
        timer = setTimeout(() => void check().finally(tick), deps.intervalMs);
      };
      tick();
    },
    async stop() {
      if (timer) clearTimeout(timer);
    },
  };
}
