import type { UpdateSummary } from './update-state.js';

/** Why the state machine is where it is, in an operator's words. */
export function explain(s: UpdateSummary): string {
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
    case 'self_updating':
      return `the agent runs ${d?.target}; the deployment manager is being updated to it by root (fort-dm-self-update.service) and must prove itself, or both go back to ${s.installed}`;
    case 'committed':
      return `${s.installed} is committed; cleaning up`;
    case 'rolling_back':
      return `rolling back to ${s.installed}: ${d?.reason ?? ''}`;
    case 'failed':
      return `the update of ${d?.artifactName} failed: ${s.lastError ?? d?.reason ?? 'unknown'}`;
  }
}
