import type { Command } from 'commander';
import { loadDeploymentManagerConfig } from './config.js';
import { createStateFile, type UpdateState } from './state.js';
import { createWorkLock } from './work-lock.js';

/** Why the state machine is where it is, in an operator's words. */
export function explain(s: UpdateState): string {
  const d = s.deployment;
  switch (s.step) {
    case 'idle':
      return s.lastError ? `idle; the last update failed: ${s.lastError}` : 'idle: no update in progress';
    case 'downloading':
      return `downloading ${d?.artifactName} (deployment ${d?.id}): ${d?.downloaded ?? 0} bytes so far; resumes from there after a restart`;
    case 'verifying':
      return `verifying ${d?.artifactName}: checksums, signature, device type; nothing is installed until it passes`;
    case 'installing':
      return `unpacking ${d?.artifactName} into releases/`;
    case 'switching':
      return `switching current to ${d?.target} and restarting the agent`;
    case 'health_checking':
      return `waiting for the agent to report healthy on ${d?.target} until ${d?.deadline}; otherwise it is rolled back to ${s.installed}`;
    case 'committed':
      return `${s.installed} is committed; cleaning up`;
    case 'rolling_back':
      return `rolling back to ${s.installed}: ${d?.reason ?? ''}`;
    case 'failed':
      return `the update of ${d?.artifactName} failed: ${s.lastError ?? d?.reason ?? 'unknown'}`;
  }
}

/** `status`: the persisted update state, read from the state file (works with the daemon down). */
export function statusCommand(program: Command): Command {
  return program
    .command('status')
    .description('the update state machine, installed and previous release, and why an update is pending, waiting or failed')
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
