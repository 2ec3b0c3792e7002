import { readBuildDate } from '../../lib/clock.js';
import type { ProxyEnv } from '../../lib/proxy.js';
import { readReleaseInfo } from '../../lib/version.js';
import { adminCheck } from './admin.js';
import type { Check } from './check.js';
import { clockCheck } from './clock.js';
import { loadConfigs, type DaemonEntryPoints, type DoctorFiles } from './configs.js';
import { dnsChecks } from './dns.js';
import { endpointCheck, outboundEndpoints } from './endpoints.js';
import { materialChecks } from './material.js';
import { updateServer } from './update-server.js';

export interface DoctorOptions {
  files: DoctorFiles;
  /** Whose `--check-config` loads the agent's and the deployment manager's files. */
  daemons: DaemonEntryPoints;
  /** Of each network check. */
  timeoutMs: number;
  /** HTTPS_PROXY / NO_PROXY, which the services use where their config says nothing. */
  proxyEnv: ProxyEnv;
  now?: () => Date;
}

/**
 * Every check, in the order an operator fixes things: files, then the agent, then the network.
 * Checks that need a file that failed to load are left out (its FAIL says why); the network
 * checks run concurrently, each bounded by the timeout.
 */
export async function runDoctor(o: DoctorOptions): Promise<Check[]> {
  const now = o.now ?? (() => new Date());
  const { loaded, checks } = await loadConfigs(o.files, o.daemons);
  const update = loaded.dm ? updateServer(loaded.dm) : undefined;
  const updateTarget = update && 'level' in update ? undefined : update;
  if (update && 'level' in update) checks.push(update);
  checks.push(...materialChecks(loaded, updateTarget, now()));
  const { endpoints, checks: proxyChecks } = outboundEndpoints(loaded.agent, updateTarget, o.proxyEnv);
  checks.push(...proxyChecks);
  const [admin, dns, probes] = await Promise.all([
    loaded.fortctl ? adminCheck(loaded.fortctl, o.timeoutMs) : undefined,
    dnsChecks(endpoints, o.timeoutMs),
    Promise.all(endpoints.map((e) => endpointCheck(e, o.timeoutMs))),
  ]);
  if (admin) checks.push(admin);
  checks.push(...dns, ...probes.map((p) => p.check));
  checks.push(
    clockCheck(
      now(),
      readBuildDate(readReleaseInfo().root),
      probes.flatMap((p) => (p.skew ? [p.skew] : [])),
    ),
  );
  return checks;
}
