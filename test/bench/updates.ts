import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  appendFileSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { startDevCloud } from '../../dev-cloud/app.js';
import { devCloudConfigSchema } from '../../dev-cloud/config.js';
import type { MenderServer } from '../../dev-cloud/mender/server.js';
import type { Supervised } from '../../scripts/supervisor/process.js';
import { nodeArgsFromUnit } from '../../scripts/supervisor/unit-file.js';
import { switchCurrent } from '../../deployment-manager/install/current.js';
import { buildArtifact, rsaKeyPair } from '../helpers/mender.js';
import type { Benchmark, BenchContext } from './benchmark.js';
import { installation } from './fixture.js';
import { median, peakRssMb, round } from './measure.js';

/**
 * Deployment manager benchmarks: the real DM process (dist/, the unit's node flags) against
 * the dev update server in-process (mutual TLS with the PKI's device certificate), a real
 * signed 200 MB artifact written by mender-artifact. The agent is not running: these measure
 * download, verification and polling, which do not need it.
 */

const FORT = 'fort-dev-1';
const DEVICE_TYPE = 'fort-bench';
const ARTIFACT = 'fort-bench-200m';
const PAYLOAD_BYTES = 200 * 1024 * 1024;
const MB = 1024 * 1024;
const RUNS = 3;
const POLLS = 15;

/** The release the benchmark's install root runs, and the version its artifact carries. */
const BENCH_RELEASE = '0.0.0-bench';

/** A fort release tarball (plain tar) of `version` whose padding.bin holds `bytes` random bytes. */
async function writeReleaseTar(file: string, version: string, bytes: number): Promise<void> {
  const tar = pack();
  const out = createWriteStream(file);
  const written = pipeline(tar, out);
  tar.entry({ name: 'package.json' }, JSON.stringify({ name: 'fort', version }));
  tar.entry({ name: 'dist/agent/main.js' }, '');
  const padding = tar.entry({ name: 'padding.bin', size: bytes });
  for (let n = 0; n < bytes; n += MB)
    if (!padding.write(randomBytes(Math.min(MB, bytes - n)))) await once(padding, 'drain');
  padding.end(Buffer.alloc(0));
  tar.finalize();
  await written;
}

const dmNodeArgs = (ctx: BenchContext) =>
  nodeArgsFromUnit(join(ctx.dist, '..', 'systemd', 'fort-deployment-manager.service'));

/** Written once per bench run (every benchmark here deploys the same file). */
async function signedArtifact(ctx: BenchContext): Promise<{ file: string; publicKey: string }> {
  const dir = join(ctx.tmp, 'updates');
  const file = join(dir, `${ARTIFACT}.mender`);
  const publicKey = join(dir, 'sign.pub.pem');
  if (existsSync(file)) return { file, publicKey };
  mkdirSync(dir, { recursive: true });
  const key = rsaKeyPair(dir, 'sign');
  // A release (plain tar) of BENCH_RELEASE, the one installed, padded with random bytes:
  // incompressible, so the artifact's own gzip layer gains nothing and the DM streams, inflates,
  // hashes and unpacks the full 200 MB; then the install refuses the version already running.
  const payload = join(dir, 'fort-agent-bench.tar');
  await writeReleaseTar(payload, BENCH_RELEASE, PAYLOAD_BYTES);
  buildArtifact({
    dir,
    name: ARTIFACT,
    deviceType: DEVICE_TYPE,
    payloadFile: payload,
    sign: { key: key.private },
    out: `${file}.part`,
  });
  rmSync(payload);
  rmSync(key.private);
  renameSync(`${file}.part`, file); // complete or absent, for the next benchmark of the run
  return { file, publicKey };
}

interface Rig {
  mender: MenderServer;
  dm: Supervised;
  stopDm(): Promise<void>;
  close(): Promise<void>;
}

