import { existsSync } from 'node:fs';
import { loadAgentConfig, UNPAIRED, type AgentConfig } from '../../config.js';
import { loadDeploymentManagerConfig, type DeploymentManagerConfig } from '../../../deployment-manager/config.js';
import { loadFortctlConfig, type FortctlConfig } from '../config.js';
import { fail, ok, reason, warn, type Check } from './check.js';

export interface DoctorFiles {
  agent: string;
  dm: string;
  fortctl: string;
}

/** The configurations that loaded (a check each); what failed to load is left out of the checks that need it. */
export interface Loaded {
  agent?: AgentConfig;
  dm?: DeploymentManagerConfig;
  fortctl?: FortctlConfig;
}

/** Each file loaded exactly as its process loads it, so a FAIL here is the error that process would stop with. */
export function loadConfigs(files: DoctorFiles): { loaded: Loaded; checks: Check[] } {
  const loaded: Loaded = {};
  const checks: Check[] = [];
  const load = <T>(name: string, file: string, loader: (f: string) => T): T | undefined => {
    try {
      const config = loader(file);
      checks.push(ok(`config ${name}`, `valid (${file})`));
      return config;
    } catch (err) {
      checks.push(fail(`config ${name}`, reason(err)));
      return undefined;
    }
  };
  loaded.agent = load('agent.toml', files.agent, loadAgentConfig);
  if (existsSync(files.dm)) loaded.dm = load('deployment-manager.toml', files.dm, loadDeploymentManagerConfig);
  else checks.push(warn('config deployment-manager.toml', `${files.dm} not found: update checks skipped (--dm-config names it)`));
  loaded.fortctl = load('fortctl.toml', files.fortctl, loadFortctlConfig);
  if (loaded.agent) checks.push(pairingCheck(loaded.agent));
  return { loaded, checks };
}

/** Whether the fort has a cloud identity: without one there are no cloud endpoints to check. */
function pairingCheck(c: AgentConfig): Check {
  if (c.identity) return ok('pairing', `paired as ${c.fort.id} (tenant ${c.identity.tenant}) since ${c.identity.paired_at}`);
  if (c.fort.id === UNPAIRED) return warn('pairing', 'not paired (fortctl pair): its cloud endpoints are not known yet');
  return ok('pairing', `configured as ${c.fort.id} in agent.toml (not paired)`);
}
