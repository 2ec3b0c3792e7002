import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FortError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { UpdateStep } from './state.js';

/** What a hook is told about the update it runs in (environment variables `FORT_*`). */
export interface HookContext {
  deploymentId: string;
  artifactName: string;
  target: string | null;
  installed: string | null;
}
export type RunHooks = (step: UpdateStep, ctx: HookContext) => Promise<void>;

const STDERR_TAIL = 200;

/**
 * Operator hooks, after Mender's state scripts: executables in `hooks_dir` named `<step>` or
 * `<step>_<anything>` run in name order before the step's action (e.g. `installing_10_backup`,
 * `downloading_maintenance_window`). A step may be entered again after a restart, so hooks
 * must be idempotent. A hook that exits non-zero or times out fails the step; the updater
 * decides what that means (before the switch: the update fails; after it: logged).
 * Hooks writable by group/others, or owned by another user than us or root, are refused:
 * they run with the deployment manager's rights.
 */
export function createHookRunner(o: { dir: string; timeoutMs: number; log: Logger; path?: string }): RunHooks {
  return async (step, ctx) => {
    if (!existsSync(o.dir)) return;
    const names = readdirSync(o.dir)
      .filter((n) => n === step || n.startsWith(`${step}_`))
      .sort();
    const uid = process.getuid?.() ?? 0;
    for (const name of names) {
      const file = join(o.dir, name);
      const st = statSync(file);
      if (!st.isFile()) continue;
      if ((st.mode & 0o022) !== 0 || (st.uid !== uid && st.uid !== 0)) {
        throw new FortError(
          'FORT_ERR_UPDATE_HOOK',
          `hook ${name} is writable by group/others or owned by another user; refusing to run it`,
          { fatal: false },
        );
      }
      if ((st.mode & 0o100) === 0)
        throw new FortError('FORT_ERR_UPDATE_HOOK', `hook ${name} is not executable`, { fatal: false });
      const env = {
        PATH: o.path ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        FORT_UPDATE_STEP: step,
        FORT_DEPLOYMENT_ID: ctx.deploymentId,
        FORT_ARTIFACT_NAME: ctx.artifactName,
        FORT_TARGET_RELEASE: ctx.target ?? '',
        FORT_INSTALLED_RELEASE: ctx.installed ?? '',
      };
      const started = Date.now();
      const failure = await new Promise<string | null>((resolve) => {
        execFile(
          file,
          [],
          { env, cwd: o.dir, timeout: o.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024 },
          (err, _stdout, stderr) => {
            if (!err) return resolve(null);
            const tail = stderr.trim().split('\n').pop()?.slice(0, STDERR_TAIL);
            const e = err as Error & { killed?: boolean; code?: number | string | null };
            const why = e.killed
              ? `timed out after ${o.timeoutMs / 1000} s`
              : typeof e.code === 'number'
                ? `exited with status ${e.code}`
                : e.message;
            resolve(`hook ${name} ${why}${tail ? `: ${tail}` : ''}`);
          },
        );
      });
      o.log.info({ hook: name, step, ms: Date.now() - started, ok: failure === null }, 'update hook ran');
      if (failure) throw new FortError('FORT_ERR_UPDATE_HOOK', failure, { fatal: false });
    }
  };
}
