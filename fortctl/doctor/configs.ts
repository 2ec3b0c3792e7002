import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigCheck } from '../../lib/config/check.js';
import { UNPAIRED, type AgentConfigView, type DeploymentManagerConfigView } from '../../lib/config/views.js';
import { loadFortctlConfig, type FortctlConfig } from '../config.js';
import { fail, ok, reason, warn, type Check } from './check.js';

export interface DoctorFiles {
  agent: string;
  dm: string;
  fortctl: string;
}

/** The daemons' entry points: each loads its own configuration for doctor (`--check-config`). */
export interface DaemonEntryPoints {
  agent: string;
  dm: string;
}

/** Those of the release `root` (fortctl runs from the same release as the daemons it checks). */
export const daemonEntryPoints = (root: string): DaemonEntryPoints => ({
  agent: join(root, 'dist', 'agent', 'main.js'),
  dm: join(root, 'dist', 'deployment-manager', 'main.js'),
});

/** The configurations that loaded (a check each); what failed to load is left out of the checks that need it. */
export interface Loaded {
  agent?: AgentConfigView;
  dm?: DeploymentManagerConfigView;
  fortctl?: FortctlConfig;
}

/**
 * Each daemon's file loaded by that daemon (`--check-config`, lib/config/check.ts), so a FAIL
 * here is the error it would stop with, and doctor needs none of its code; fortctl's own here.
 */
export async function loadConfigs(
  files: DoctorFiles,
  daemons: DaemonEntryPoints,
): Promise<{ loaded: Loaded; checks: Check[] }> {
  const loaded: Loaded = {};
  const checks: Check[] = [];
  const load = async <T>(name: string, file: string, loader: (f: string) => T | Promise<T>): Promise<T | undefined> => {
    try {
      const config = await loader(file);
      checks.push(ok(`config ${name}`, `valid (${file})`));
      return config;
    } catch (err) {
      checks.push(fail(`config ${name}`, reason(err)));
      return undefined;
    }
  };
  const dmPresent = existsSync(files.dm);
  // The two daemons start concurrently (each loads its whole bundle); the checks keep their order.
  const agent = checkedBy<AgentConfigView>(daemons.agent, files.agent);
  const dm = dmPresent ? checkedBy<DeploymentManagerConfigView>(daemons.dm, files.dm) : undefined;
  loaded.agent = await load('agent.toml', files.agent, () => agent);
  if (dm) loaded.dm = await load('deployment-manager.toml', files.dm, () => dm);
  else
    checks.push(
      warn('config deployment-manager.toml', `${files.dm} not found: update checks skipped (--dm-config names it)`),
    );
  loaded.fortctl = await load('fortctl.toml', files.fortctl, loadFortctlConfig);
  if (loaded.agent) checks.push(pairingCheck(loaded.agent));
  return { loaded, checks };
}

/** `node <entry> --check-config --config <file>`: the configuration as that daemon loads it, or its error. */
function checkedBy<C>(entry: string, file: string): Promise<C> {
  const p = new Promise<C>((resolve, reject) => {
    execFile(
      process.execPath,
      [entry, '--check-config', '--config', file],
      { timeout: 30_000, maxBuffer: 4 << 20 },
      (err, stdout, stderr) => {
        try {
          const check = parseConfigCheck<C>(stdout);
          if (check.ok) resolve(check.config);
          else reject(new Error(check.message));
        } catch (notCheck) {
          const why = err ? err.message.split('\n')[0] : (notCheck as Error).message;
          reject(
            new Error(
              `${entry} --check-config did not answer (${why})${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join('; ')}` : ''}`,
            ),
          );
        }
      },
    );
  });
  p.catch(() => {}); // awaited in order by loadConfigs; never an unhandled rejection meanwhile
  return p;
}

/** Whether the fort has a cloud identity: without one there are no cloud endpoints to check. */
function pairingCheck(c: AgentConfigView): Check {
  if (c.identity)
    return ok('pairing', `paired as ${c.fort.id} (tenant ${c.identity.tenant}) since ${c.identity.paired_at}`);
  if (c.fort.id === UNPAIRED)
    return warn('pairing', 'not paired (fortctl pair): its cloud endpoints are not known yet');
  return ok('pairing', `configured as ${c.fort.id} in agent.toml (not paired)`);
}
