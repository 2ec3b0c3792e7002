import type { NotifyEnv } from './sd-notify.js';
import type { ProxyEnv } from './proxy.js';

/**
 * The only place that reads the process environment: which config file to use (named by
 * an env var, never config values themselves), what systemd passed us, and the
 * conventional proxy variables (used when the config file has no `[proxy]` say).
 */
export interface RuntimeEnv {
  configFile: string | undefined;
  notify: NotifyEnv;
  proxy: ProxyEnv;
}

export function readRuntimeEnv(configVar: string, env: NodeJS.ProcessEnv = process.env): RuntimeEnv {
  const usec = env['WATCHDOG_USEC'] ? Number(env['WATCHDOG_USEC']) : undefined;
  // WATCHDOG_PID names the process the watchdog is meant for (a forking wrapper may see it).
  const watchdogForUs = !env['WATCHDOG_PID'] || Number(env['WATCHDOG_PID']) === process.pid;
  return {
    configFile: env[configVar] || undefined,
    notify: {
      socket: env['NOTIFY_SOCKET'] || undefined,
      watchdogUsec: usec && Number.isFinite(usec) && usec > 0 && watchdogForUs ? usec : undefined,
    },
    // Lower case first, as curl reads them.
    proxy: {
      httpsProxy: env['https_proxy'] || env['HTTPS_PROXY'] || undefined,
      noProxy: env['no_proxy'] || env['NO_PROXY'] || undefined,
    },
  };
}