/** Dev update server + a DM configured for it (poll every ~1 s), admitted and past its first poll. */
async function startRig(ctx: BenchContext, inventorySeconds: number): Promise<Rig> {
  const artifact = await signedArtifact(ctx);
  // Health interval 1 h: no agent runs, and its monitor is not what is measured.
  const inst = await installation(ctx.tmp, ctx.pki, 3600);
  const config = devCloudConfigSchema.parse({
    log: { level: 'warn' },
    server: {
      host: '127.0.0.1',
      port: inst.layout.ports.cloud,
      tls: { cert: ctx.pki.cloudServer.devCloudCert, key: ctx.pki.cloudServer.devCloudKey },
    },
    // In ctx.tmp (removed by the runner); the artifact stored there is served again by the next rig.
    mender: {
      port: inst.layout.ports.updates,
      device_ca: ctx.pki.cloudDevice.ca,
      artifacts_dir: join(ctx.tmp, 'updates', 'server-artifacts'),
    },
  });
  const cloud = await startDevCloud(config, pino({ level: 'warn' }));
  let dm: Supervised | undefined;
  const stopDm = async () => {
    if (dm) await ctx.scope.stop(dm);
    dm = undefined;
  };
  const close = async () => {
    try {
      await stopDm();
    } finally {
      await cloud.close();
    }
  };
  try {
    const mender = cloud.mender!;
    if (!mender.artifacts().some((a) => a.name === ARTIFACT)) await mender.upload(artifact.file);
    const root = join(inst.dir, 'opt');
    // The release the artifact carries is the one running: the install refuses it, after the
    // whole artifact was downloaded, verified and unpacked (what is measured).
    const running = join(root, 'releases', BENCH_RELEASE);
    mkdirSync(join(running, 'dist', 'agent'), { recursive: true });
    writeFileSync(join(running, 'package.json'), JSON.stringify({ name: 'fort', version: BENCH_RELEASE }));
    writeFileSync(join(running, 'dist', 'agent', 'main.js'), '');
    switchCurrent(root, BENCH_RELEASE);
    const q = JSON.stringify; // TOML basic strings accept these JSON strings
    const { pki } = ctx;
    appendFileSync(
      inst.files.dm,
      `\n[updates]\ninstall_root = ${q(root)}\nstaging_dir = ${q(join(inst.dir, 'data/dm/staging'))}\ndevice_type = ${q(DEVICE_TYPE)}\nartifact_keys = [${q(artifact.publicKey)}]\n` +
        `[updates.server]\nurl = ${q(mender.url)}\nauth_key = ${q(join(inst.dir, 'data/dm/mender-auth.pem'))}\nid_data = { fort_id = ${q(FORT)} }\n` +
        `poll_seconds = 1\ninventory_seconds = ${inventorySeconds}\nretry_seconds = 1\n` +
        `tls = { ca = ${q(pki.cloudServer.ca)}, cert = ${q(pki.cloudDevice.deviceCert)}, key = ${q(pki.cloudDevice.deviceKey)} }\n`,
    );
    dm = await ctx.scope.start({
      name: 'deployment-manager',
      script: join(ctx.dist, 'deployment-manager/main.js'),
      nodeArgs: dmNodeArgs(ctx),
      args: ['--config', inst.files.dm],
    });
    await dm.waitReady(30_000);
    await mender.waitFor(
      () => mender.devices().find((d) => d.identity['fort_id'] === FORT),
      20_000,
      'the DM asking to be admitted',
    );
    mender.accept(FORT);
    await mender.waitFor(() => mender.device(FORT).lastPollAt, 20_000, 'a first poll of the admitted DM');
    const live = dm;
    return { mender, dm: live, stopDm, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * User + system CPU of all the process's threads, ms. From /proc/<pid>/task/<tid>/schedstat
 * (ns on CPU): /proc/<pid>/stat counts 10 ms ticks, coarser than a whole poll cycle.
 */
function cpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // A thread that ended since the listing.
    }
  }
  if (!(ns > 0)) throw new Error(`bench: no CPU time in /proc/${pid}/task/*/schedstat`);
  return ns / 1e6;
}

/**
 * The DM's own clock on its `update step` lines: from `downloading` (the deployment taken, the
 * download about to start) to `installing` (the artifact downloaded, fsynced and verified:
 * signature, manifest checksums, release unpacked). The poll interval before it is not counted.
 */
function downloadVerifyMs(
  dm: Supervised,
  deploymentId: string,
  timeoutMs: number,
): Promise<{ ms: number; downloadMs: number }> {
  return new Promise((resolve, reject) => {
    let start: number | undefined;
    let verifying: number | undefined;
    const done = (err: Error | undefined, end = 0) => {
      clearTimeout(timer);
      dm.events.off('stdout', onLine);
      if (err) reject(err);
      else resolve({ ms: end - start!, downloadMs: verifying! - start! });
    };
    const onLine = (line: string) => {
      let l: { msg?: string; time?: string; step?: string; deploymentId?: string; reason?: string };
      try {
        l = JSON.parse(line) as typeof l;
      } catch {
        return;
      }
      if (l.deploymentId !== deploymentId) return;
      if (l.msg === 'update failed')
        done(new Error(`bench: the DM failed the deployment before installing: ${l.reason}`));
      else if (l.msg === 'update step' && l.step === 'downloading') start ??= Date.parse(l.time!);
      else if (l.msg === 'update step' && l.step === 'verifying') verifying ??= Date.parse(l.time!);
      else if (l.msg === 'update step' && l.step === 'installing' && start !== undefined && verifying !== undefined)
        done(undefined, Date.parse(l.time!));
    };
    const timer = setTimeout(
      () => done(new Error(`bench: deployment ${deploymentId} not verified within ${timeoutMs} ms`)),
      timeoutMs,
    );
    dm.events.on('stdout', onLine);
  });
}

