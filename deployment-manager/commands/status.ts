import type { Command } from 'commander';
import { loadDeploymentManagerConfig } from '../config.js';
import { explain } from '../../lib/update-explain.js';
import { createStateFile } from '../update/state.js';
import { createWorkLock } from '../update/work-lock.js';

/** `status`: the persisted update state, read from the state file (works with the daemon down). */
export function statusCommand(program: Command): Command {
  return program
    .command('status')
    .description(
      'the update state machine, installed and previous release, and why an update is pending, waiting or failed',
    )
    .option('-c, --config <file>', 'deployment-manager.toml', '/etc/fort/deployment-manager.toml')
    .option('--json', 'print the state as JSON')
    .action((o: { config: string; json?: boolean }) => {
      const config = loadDeploymentManagerConfig(o.config);
      const s = createStateFile(config.state.path).load();
      if (o.json) {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        return;
      }
      const lines = [
        `step        ${s.step}`,
        `installed   ${s.installed ?? '-'}${s.installedArtifact ? ` (${s.installedArtifact})` : ''}`,
        `previous    ${s.previous ?? '-'}`,
        `deployment  ${s.deployment ? `${s.deployment.id} ${s.deployment.artifactName}` : '-'}`,
        `lock        ${((pid) => (pid === null ? 'free' : `held by pid ${pid} (the daemon in a cycle, or an operator's install/rollback)`))(createWorkLock(`${config.state.path}.lock`).holder())}`,
        `reports     ${s.reports.length === 0 ? 'all delivered' : `${s.reports.length} waiting for the server: ${s.reports.map((r) => r.status).join(', ')}`}`,
        `why         ${explain(s)}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
