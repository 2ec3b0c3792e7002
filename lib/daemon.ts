import { createLogger, type Logger } from './logger.js';
import { createNotifier, type Notifier } from './sd-notify.js';
import { readRuntimeEnv, type RuntimeEnv } from './runtime-env.js';
import { createLifecycle, type Lifecycle } from './lifecycle.js';
import { failStart } from './process-main.js';
import { parseDaemonArgs } from './daemon-args.js';
import { printConfigCheck } from './config/check.js';

export interface DaemonConfig {
  log: { level: string };
  lifecycle: { stop_timeout_seconds: number };
}

export interface Daemon<C> {
  config: C;
  log: Logger;
  notifier: Notifier;
  lifecycle: Lifecycle;
  /** What the environment said (config file var, systemd, proxy variables). */
  runtime: RuntimeEnv;
  /** Runs the start-up; any failure is reported once and exits with its sysexits code. */
  start: (run: () => Promise<void>) => Promise<void>;
}

/**
 * The part every daemon's composition root shares: arguments, config (exit 78 before
 * anything starts), logger, sd_notify, and signal-driven graceful stop.
 */
export function bootDaemon<C extends DaemonConfig>(opts: {
  name: string;
  configEnvVar: string;
  defaultConfig: string;
  load: (file: string) => C;
  argv?: string[];
}): Daemon<C> {
  const runtime = readRuntimeEnv(opts.configEnvVar);
  const args = parseDaemonArgs(
    opts.argv ?? process.argv,
    opts.name,
    `config file (default: $${opts.configEnvVar} or ${opts.defaultConfig})`,
  );
  const file = args.config ?? runtime.configFile ?? opts.defaultConfig;
  // `--check-config` (fortctl doctor, operators): the config as loaded, then exit; nothing starts.
  if (args.checkConfig) printConfigCheck(file, opts.load);
  let config: C;
  try {
    config = opts.load(file);
  } catch (err) {
    failStart(opts.name, err);
  }
  const log = createLogger({ level: config.log.level, name: opts.name });
  const notifier = createNotifier(runtime.notify, log.child({ module: 'sd-notify' }));
  const lifecycle = createLifecycle({
    log,
    notifier,
    stopTimeoutMs: config.lifecycle.stop_timeout_seconds * 1000,
    exit: (code) => process.exit(code),
  });
  lifecycle.installSignalHandlers();
  return {
    config,
    log,
    notifier,
    lifecycle,
    runtime,
    async start(run) {
      try {
        await run();
      } catch (err) {
        notifier.close();
        failStart(opts.name, err, log);
      }
    },
  };
}
