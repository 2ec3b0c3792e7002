import type { AdminClient, AgentHealth } from '../../lib/admin-client.js';
import type { Logger } from '../../lib/logger.js';
import { summarize } from '../../lib/update-state.js';
import type { StateFile, UpdateState } from '../update/state.js';

/**
 * Tells the agent the update state (its metrics and `fortctl update status` show it), after
 * every persisted change and again after a health check when the last report did not get
 * through or the agent started since: it keeps the state in memory only, and it restarts in
 * the middle of every update. Never waits in the update's way: one report at a time, the
 * newest state only, failures logged once.
 */
export function createAgentReporter(deps: {
  client: Pick<AdminClient, 'reportUpdateState'>;
  load: () => UpdateState;
  log: Logger;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  let next: UpdateState | undefined;
  let sending: Promise<void> | undefined;
  /** When the agent last took a report; undefined until then and after a failure. */
  let deliveredAt: number | undefined;
  let failing = false;

  const deliver = async (s: UpdateState) => {
    let why: string | undefined;
    try {
      const { statusCode, body } = await deps.client.reportUpdateState(summarize(s));
      if (statusCode !== 204) why = `${statusCode} ${body.code ?? ''} ${body.detail ?? ''}`.trim();
    } catch (err) {
      why = (err as Error).message;
    }
    deliveredAt = why === undefined ? now() : undefined;
    if (why !== undefined && !failing)
      deps.log.warn(
        { step: s.step, reason: why },
        'update state not reported to the agent; again after its next good health check',
      );
    else if (why === undefined && failing) deps.log.info({ step: s.step }, 'update state reported to the agent again');
    failing = why !== undefined;
  };

  const report = (s: UpdateState): Promise<void> => {
    next = s;
    sending ??= (async () => {
      while (next) {
        const s = next;
        next = undefined;
        await deliver(s);
      }
    })().finally(() => (sending = undefined));
    return sending;
  };

  return {
    /** After every persisted state change. */
    changed: (s: UpdateState): void => void report(s),
    /**
     * After a good health check: again (from the state file, which an operator command may have
     * moved on) when the last report failed, or the agent's uptime says it started after it
     * (rounded to seconds, hence the margin: a report too many is harmless).
     */
    agentHealthy(h: Pick<AgentHealth, 'uptimeSeconds'>): void {
      if (sending) return;
      const startedAt = now() - h.uptimeSeconds * 1000;
      if (deliveredAt === undefined || startedAt > deliveredAt - 1500) void report(deps.load());
    },
    /** Resolves when nothing is being sent (for an operator command before it exits). */
    settled: (): Promise<void> => sending ?? Promise.resolve(),
  };
}
export type AgentReporter = ReturnType<typeof createAgentReporter>;

/** The state file, telling the agent after every save. */
export function reportingStateFile(file: StateFile, reporter: AgentReporter): StateFile {
  return {
    load: () => file.load(),
    save(state) {
      const saved = file.save(state);
      reporter.changed(saved);
      return saved;
    },
  };
}