/** One deployment of the artifact: download + verify time and the DM's peak RSS right after. */
async function deployOnce(rig: Rig): Promise<{ ms: number; downloadMs: number; peakMb: number }> {
  const id = rig.mender.deploy({ artifactName: ARTIFACT, devices: FORT }).id;
  const { ms, downloadMs } = await downloadVerifyMs(rig.dm, id, 120_000);
  const peakMb = peakRssMb(rig.dm.pid!);
  // The release is the one running: the install refuses it at once, and the DM reports failure.
  // Waiting for that keeps the next deployment from queueing behind this one.
  await rig.mender.waitFor(() => rig.mender.deployment(id)?.devices[0]?.finishedAt, 30_000, 'the deployment to finish');
  return { ms, downloadMs, peakMb };
}

/** curl by `exit` (its stdout went to sha256sum), sha256sum by `close` (its output read to the end). */
const exited = (p: ChildProcess, name: string, event: 'exit' | 'close') =>
  new Promise<void>((resolve, reject) => {
    p.once('error', reject);
    p.once(event, (code: number | null, signal: string | null) =>
      code === 0 ? resolve() : reject(new Error(`bench: ${name} exited with code ${code}, signal ${signal}`)),
    );
  });

/**
 * `curl … URL | sha256sum`, or with `keep`, `curl … URL | tee KEEP | sha256sum`: the same device
 * certificate and CA (mutual TLS, verified), spawn to exit. The tee is what a resumable download
 * must do too: keep the bytes on disk, not only hash them.
 */
async function curlSha256(ctx: BenchContext, url: string, keep?: string): Promise<{ ms: number; sha256: string }> {
  const t0 = performance.now();
  const curl = spawn(
    'curl',
    [
      '-sSf',
      '--cacert',
      ctx.pki.cloudServer.ca,
      '--cert',
      ctx.pki.cloudDevice.deviceCert,
      '--key',
      ctx.pki.cloudDevice.deviceKey,
      url,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], timeout: 120_000 },
  );
  const tee = keep ? spawn('tee', [keep], { stdio: [curl.stdout, 'pipe', 'inherit'], timeout: 120_000 }) : undefined;
  const sum = spawn('sha256sum', [], { stdio: [(tee ?? curl).stdout, 'pipe', 'inherit'], timeout: 120_000 });
  // The children hold their own copies of the pipes; these ends are not read here.
  curl.stdout.destroy();
  tee?.stdout.destroy();
  let out = '';
  sum.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  await Promise.all([
    exited(curl, 'curl', 'exit'),
    ...(tee ? [exited(tee, 'tee', 'exit')] : []),
    exited(sum, 'sha256sum', 'close'),
  ]);
  if (keep) rmSync(keep);
  return { ms: performance.now() - t0, sha256: out.split(' ')[0]! };
}

