import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { cliExitCode, ERRORS, EXIT, FortError } from '../../lib/errors.js';
import { createLogger } from '../../lib/logger.js';
import { readRuntimeEnv } from '../../lib/runtime-env.js';
import { loadDeploymentManagerConfig } from '../config.js';
import type { UpdateState } from '../update/state.js';
import type { CliIo } from '../artifact/cli.js';
import { wireDeploymentManager } from '../wiring.js';

interface OperateFlags {
  config: string;
  waitSeconds: number;
  verbose?: boolean;
}

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected whole seconds');
  return n;
}

/**
 * Runs one operator update in this process, through the daemon's own state machine and lock:
 * the same verification, install, health check and rollback as a deployment from the server.
 * If this process dies, the daemon resumes from the persisted state.
 */
async function operate(kind: { install: string } | { rollback: true }, o: OperateFlags, io: CliIo): Promise<void> {
  const config = loadDeploymentManagerConfig(o.config);
  if (!config.updates)
    throw new FortError(
      'FORT_ERR_CONFIG',
      `${o.config}: [updates] is not configured; updates are disabled on this fort`,
    );
  // Progress as JSON lines on stderr (--verbose), the outcome in words on stdout.
  const log = createLogger({
    level: o.verbose ? 'info' : 'warn',
    name: 'fort-deployment-manager',
    destination: { write: (line: string) => io.stderr(line) },
  });
  // The daemon's own wiring: the agent shows this update's progress too (the daemon reports again
  // once it sees the agent restarted), quietly unless --verbose.
  const { admin, reporter, updateServices } = wireDeploymentManager(config, {
    log,
    proxyEnv: readRuntimeEnv('FORT_DM_CONFIG').proxy,
    reportLogLevel: o.verbose ? 'info' : 'error',
  });
  const service = (await updateServices())(config.updates, { log });
  const before = service.updater.state;
  let after: UpdateState;
  try {
    after = await service.operate(kind, o.waitSeconds * 1000);
  } catch (err) {
    // Busy (the lock, an update under way: 75), nothing to roll back to (1), the agent unreachable (2), …
    if (!(err instanceof FortError)) throw err;
    io.stderr(`fort-deployment-manager: ${err.message}\n`);
    io.exitCode(cliExitCode(err));
    return;
  } finally {
    await service.stop();
    await reporter.settled();
    admin.close();
  }
  const what = 'install' in kind ? `install ${kind.install}` : 'rollback';
  if (after.step === 'self_updating') {
    io.stdout(
      `${what}: the agent runs ${after.deployment.target} and is healthy; the deployment manager daemon now updates itself to it through root (fortctl update status follows it)\n`,
    );
    io.exitCode(EXIT.OK);
  } else if (after.installed !== before.installed && after.lastError === null) {
    io.stdout(
      `${what}: ${after.installed} (${after.installedArtifact}) is installed and healthy; previous ${after.previous ?? '-'}\n`,
    );
    io.exitCode(EXIT.OK);
  } else {
    io.stdout(`${what}: failed: ${after.lastError ?? 'nothing was installed'}; running ${after.installed ?? '-'}\n`);
    io.exitCode(EXIT.FAILED);
  }
}

const common = (c: Command) =>
  c
    .option('-c, --config <file>', 'deployment-manager.toml', '/etc/fort/deployment-manager.toml')
    .option('--wait-seconds <n>', 'how long to wait for the daemon to finish its current cycle', seconds, 60)
    .option('-v, --verbose', 'log every step (JSON lines on stderr)');

/**
 * `install FILE` and `rollback`: operator updates for air-gapped sites and emergencies. Exit 0
 * done, 1 refused or rolled back (why is printed) or bad usage, 2 the agent unreachable, 75 busy
 * (try later), 78 bad config: the exit of the error's code (lib/error-catalogue.ts).
 */
export function operateCommands(program: Command, io: CliIo): void {
  common(program.command('install').argument('<file>', 'a Mender artifact (.mender) of a fort release'))
    .description(
      'verify and install an artifact from disk (air-gapped sites): the same checks, health check and rollback as a server deployment',
    )
    .action(async (file: string, o: OperateFlags) => {
      const path = resolve(file);
      if (!existsSync(path)) {
        io.stderr(`fort-deployment-manager: install: ${path}: no such file\n`);
        io.exitCode(ERRORS.FORT_ERR_USAGE.exit);
        return;
      }
      await operate({ install: path }, o, io);
    });
  common(program.command('rollback'))
    .description(
      'switch back to the previous release, health-checked like an update (rolled forward again if it does not come up)',
    )
    .action((o: OperateFlags) => operate({ rollback: true }, o, io));
}
