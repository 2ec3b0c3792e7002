import { closeSync, constants, createReadStream, existsSync, fstatSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FortError } from '../../lib/errors.js';
import { writeFileAtomic } from '../../lib/files.js';
import type { Logger } from '../../lib/logger.js';
import type { ArtifactPublicKey } from '../artifact/keys.js';
import { stageReleaseArtifact } from '../artifact/release-payload.js';
import { currentRelease, pruneReleases, switchCurrent } from '../install/current.js';
import { commitRelease, verifiedReleaseDir } from '../install/unpack.js';
import {
  readOwnedJson,
  selfUpdateProofSchema,
  selfUpdateRequestSchema,
  selfUpdateStatusSchema,
  type SelfUpdatePaths,
  type SelfUpdateStatus,
} from './contract.js';

export interface RootSelfUpdateDeps {
  paths: SelfUpdatePaths;
  /** The deployment manager's install root (root's): releases/, current, stable. */
  installRoot: string;
  /** Root's own directory: the status the deployment manager follows. */
  workDir: string;
  /** The uid of the deployment manager (owner of its request directory): what root accepts files from. */
  dmUid: number;
  keys: ArtifactPublicKey[];
  deviceType: string;
  allowUnsigned: boolean;
  maxArtifactBytes: number;
  proofMs: number;
  pollMs: number;
  /** Restarts the deployment manager's unit (systemctl restart --no-block). */
  restartUnit(): Promise<void>;
  log: Logger;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

export type RootOutcome = 'nothing' | 'refused' | 'committed' | 'rolled_back';

/**
 * Root's side of a deployment manager self-update, one run of fort-dm-self-update.service:
 * takes fort-dm's request, verifies the artifact again with root's keys, unpacks it under
 * root's install root, switches `current`, restarts the unit, and guards it: only a new
 * deployment manager that proves itself before the deadline becomes `stable`; otherwise
 * `current` goes back to `stable` and the unit is restarted on it.
 *
 * It runs from `stable`, never from the release under trial, so the guard does not depend on
 * the new code working. Every step is persisted in status.json first; while `active` exists
 * the path unit starts this again after a crash or a reboot, and it carries on from the status.
 */
export async function runRootSelfUpdate(deps: RootSelfUpdateDeps): Promise<RootOutcome> {
  const { paths, log } = deps;
  const now = deps.now ?? (() => new Date());
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const save = (s: Omit<SelfUpdateStatus, 'updatedAt'>): SelfUpdateStatus => {
    const next = { ...s, updatedAt: now().toISOString() };
    mkdirSync(deps.workDir, { recursive: true, mode: 0o755 });
    // Readable by fort-dm: it follows the update through this file.
    writeFileAtomic(paths.status, `${JSON.stringify(next, null, 2)}\n`, 0o644);
    log.info(
      { step: next.step, target: next.target, deploymentId: next.deploymentId, reason: next.reason },
      'self-update step',
    );
    return next;
  };
  const settle = (outcome: RootOutcome): RootOutcome => {
    rmSync(paths.active, { force: true });
    rmSync(verifiedReleaseDir(join(deps.installRoot, 'releases'), 'self-update'), { recursive: true, force: true });
    return outcome;
  };

  let status = readOwnedJson(paths.status, selfUpdateStatusSchema, 0);
  const resuming = existsSync(paths.active) && status && (status.step === 'verifying' || status.step === 'proving');
  if (!resuming) {
    const requestExists = existsSync(paths.request);
    const request = readOwnedJson(paths.request, selfUpdateRequestSchema, deps.dmUid);
    // Removed once answered (below): one the deployment manager writes again meanwhile is seen as answered.
    const taken = () => rmSync(paths.request, { force: true });
    if (!request) {
      taken();
      if (requestExists)
        log.error(
          { file: paths.request },
          'self-update request refused: not a regular file of the deployment manager with a valid request',
        );
      rmSync(paths.active, { force: true });
      return 'nothing';
    }
    if (status?.deploymentId === request.deploymentId && status.step !== 'verifying' && status.step !== 'proving') {
      log.info({ deploymentId: request.deploymentId, step: status.step }, 'self-update request already answered');
      taken();
      return 'nothing';
    }
    status = save({
      deploymentId: request.deploymentId,
      step: 'verifying',
      target: request.version,
      previous: currentRelease(deps.installRoot, 'stable') ?? null,
      artifact: request.artifact,
      deadline: null,
      reason: null,
    });
    writeFileAtomic(paths.active, `${status.deploymentId}\n`, 0o644);
    taken();
  }
  let s = status!;

  if (s.step === 'verifying') {
    try {
      await install(s);
    } catch (err) {
      // Whatever it is (a refusal, a full disk): answered, so the path unit does not start this again.
      save({ ...s, step: 'refused', reason: err instanceof Error ? err.message : String(err) });
      return settle('refused');
    }
    rmSync(paths.proof, { force: true });
    s = save({ ...s, step: 'proving', deadline: new Date(now().getTime() + deps.proofMs).toISOString() });
  }

  // proving: `current` on the target (again, after a crash between the status and the switch).
  if (currentRelease(deps.installRoot) !== s.target) {
    switchCurrent(deps.installRoot, s.target);
    await deps.restartUnit();
  }
  const until = Date.parse(s.deadline!);
  for (;;) {
    const proof = readOwnedJson(paths.proof, selfUpdateProofSchema, deps.dmUid);
    if (proof && proof.version === s.target && proof.deploymentId === s.deploymentId) {
      switchCurrent(deps.installRoot, s.target, 'stable');
      s = save({ ...s, step: 'committed' });
      pruneReleases(deps.installRoot, [s.target, s.previous]);
      return settle('committed');
    }
    if (now().getTime() >= until) break;
    await sleep(deps.pollMs);
  }
  const reason = `did not prove itself within ${deps.proofMs / 1000} s (ready, update server reached)`;
  if (s.previous) {
    switchCurrent(deps.installRoot, s.previous);
    await deps.restartUnit();
  }
  s = save({ ...s, step: 'rolled_back', reason });
  pruneReleases(deps.installRoot, [s.previous]);
  return settle('rolled_back');

  async function install(st: SelfUpdateStatus): Promise<void> {
    const running = currentRelease(deps.installRoot);
    if (!st.previous)
      throw new FortError(
        'FORT_ERR_ARTIFACT',
        `no stable deployment manager release in ${deps.installRoot} to fall back on`,
        { fatal: false },
      );
    if (running === st.target)
      throw new FortError('FORT_ERR_ARTIFACT', `the deployment manager already runs ${st.target}`, { fatal: false });
    const fd = openArtifact(st.artifact);
    const releases = join(deps.installRoot, 'releases');
    const verified = verifiedReleaseDir(releases, 'self-update');
    const v = await stageReleaseArtifact(
      createReadStream('', { fd }),
      {
        keys: deps.keys,
        deviceType: deps.deviceType,
        allowUnsigned: deps.allowUnsigned,
        maxBytes: deps.maxArtifactBytes,
      },
      releases,
      verified,
    );
    const unpacked = await commitRelease(v.release.dir, releases, { running, previous: st.previous }).catch(
      (err: unknown) => {
        rmSync(verified, { recursive: true, force: true });
        throw err;
      },
    );
    if (unpacked.version !== st.target || !existsSync(join(unpacked.dir, 'dist/deployment-manager/main.js'))) {
      rmSync(unpacked.dir, { recursive: true, force: true });
      throw new FortError(
        'FORT_ERR_ARTIFACT',
        `the artifact holds release ${unpacked.version}${unpacked.version === st.target ? ' without dist/deployment-manager/main.js' : `, not ${st.target}`}`,
        { fatal: false },
      );
    }
  }

  /** The artifact as fort-dm left it: a regular file it owns, opened without following a link. */
  function openArtifact(path: string): number {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      throw new FortError(
        'FORT_ERR_ARTIFACT',
        `cannot open the artifact ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        { fatal: false },
      );
    }
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== deps.dmUid) {
      closeSync(fd);
      throw new FortError(
        'FORT_ERR_ARTIFACT',
        `the artifact ${path} is not a regular file of the deployment manager's user`,
        { fatal: false },
      );
    }
    return fd;
  }
}