export const artifactDownloadVerify: Benchmark = {
  name: 'artifact-download-verify',
  unit: 'ratio',
  goal: { atLeast: 0.9 },
  async run(ctx) {
    const rig = await startRig(ctx, 86_400);
    try {
      const art = rig.mender.artifacts().find((a) => a.name === ARTIFACT)!;
      const dm: number[] = [];
      const download: number[] = [];
      const curlTee: number[] = [];
      const curl: number[] = [];
      const viaDm = async () => {
        const r = await deployOnce(rig);
        dm.push(r.ms);
        download.push(r.downloadMs);
      };
      const viaCurl = (keep: boolean, into: number[]) => async () => {
        // Kept where the DM keeps its artifact: the same file system.
        const file = keep ? join(ctx.tmp, 'updates', 'curl-tee.mender') : undefined;
        const r = await curlSha256(ctx, rig.mender.downloadLink(art.id).uri, file);
        if (r.sha256 !== art.sha256)
          throw new Error(`bench: curl | … | sha256sum got ${r.sha256}, the artifact is ${art.sha256}`);
        into.push(r.ms);
      };
      const viaCurlTee = viaCurl(true, curlTee);
      const viaCurlOnly = viaCurl(false, curl);
      // Rotated, who goes first too, median of each: the machine is shared and runs wander.
      const order = [viaDm, viaCurlTee, viaCurlOnly];
      for (let i = 0; i < RUNS; i++) for (let j = 0; j < order.length; j++) await order[(i + j) % order.length]!();
      const rate = (ms: number) => art.size / MB / (ms / 1000);
      const list = (xs: number[]) => xs.map((x) => round(x, 0)).join('/');
      process.stdout.write(
        `bench: ${round(art.size / MB, 1)} MB artifact: DM download+verify ${round(rate(median(dm)), 1)} MB/s (${list(dm)} ms, of which download ${list(download)} ms); ` +
          `curl | tee FILE | sha256sum ${round(rate(median(curlTee)), 1)} MB/s (${list(curlTee)} ms); ` +
          `curl | sha256sum (the baseline before issue 19) ${round(rate(median(curl)), 1)} MB/s (${list(curl)} ms)\n`,
      );
      return {
        value: round(rate(median(dm)) / rate(median(curlTee)), 2),
        baseline: { name: 'curl-tee-sha256sum-MB-per-s', value: round(rate(median(curlTee)), 1) },
        extra: { 'curl-sha256sum-MB-per-s': round(rate(median(curl)), 1) },
      };
    } finally {
      await rig.close();
    }
  },
};

export const dmDownloadPeakRss: Benchmark = {
  name: 'dm-download-peak-rss',
  unit: 'MB',
  goal: { below: 80 },
  async run(ctx) {
    const rig = await startRig(ctx, 86_400);
    try {
      // A fresh DM: its high-water mark before the deployment is start-up + auth + polls.
      const before = peakRssMb(rig.dm.pid!);
      const { ms, peakMb } = await deployOnce(rig);
      process.stdout.write(
        `bench: DM peak RSS ${round(peakMb, 1)} MB over a 200 MB download+verify (${round(ms, 0)} ms); ${round(before, 1)} MB before it\n`,
      );
      return { value: round(peakMb, 1), baseline: { name: 'dm-peak-rss-before-download', value: round(before, 1) } };
    } finally {
      await rig.close();
    }
  },
};

/** CPU of `pid` per poll over POLLS polls, counted at the server (the device's lastPollAt). */
async function cpuPerPoll(mender: MenderServer, pid: number): Promise<number> {
  const nextPoll = async () => {
    const last = mender.device(FORT).lastPollAt;
    await mender.waitFor(() => mender.device(FORT).lastPollAt !== last, 10_000, 'the next poll');
  };
  // Two polls first: authentication and cold code paths are behind, the window starts on a poll.
  await nextPoll();
  await nextPoll();
  const c0 = cpuMs(pid);
  for (let i = 0; i < POLLS; i++) await nextPoll();
  return (cpuMs(pid) - c0) / POLLS;
}

export const dmPollCpuMs: Benchmark = {
  name: 'dm-poll-cpu-ms',
  unit: 'ms',
  goal: { below: 50 },
  async run(ctx) {
    // Poll and inventory both every ~1 s (±10 %): a window of N polls holds ~N inventory reports.
    // Keep-alive connections stay open between them, as they do at this interval.
    const rig = await startRig(ctx, 1);
    try {
      const value = await cpuPerPoll(rig.mender, rig.dm.pid!);
      await rig.stopDm();
      const { pki } = ctx;
      const token = await rig.mender.issueDeviceToken(FORT);
      const bare = await ctx.scope.start({
        name: 'bare-poller',
        script: join(ctx.dist, 'test/bench/updates-poller.js'),
        nodeArgs: dmNodeArgs(ctx),
        args: [
          rig.mender.url,
          pki.cloudServer.ca,
          pki.cloudDevice.deviceCert,
          pki.cloudDevice.deviceKey,
          token,
          DEVICE_TYPE,
          '1000',
        ],
      });
      const baseline = await cpuPerPoll(rig.mender, bare.pid!);
      await ctx.scope.stop(bare);
      process.stdout.write(
        `bench: DM idle poll cycle (deployments/next 204 + inventory) ${round(value, 2)} ms CPU over ${POLLS} polls; bare keep-alive client ${round(baseline, 2)} ms\n`,
      );
      return { value: round(value, 1), baseline: { name: 'bare-https-poller', value: round(baseline, 1) } };
    } finally {
      await rig.close();
    }
  },
};
