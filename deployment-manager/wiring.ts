import { createAdminClient } from '../lib/admin-client.js';
import type { Logger } from '../lib/logger.js';
import { resolveProxy, type ProxyEnv } from '../lib/proxy.js';
import { loadTlsMaterial } from '../lib/tls.js';
import type { DeploymentManagerConfig } from './config.js';
import { createAgentReporter, reportingStateFile } from './agent-link/report.js';
import { createStateFile } from './update/state.js';

type UpdatesConfig = NonNullable<DeploymentManagerConfig['updates']>;

/** What differs between the daemon (main.ts) and a one-shot operator command (commands/operate.ts). */
export interface WiringDeps {
  log: Logger;
  /** HTTPS_PROXY / NO_PROXY as read at start (the config has no [proxy]): the update server's link. */
  proxyEnv: ProxyEnv;
  /** Level of the agent-report logger; default the log's own. A command without --verbose passes 'error'. */
  reportLogLevel?: string;
}

/** Per update service: the daemon gives it its own logger and, when paired, hears of admission. */
export interface UpdateServiceOptions {
  log: Logger;
  onAdmission?: (admitted: boolean) => void;
  /** Resolves once systemd was told the process is ready (a new deployment manager proves itself after it). */
  whenReady?: Promise<void>;
}

/**
 * The object graph the daemon and the operator's commands share, built in one place so they
 * cannot drift: the agent's admin client, the state file that tells the agent after every save,
 * and update services over both that take the same work lock. Nothing starts here; the callers
 * start, run, stop and close what they use.
 */
export function wireDeploymentManager(config: DeploymentManagerConfig, deps: WiringDeps) {
  const admin = createAdminClient({
    url: config.agent.admin_url,
    tls: loadTlsMaterial(config.agent.tls),
    timeoutMs: config.agent.timeout_seconds * 1000,
  });
  const plainStateFile = createStateFile(config.state.path);
  const bindings = { module: 'agent-report' };
  const reportLog =
    deps.reportLogLevel === undefined
      ? deps.log.child(bindings)
      : deps.log.child(bindings, { level: deps.reportLogLevel });
  const reporter = createAgentReporter({ client: admin, load: () => plainStateFile.load(), log: reportLog });
  const stateFile = reportingStateFile(plainStateFile, reporter);
  return {
    admin,
    reporter,
    stateFile,
    /**
     * Loads the update service's code, then makes services (not started) from the state as
     * persisted. Loaded only when asked: a daemon without [updates] never needs the artifact
     * reader or the Mender client in memory.
     */
    updateServices: async () => {
      const [{ createUpdateService }, { createWorkLock }] = await Promise.all([
        import('./update/service.js'),
        import('./update/work-lock.js'),
      ]);
      return (updates: UpdatesConfig, opts: UpdateServiceOptions) =>
        createUpdateService({
          config: updates,
          state: stateFile,
          initial: stateFile.load(),
          lock: createWorkLock(`${config.state.path}.lock`),
          admin,
          proxy: resolveProxy(undefined, deps.proxyEnv),
          log: opts.log,
          onAdmission: opts.onAdmission,
          whenReady: opts.whenReady,
        });
    },
  };
}
