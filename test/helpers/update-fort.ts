import { mountSmallFs } from './small-fs.js';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import {
  appendFileSync,
  cpSync,
  createReadStream,
  mkdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { PkiPaths } from '../../lib/pki/layout.js';
import { startSupervised, type ProcessSpec, type Supervised } from '../../scripts/supervisor/process.js';
import { buildRelease } from '../../scripts/release.js';
import { unpackRelease } from '../../deployment-manager/install/unpack.js';
import { switchCurrent } from '../../deployment-manager/install/current.js';
import { httpsRequest } from './https.js';
import {
  DIST,
  eventually,
  REPO,
  startDeploymentManager,
  testInstallation,
  testPki,
  type TestInstallation,
} from './fort.js';
import { testDevCloud, type TestDevCloud } from './dev-cloud.js';

type BuiltRelease = ReturnType<typeof buildRelease>;

export interface UpdatableFortOptions {
  fortId?: string;
  deviceType?: string;
  healthDeadlineSeconds?: number;
  /** Extra lines for the `[updates]` table (e.g. `hooks_dir = "…"`). */
  updatesToml?: string;
  /** `[updates.server]` poll, inventory and retry intervals (default 1 s each). */
  pollSeconds?: number;
  inventorySeconds?: number;
  retrySeconds?: number;
  /** `[updates]` resume_seconds (unset: the default, 30 s). */
  resumeSeconds?: number;
  /** Configure the update server (default); false: an air-gapped fort (`install FILE` only). */
  server?: boolean;
  /** Start the deployment manager (default) and have the device accepted by the server. */
  startDm?: boolean;
  /** Extra spec for the deployment manager process (e.g. proxy variables). */
  dm?: Partial<ProcessSpec>;
  /** Extra spec for the agent process (e.g. the unit's node flags). */
  agent?: Partial<ProcessSpec>;
  /**
   * The installation's IoT link, cloud authorisation, log level and the deployment manager's
   * agent health interval (testInstallation's options; the interval's default there is 1 s).
   */
  install?: { iot?: boolean; cloudAuth?: boolean; logLevel?: string; healthIntervalSeconds?: number };
  /**
   * The identity comes from pairing (`pair()`): agent.toml has none, the deployment manager has
   * [updates.paired] (and is admitted by the test, once paired), and the cloud sends the signing
   * key's public half as its artifact key when a fort pairs.
   */
  paired?: boolean;
  /** List the signing key in the deployment manager's `artifact_keys` (default). */
  artifactKeys?: boolean;
  /**
   * `[updates] agent_restart_dir`, watched by the agent's supervisor as root's
   * fort-agent-restart.path does (default, as install.sh sets it up); false: the agent is drained.
   */
  agentRestart?: boolean;
  /** The dev cloud's device certificates live this long (its pairing.device_cert_seconds). */
  deviceCertSeconds?: number;
  /** The data directory (the agent's store, the DM's state and staging) on a tmpfs of this many MiB: `fort.dataFs` fills it. */
  dataFsMib?: number;
  /** Called with the install root before release 1.0.0 goes in (e.g. to mount a small file system there). */
  beforeInstall?: (root: string) => void;
}

/**
 * A fort installed the way the install script lays it out: release 1.0.0 unpacked under
 * `<root>/releases`, `current` pointing at it, the agent run from `current` under a supervisor
 * that restarts it like systemd's Restart=always, the dev update server (mutual TLS) and a
 * deployment manager configured for it and admitted. Releases carry no node_modules: Node finds
 * the repository's through `<root>/node_modules`.
 */
export async function startUpdatableFort(o: UpdatableFortOptions = {}) {
  // Paired: the id pairing gives (pair()).
  let fortId = o.paired ? 'unpaired' : (o.fortId ?? 'fort-dev-1');
  const deviceType = o.deviceType ?? 'fort-test';
  const pki: PkiPaths = await testPki();
  const inst: TestInstallation = await testInstallation(pki, {
    fortId,
    ...o.install,
    ...(o.paired ? { paired: true } : {}),
  });
  const dataFs = o.dataFsMib ? mountSmallFs(inst.layout.dataDir, o.dataFsMib) : undefined;
  const root = join(inst.dir, 'opt');
  const out = join(inst.dir, 'out');
  const signKey = join(inst.dir, 'sign.pem');
  const signPub = join(inst.dir, 'sign.pub.pem');
  const stateFile = join(inst.layout.dataDir, 'deployment-manager/state.json');
  const stagingDir = join(inst.dir, 'data/dm/staging');
  const agentRestartDir = o.agentRestart === false ? undefined : join(inst.dir, 'data/dm/agent-restart');
  mkdirSync(root, { recursive: true });
  o.beforeInstall?.(root);
  symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
  execFileSync('openssl', ['genrsa', '-traditional', '-out', signKey, '2048'], { stdio: 'ignore' });
  execFileSync('openssl', ['rsa', '-in', signKey, '-pubout', '-out', signPub], { stdio: 'ignore' });
  const first = buildRelease({ version: '1.0.0', deviceType, out, nodeModules: false, repo: REPO });
  await unpackRelease(createReadStream(first.tarball), join(root, 'releases'), {
    maxBytes: 1 << 30,
    maxEntries: 100_000,
  });
  switchCurrent(root, '1.0.0');

  const dev: TestDevCloud = await testDevCloud(pki, {
    ports: inst.layout.ports,
    ...(o.paired ? { pairingArtifactKey: signPub } : {}),
    ...(o.deviceCertSeconds ? { deviceCertSeconds: o.deviceCertSeconds } : {}),
  });
  const agent: Supervised = await startSupervised({
    name: 'agent',
    script: join(root, 'current/dist/agent/main.js'),
    args: ['--config', inst.files.agent],
    restart: true,
    restartDelayMs: 100,
    ...(agentRestartDir ? { restartOnWriteIn: agentRestartDir } : {}),
    ...o.agent,
  });
  await agent.waitReady(20_000);

  appendFileSync(
    inst.files.dm,
    `\n[updates]\ninstall_root = "${root}"\nstaging_dir = "${stagingDir}"\ndevice_type = "${deviceType}"\n${o.artifactKeys === false ? '' : `artifact_keys = ["${signPub}"]\n`}health_deadline_seconds = ${o.healthDeadlineSeconds ?? 10}\n${agentRestartDir ? `agent_restart_dir = "${agentRestartDir}"\n` : ''}${o.resumeSeconds === undefined ? '' : `resume_seconds = ${o.resumeSeconds}\n`}${o.updatesToml ?? ''}` +
      (o.paired
        ? `[updates.paired]\npoll_seconds = ${o.pollSeconds ?? 1}\ninventory_seconds = ${o.inventorySeconds ?? 1}\nretry_seconds = ${o.retrySeconds ?? 1}\n`
        : '') +
      (o.server === false || o.paired
        ? ''
        : `[updates.server]\nurl = "${dev.mender.url}"\nauth_key = "${join(inst.dir, 'data/dm/mender-auth.pem')}"\nid_data = { fort_id = "${fortId}" }\npoll_seconds = ${o.pollSeconds ?? 1}\ninventory_seconds = ${o.inventorySeconds ?? 1}\nretry_seconds = ${o.retrySeconds ?? 1}\n` +
          `tls = { ca = "${pki.cloudServer.ca}", cert = "${pki.cloudDevice.deviceCert}", key = "${pki.cloudDevice.deviceKey}" }\n`),
  );

  let dm: Supervised | undefined;
  const startDm = async (extra: Partial<ProcessSpec> = {}) => {
    dm = await startDeploymentManager(inst.files.dm, { ...o.dm, ...extra, env: { ...o.dm?.env, ...extra.env } });
    await dm.waitReady(20_000);
    return dm;
  };
  if (o.startDm !== false) {
    await startDm();
    if (o.server !== false && !o.paired) {
      await dev.mender.waitFor(
        () => dev.mender.devices().find((d) => d.identity['fort_id'] === fortId),
        20_000,
        'the device asking to be admitted',
      );
      dev.mender.accept(fortId);
    }
  }

  const trust = {
    ca: readFileSync(pki.trustZone.ca),
    cert: readFileSync(pki.trustZone.fortctlCert),
    key: readFileSync(pki.trustZone.fortctlKey),
  };
  const fortctl = (...args: string[]) =>
    promisify(execFile)(process.execPath, [join(DIST, 'fortctl/main.js'), '-c', inst.files.fortctl, ...args]);
  const fort = {
    get fortId(): string {
      return fortId;
    },
    deviceType,
    pki,
    inst,
    dev,
    agent,
    root,
    out,
    signKey,
    signPub,
    stateFile,
    stagingDir,
    dataFs,
    get dm(): Supervised | undefined {
      return dm;
    },
    startDm,
    /** The deployment manager's own update identity ([updates.paired]). */
    identityDir: join(inst.layout.dataDir, 'deployment-manager', 'update-identity'),
    /** `fortctl pair` with a new code (for `id`, else the cloud picks one); returns the fort id. */
    async pair(id?: string): Promise<string> {
      const code = dev.pairing.codes.issue('t1', 600, id).code;
      const r = await fortctl('pair', '--cloud', dev.apiUrl, '--code', code, '--wait', '60');
      fortId = /^paired as (\S+) /.exec(r.stdout)![1]!;
      return fortId;
    },
    /** `fortctl unpair`: revoked in the cloud; waits until the agent is back unpaired. */
    async unpair(): Promise<void> {
      const starts = agent.starts;
      await fortctl('unpair');
      fortId = 'unpaired';
      await eventually(
        async () =>
          agent.starts > starts && (await fort.health().catch(() => undefined))?.fortId === 'unpaired'
            ? true
            : undefined,
        30_000,
        'the agent back unpaired',
      );
    },
    /** The agent's admin health (trust-zone mTLS). */
    async health(): Promise<{ status: string; version: string; fortId: string }> {
      const res = await httpsRequest(`https://127.0.0.1:${inst.layout.ports.admin}/admin/v1/health`, trust);
      return JSON.parse(res.body) as { status: string; version: string; fortId: string };
    },
    /** Waits until the agent answers healthy on `version`. */
    agentOn: (version: string, timeoutMs = 30_000) =>
      eventually(
        async () => ((await fort.health().catch(() => undefined))?.version === version ? true : undefined),
        timeoutMs,
        `the agent on ${version}`,
      ),
    /** The release `current` points at. */
    current: () => readlinkSync(join(root, 'current')).replace(/^releases\//, ''),
    /** The persisted update state machine. */
    state: () =>
      JSON.parse(readFileSync(stateFile, 'utf8')) as {
        step: string;
        installed: string | null;
        previous: string | null;
        deployment: { id: string; downloaded: number; artifactFile: string } | null;
        reports: unknown[];
        lastError: string | null;
      },
    /** A signed release built from the repository (or a broken one whose agent exits at start). */
    release(version: string, opts: { broken?: boolean; key?: string } = {}): BuiltRelease {
      let repo = REPO;
      if (opts.broken) {
        repo = join(inst.dir, `broken-${version}`);
        cpSync(join(REPO, 'dist'), join(repo, 'dist'), {
          recursive: true,
          filter: (src) => !src.startsWith(join(REPO, 'dist', 'test')),
        });
        cpSync(join(REPO, 'package.json'), join(repo, 'package.json'));
        cpSync(join(REPO, 'systemd'), join(repo, 'systemd'), { recursive: true });
        cpSync(join(REPO, 'scripts', 'install.sh'), join(repo, 'scripts', 'install.sh'));
        writeFileSync(join(repo, 'dist/agent/main.js'), 'process.exit(3);\n');
      }
      return buildRelease({ version, deviceType, key: opts.key ?? signKey, out, nodeModules: false, repo });
    },
    /** Uploads and deploys a release to this fort; returns the deployment id. */
    async deploy(release: BuiltRelease): Promise<string> {
      await dev.mender.upload(release.artifact);
      return dev.mender.deploy({ artifactName: release.artifactName, devices: fortId }).id;
    },
    /** The fort's end of a deployment as the server recorded it, once it is finished. */
    finished: (deploymentId: string, timeoutMs = 90_000) =>
      dev.mender.waitFor(
        () => {
          const d = dev.mender.deployment(deploymentId)?.devices[0];
          return d && ['success', 'failure', 'already-installed', 'aborted'].includes(d.status) ? d : undefined;
        },
        timeoutMs,
        'the deployment to finish',
      ),
    async stop() {
      await dm?.stop().catch(() => undefined);
      await agent.stop().catch(() => undefined);
      await dev.stop();
      dataFs?.unmount();
      inst.cleanup();
    },
  };
  return fort;
}
export type UpdatableFort = Awaited<ReturnType<typeof startUpdatableFort>>;
