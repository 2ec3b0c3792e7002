import {
  copyFileSync,
  createReadStream,
  existsSync,
  mkdirSync,
  rmSync,
  statSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { Agent } from 'node:https';
import { hostname, platform, release as osRelease } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { isDiskFull } from '../../lib/disk-full.js';
import { FortError } from '../../lib/errors.js';
import { writeFileAtomic } from '../../lib/files.js';
import { readReleaseInfo } from '../../lib/version.js';
import type { AdminClient } from '../../lib/admin-client.js';
import type { Logger } from '../../lib/logger.js';
import { loadTlsMaterial } from '../../lib/tls.js';
import { proxyAgentFor, type ProxySettings } from '../../lib/proxy.js';
import type { DeploymentManagerConfig } from '../config.js';
import { loadArtifactKeyFiles } from '../artifact/keys.js';
import { stageReleaseArtifact } from '../artifact/release-payload.js';
import { downloadArtifact } from './download.js';
import {
  commitRelease,
  releaseUnpackLimits,
  removeUnpackLeftovers,
  unpackRelease,
  verifiedReleaseDir,
} from '../install/unpack.js';
import { currentRelease, pruneReleases, switchCurrent } from '../install/current.js';
import { loadOrCreateAuthKey } from '../mender/auth-key.js';
import { createMenderClient, type MenderClient } from '../mender/client.js';
import type { DeploymentState, StateFile, UpdateState } from './state.js';
import { createUpdater } from './updater.js';
import { createHookRunner } from './hooks.js';
import type { WorkLock } from './work-lock.js';
import { jitter, repeat, type Repeating } from './repeat.js';
import {
  readOwnedJson,
  selfUpdatePaths,
  selfUpdateStatusSchema,
  type SelfUpdateProof,
  type SelfUpdateRequest,
} from '../self-update/contract.js';

type UpdatesConfig = NonNullable<DeploymentManagerConfig['updates']>;

/** How long a restart asked of root may take to show (the agent gone or a new process) before the agent is drained instead. */
const AGENT_RESTART_WAIT_MS = 3000;

/**
 * The artifact itself was refused, or there was no room to unpack it: not the tap broken by the
 * download failing (then the reader saw the download's error).
 */
const refusedBy = (err: unknown, tap: PassThrough): err is FortError =>
  err instanceof FortError && ['FORT_ERR_ARTIFACT', 'FORT_ERR_DISK_LOW'].includes(err.code) && !tap.errored;

/**
 * Wires the update state machine to the real world: the Mender client (mutual TLS, through the
 * proxy when one is set), the resumable download, the artifact reader, the release unpacker,
 * the `current` symlink, and the agent over the admin API (drain = restart under systemd).
 */
export function createUpdateService(deps: {
  config: UpdatesConfig;
  state: StateFile;
  initial: UpdateState;
  lock: WorkLock;
  admin: AdminClient;
  proxy?: ProxySettings | undefined;
  log: Logger;
  onAdmission?: (admitted: boolean) => void;
  /** Resolves once the process told systemd it is ready (a new deployment manager proves itself only then). */
  whenReady?: Promise<void>;
}) {
  const { config, log } = deps;
  const root = config.install_root;
  mkdirSync(config.staging_dir, { recursive: true, mode: 0o700 });
  const keys = loadArtifactKeyFiles(config.artifact_keys);
  const srv = config.server;
  const ownVersion = readReleaseInfo().version;
  const stopping = new AbortController();
  let agent: Agent | undefined;
  let server: MenderClient | undefined;
  /**
   * Admitted since the inventory last went out: it goes out in the cycle that was admitted, as the
   * Mender client sends it right after authorising (its own timer's try was refused while pending,
   * and the next is inventory_seconds, hours, away).
   */
  let inventoryDue = false;
  if (srv) {
    const tls = loadTlsMaterial(srv.tls);
    const url = new URL(srv.url);
    const tlsOpts = { ca: tls.ca, cert: tls.cert, key: tls.key };
    agent = proxyAgentFor(url, deps.proxy, tlsOpts) ?? new Agent({ ...tlsOpts, keepAlive: true, maxSockets: 4 });
    const onAdmission = (admitted: boolean) => {
      if (admitted) inventoryDue = true;
      deps.onAdmission?.(admitted);
    };
    server = createMenderClient({
      serverUrl: url,
      agent,
      authKey: loadOrCreateAuthKey(srv.auth_key),
      idData: srv.id_data,
      deviceType: config.device_type,
      timeoutMs: srv.timeout_seconds * 1000,
      log: log.child({ module: 'mender' }),
      onAdmission,
    });
  }

  // A first start on a fort installed by hand: the running release counts as installed.
  let initial = deps.initial;
  if (initial.installed === null && currentRelease(root)) {
    const v = currentRelease(root)!;
    initial = deps.state.save({ ...initial, installed: v, installedArtifact: `fort-${v}` });
  }

  /** A staging path for a deployment: its id (the server's, or `file:<time>`) made safe as a file name. */
  const staged = (id: string, suffix: '.payload' | '.mender') =>
    join(config.staging_dir, `${id.replace(/[^A-Za-z0-9._-]/g, '_')}${suffix}`);
  const releasesDir = join(root, 'releases');
  const releaseArtifact = {
    keys,
    deviceType: config.device_type,
    allowUnsigned: config.allow_unsigned,
    maxBytes: config.max_artifact_mb * 1024 * 1024,
  };
  /**
   * Verifies an artifact stream and unpacks its release as it streams, to `releases/.verified-<id>`
   * once verified: the payload a deployment's `installing` step installs.
   */
  const verifyInto = async (d: DeploymentState, input: Readable) => {
    try {
      const v = await stageReleaseArtifact(input, releaseArtifact, releasesDir, verifiedReleaseDir(releasesDir, d.id));
      return { artifactName: v.artifactName, payload: v.release.dir };
    } catch (err) {
      // What it unpacked is removed; the deployment waits for space (steps.ts) rather than failing.
      if (isDiskFull(err))
        throw new FortError('FORT_ERR_DISK_LOW', `no space left unpacking the release in ${releasesDir}`, {
          fatal: false,
          cause: err,
        });
      throw err;
    }
  };
  /** Verifications running alongside downloads, by deployment id. */
  const onTheWay = new Map<
    string,
    { verified: Promise<{ artifactName: string; payload: string }>; tap: PassThrough }
  >();
  /** The agent over the admin API: restarted (or drained, and restarted by systemd); healthy on a version. */
  const agentLink = {
    restart: async () => {
      if (config.agent_restart_dir && (await restartedByRoot(config.agent_restart_dir))) return;
      try {
        await deps.admin.drain();
      } catch (err) {
        log.warn(
          { reason: (err as Error).message },
          'agent did not take the drain request; it starts the new release when systemd restarts it',
        );
      }
    },
    runs: async (v: string) => {
      const { statusCode, body } = await deps.admin.health();
      return statusCode === 200 && (body.status === 'healthy' || body.status === 'degraded') && body.version === v;
    },
  };
  const updater = createUpdater({
    state: deps.state,
    initial,
    server,
    download: async (d, onProgress, signal) => {
      if (!agent || !d.uri)
        throw new FortError('FORT_ERR_UPDATE_SERVER', 'no update server to download from', { fatal: false });
      // Verified while it arrives (one pass, not download then read back); a refusal stops the download.
      const tap = new PassThrough();
      tap.on('error', () => undefined); // the download's own failure, seen through it
      const abort = new AbortController();
      const verified = verifyInto(d, tap);
      verified.catch((e: unknown) => refusedBy(e, tap) && abort.abort());
      onTheWay.set(d.id, { verified, tap });
      try {
        await downloadArtifact({
          url: new URL(d.uri),
          agent,
          dest: d.artifactFile,
          maxBytes: config.max_artifact_mb * 1024 * 1024,
          reserveBytes: 64 * 1024 * 1024,
          stallTimeoutMs: 60_000,
          attempts: 5,
          tap,
          signal: AbortSignal.any([abort.signal, signal]),
          onProgress,
          log,
        });
      } catch (err) {
        const refusal = await verified.then(
          () => undefined,
          (e: unknown) => e,
        );
        throw refusedBy(refusal, tap) ? refusal : err;
      }
    },
    verify: async (d) => {
      const early = onTheWay.get(d.id);
      onTheWay.delete(d.id);
      if (early) {
        try {
          return await early.verified;
        } catch (err) {
          if (refusedBy(err, early.tap)) throw err;
          log.info(
            { deploymentId: d.id, reason: (err as Error).message },
            'verifying the artifact from disk (the pass during the download did not complete)',
          );
        }
      }
      // After a restart, or an operator's file.
      return verifyInto(d, createReadStream(d.artifactFile));
    },
    install: async (d) => {
      const protect = { running: currentRelease(root) ?? updater.state.installed, previous: updater.state.previous };
      // Left by a deployment manager that staged the tarball itself (before 1.0.x): unpack it now.
      if (statSync(d.payload, { throwIfNoEntry: false })?.isFile())
        return unpackRelease(createReadStream(d.payload), releasesDir, {
          ...releaseUnpackLimits(releaseArtifact.maxBytes),
          protect,
        });
      // Gone (a crash after it was renamed, before the state moved on): verify and unpack the artifact again.
      if (!existsSync(d.payload)) await verifyInto(d, createReadStream(d.artifactFile));
      return commitRelease(d.payload, releasesDir, protect);
    },
    switchTo: (v) => switchCurrent(root, v),
    agent: agentLink,
    discard: (d) => {
      // An operator's file (install FILE) is theirs to keep.
      if (d.source === 'server') rmSync(d.artifactFile, { force: true });
      rmSync(verifiedReleaseDir(releasesDir, d.id), { recursive: true, force: true });
      rmSync(staged(d.id, '.payload'), { recursive: true, force: true }); // staged by a deployment manager before 1.0.x
    },
    keepReleases: (versions) => pruneReleases(root, versions),
    hooks: config.hooks_dir
      ? createHookRunner({ dir: config.hooks_dir, timeoutMs: config.hook_timeout_seconds * 1000, log })
      : undefined,
    healthDeadlineMs: config.health_deadline_seconds * 1000,
    // The new agent is ready ~0.3 s after systemd starts it: asked every 50 ms (a kept-alive mTLS
    // request, for under a second), it is seen ~25 ms later on average, not 100 as at 200 ms.
    healthPollMs: 50,
    diskRetryMs: config.disk_retry_seconds * 1000,
    diskWaitMs: config.disk_wait_minutes * 60_000,
    abortCheckMs: config.abort_check_seconds * 1000,
    budget: { stepAttempts: config.step_attempts, steps: 40 },
    selfUpdate: selfUpdateLink(),
    stopSignal: stopping.signal,
    log,
  });

  /**
   * Asks root's fort-agent-restart.path for `systemctl restart fort-agent` (a file written in
   * `dir`) and waits until the agent goes away or answers as a new process: started at once,
   * without the RestartSec= a drained agent waits (2 s of every update, issue 19). False when
   * nothing happened within AGENT_RESTART_WAIT_MS (the path unit not enabled): then it is drained.
   */
  async function restartedByRoot(dir: string): Promise<boolean> {
    const startedAt = async () => (await deps.admin.version().catch(() => undefined))?.body.startedAt;
    const before = await startedAt();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Written in place (one IN_CLOSE_WRITE on the directory: one trigger); what it says is for people.
    const request = { requestedAt: new Date().toISOString(), by: process.pid };
    writeFileSync(join(dir, 'request'), `${JSON.stringify(request)}\n`, { mode: 0o600 });
    const until = performance.now() + AGENT_RESTART_WAIT_MS;
    while (performance.now() < until) {
      const now = await startedAt();
      if (before === undefined || now !== before) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    log.warn(
      { dir, waitedMs: AGENT_RESTART_WAIT_MS },
      "root's fort-agent-restart.path did not restart the agent; draining it instead (systemd starts it after RestartSec=)",
    );
    return false;
  }

  /** The deployment manager's side of its own update (self-update/contract.ts); absent when not configured. */
  function selfUpdateLink() {
    const self = config.self_update;
    if (!self) return undefined;
    const paths = selfUpdatePaths(self);
    let requested: string | null = null;
    return {
      ownVersion,
      answerMs: self.proof_seconds * 1000,
      request(d: DeploymentState, version: string) {
        if (requested === d.id) return;
        mkdirSync(self.request_dir, { recursive: true, mode: 0o700 });
        // Root reads only a file of this process's user: an operator's file is copied into staging first.
        let artifact = d.artifactFile;
        if (d.source !== 'server') {
          artifact = staged(d.id, '.mender');
          if (!existsSync(artifact)) copyFileSync(d.artifactFile, artifact);
        }
        const request: SelfUpdateRequest = {
          deploymentId: d.id,
          artifact,
          version,
          requestedAt: new Date().toISOString(),
        };
        writeFileAtomic(paths.request, `${JSON.stringify(request)}\n`, 0o600);
        requested = d.id;
        log.info({ deploymentId: d.id, version }, 'asked root to update the deployment manager');
      },
      status: (id: string) => {
        const st = readOwnedJson(paths.status, selfUpdateStatusSchema);
        return st?.deploymentId === id ? st : undefined;
      },
      async prove(d: DeploymentState) {
        await deps.whenReady;
        if (server) await server.sendInventory(inventoryAttributes());
        else if (!(await agentLink.runs(d.target!)))
          throw new FortError('FORT_ERR_UPDATE_SERVER', 'the agent is not healthy yet', { fatal: false });
        const proof: SelfUpdateProof = {
          deploymentId: d.id,
          version: ownVersion,
          pid: process.pid,
          at: new Date().toISOString(),
        };
        writeFileAtomic(paths.proof, `${JSON.stringify(proof)}\n`, 0o644);
        log.info({ deploymentId: d.id, version: ownVersion }, 'the new deployment manager proved itself to root');
      },
    };
  }

  const loops: Repeating[] = [];
  let busy: Promise<void> = Promise.resolve();
  /** One thing at a time: polls, steps and reports never overlap. */
  const serially = (f: () => Promise<void>) =>
    (busy = busy.then(f, f).catch((err: unknown) => log.error({ err }, 'update cycle failed')));

  /** Runs `f` holding the work lock, from the state as persisted; `busy` when another process holds it. */
  const exclusive = async (f: () => Promise<void>): Promise<{ busy: number } | undefined> => {
    const got = deps.lock.tryAcquire();
    if (!got.acquired) return { busy: got.holder };
    try {
      updater.reload();
      await f();
      return undefined;
    } finally {
      deps.lock.release();
    }
  };

  /** The last cycle failed or found the device not yet accepted: come back after retry_seconds, not a whole poll interval. */
  let retryNext = false;
  /** The server's own wait (Retry-After of a 429/503, clamped by the client), for the next cycle only. */
  let serverWaitMs: number | undefined;
  const cycle = async () => {
    retryNext = true;
    serverWaitMs = undefined;
    try {
      const busy = await exclusive(async () => {
        await updater.deliverReports();
        const before = updater.state.installed;
        await updater.runToIdle();
        if (srv) {
          const polled = await updater.poll((id) => staged(id, '.mender'));
          if (polled === 'started') await updater.runToIdle();
        }
        await updater.deliverReports();
        // A new release (from the server, a file or a rollback), or just admitted: tell the server now.
        if (updater.state.installed !== before || inventoryDue) await inventory();
      });
      if (busy)
        log.info(
          { pid: busy.busy },
          'another process (an operator command) holds the update lock; skipping this cycle',
        );
      else retryNext = updater.state.reports.length > 0; // undelivered reports: try again soon
    } catch (err) {
      // deployments/next, downloads, status: the server's wait. Not admission: an operator who
      // accepts the device expects it within retry_seconds, whatever a pending 401 suggests.
      if (err instanceof FortError && err.code !== 'FORT_ERR_NOT_ACCEPTED') serverWaitMs = err.retryAfterMs;
      if (err instanceof FortError && err.code === 'FORT_ERR_NOT_ACCEPTED')
        log.warn({ reason: err.message }, 'waiting for the update server to accept this device');
      else if (err instanceof FortError && !err.fatal)
        log.warn({ reason: err.message }, 'update cycle did not complete; retrying later');
      else throw err;
    }
  };
  /** An update an operator command left (it was killed, or its terminal closed) is carried on here. */
  const resume = async () => {
    if (deps.state.load().step === 'idle') return;
    await exclusive(() => updater.runToIdle());
  };
  /** What the server shows of this fort: the installed release, and what each process runs. */
  function inventoryAttributes() {
    const fs = statfsSync(root);
    return [
      { name: 'artifact_name', value: updater.state.installedArtifact ?? 'unknown' },
      { name: 'fort_version', value: updater.state.installed ?? 'unknown' },
      { name: 'fort_agent_version', value: currentRelease(root) ?? updater.state.installed ?? 'unknown' },
      { name: 'fort_deployment_manager_version', value: ownVersion },
      { name: 'device_type', value: config.device_type },
      { name: 'os', value: `${platform()} ${osRelease()}` },
      { name: 'hostname', value: hostname() },
      { name: 'free_disk_bytes', value: fs.bavail * fs.bsize },
    ];
  }
  const inventory = async () => {
    if (!server) return;
    await server.sendInventory(inventoryAttributes()).then(
      () => void (inventoryDue = false),
      (err: Error) => log.warn({ reason: err.message }, 'inventory not sent; retrying at the next interval'),
    );
  };
  const every = (ms: () => number, f: () => Promise<void>) => {
    loops.push(
      repeat(
        () => jitter(ms()),
        () => serially(f),
      ),
    );
  };

  return {
    updater,
    /** Resumes whatever a stop left, then polls and reports on the configured intervals. */
    start() {
      // What a kill -9 during an unpack left, and verified releases no deployment waits to install;
      // unpacks hold the work lock, so none is under way.
      void serially(
        async () =>
          void (await exclusive(() =>
            removeUnpackLeftovers(releasesDir, { keep: updater.state.deployment?.payload ?? undefined }),
          )),
      );
      if (srv)
        every(
          // ÷ 0.9: the ±10 % jitter never brings it under the server's wait.
          () =>
            serverWaitMs !== undefined
              ? Math.ceil(serverWaitMs / 0.9)
              : (retryNext ? srv.retry_seconds : srv.poll_seconds) * 1000,
          cycle,
        );
      if (srv) every(() => srv.inventory_seconds * 1000, inventory);
      every(() => config.resume_seconds * 1000, resume);
    },
    /**
     * An operator command (`install FILE`, `rollback`) in this process: waits up to `waitMs` for
     * the daemon to finish its cycle, refuses when an update is under way, then runs the same
     * state machine to idle and returns where it ended.
     */
    async operate(kind: { install: string } | { rollback: true }, waitMs: number): Promise<UpdateState> {
      const deadline = Date.now() + waitMs;
      for (;;) {
        const busy = await exclusive(async () => {
          if ('install' in kind) updater.startFromFile(kind.install);
          else updater.startRollback();
          // The deployment manager's own update is the daemon's to do: root restarts the daemon
          // on the new version, and only the daemon can prove it runs (this process would hold the lock).
          await updater.runToIdle({ leaveAt: ['self_updating'] });
          await inventory();
        });
        if (!busy) return updater.state;
        if (Date.now() >= deadline) {
          const s = deps.state.load();
          throw new FortError(
            'FORT_ERR_BUSY',
            `the deployment manager (pid ${busy.busy}) is busy${s.step === 'idle' ? '' : ` with ${s.deployment?.artifactName ?? 'an update'} (${s.step})`}; try again later`,
          );
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async stop() {
      stopping.abort();
      for (const loop of loops.splice(0)) loop.stop();
      await busy;
      agent?.destroy();
    },
  };
}
