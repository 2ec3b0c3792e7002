import { Command } from 'commander';
import type { AdminClient } from '../lib/admin-client.js';
import { FortError } from '../lib/errors.js';
import { explain } from '../lib/update-explain.js';
import type { UpdateStateView } from '../lib/update-state.js';
import { printable } from './output.js';

type WithAdmin = <T>(call: (admin: AdminClient) => Promise<T>) => Promise<T>;

/** The deployment manager's last report, in the words of `fort-deployment-manager status`. */
export function formatUpdateState(view: UpdateStateView, now = new Date()): string {
  const s = view.state;
  if (!s || !view.reportedAt) {
    return (
      'the deployment manager has not reported its update state since the agent started (it does after every change, and after its next health check of the agent)\n' +
      'on the host, `fort-deployment-manager status` reads it from its state file\n'
    );
  }
  const ago = Math.max(0, Math.round((now.getTime() - Date.parse(view.reportedAt)) / 1000));
  const d = s.deployment;
  const lines = [
    `step        ${s.step}`,
    `installed   ${s.installed ?? '-'}${s.installedArtifact ? ` (${s.installedArtifact})` : ''}`,
    `previous    ${s.previous ?? '-'}`,
    `deployment  ${d ? `${d.id} ${d.artifactName}${d.target ? ` -> ${d.target}` : ''}` : '-'}`,
    `last error  ${s.lastError ?? '-'}`,
    `changed     ${s.updatedAt}`,
    `reported    ${view.reportedAt} (${ago} s ago)`,
    `why         ${explain(s)}`,
  ];
  return `${lines.map(printable).join('\n')}\n`;
}

/** `fortctl update status`: the update state as the deployment manager last reported it to the agent. */
export function updateCommand(withAdmin: WithAdmin): Command {
  const update = new Command('update').description('software updates of this fort (run by the deployment manager)');
  update
    .command('status')
    .description(
      'the update step, installed and previous release, deployment and last error, as the deployment manager last reported them to the agent',
    )
    .action(async (_o: unknown, cmd: Command) => {
      const { statusCode, body } = await withAdmin((a) => a.updateState());
      if (statusCode === 403)
        throw new FortError('FORT_ERR_FORBIDDEN', `admin API refused this certificate: ${body.detail ?? ''}`);
      if (statusCode === 404)
        throw new FortError(
          'FORT_ERR_ADMIN_LINK',
          'this agent does not serve the update state (a release before it did); on the host: fort-deployment-manager status',
        );
      if (statusCode !== 200)
        throw new FortError(
          'FORT_ERR_ADMIN_LINK',
          `admin API answered ${statusCode} to GET /admin/v1/update-state: ${body.detail ?? ''}`,
        );
      const view: UpdateStateView = { state: body.state, reportedAt: body.reportedAt };
      process.stdout.write(
        cmd.optsWithGlobals<{ json?: boolean }>().json ? `${JSON.stringify(view, null, 2)}\n` : formatUpdateState(view),
      );
      process.exitCode = 0;
    });
  return update;
}
