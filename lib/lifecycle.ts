import type { Logger } from './logger.js';
import type { Notifier } from './sd-notify.js';

export interface Stoppable {
  name: string;
  stop(): Promise<void>;
}

/**
 * Stops components in reverse start order on SIGTERM/SIGINT (or an explicit request such
 * as drain), bounded by a deadline so systemd never has to SIGKILL a healthy process.
 */
export function createLifecycle(deps: {
  log: Logger;
  notifier: Notifier;
  stopTimeoutMs: number;
  exit: (code: number) => void;
}) {
  const components: Stoppable[] = [];
  let stopping: Promise<void> | undefined;

  const shutdown = (reason: string, code = 0): Promise<void> => {
    if (stopping) return stopping;
    deps.log.info({ reason }, 'shutting down');
    deps.notifier.stopping(`stopping: ${reason}`);
    const timer = setTimeout(() => {
      deps.log.error({ timeoutMs: deps.stopTimeoutMs }, 'shutdown deadline passed; exiting');
      deps.exit(70);
    }, deps.stopTimeoutMs);
    timer.unref();
    stopping = (async () => {
      for (const c of [...components].reverse()) {
        try {
          await c.stop();
        } catch (err) {
          deps.log.warn({ err, component: c.name }, 'component failed to stop cleanly');
        }
      }
      clearTimeout(timer);
      deps.notifier.close();
      deps.log.info({ code }, 'stopped');
      deps.exit(code);
    })();
    return stopping;
  };

  return {
    add(c: Stoppable) {
      components.push(c);
    },
    shutdown,
    installSignalHandlers() {
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
      process.once('SIGINT', () => void shutdown('SIGINT'));
    },
    get isStopping() {
      return stopping !== undefined;
    },
  };
}
export type Lifecycle = ReturnType<typeof createLifecycle>;
