import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { copyFileSync, createWriteStream, linkSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { DeviceDeployment } from '../../dev-cloud/mender/deployments.js';
import type { MenderServer } from '../../dev-cloud/mender/server.js';
import { packRelease } from '../../scripts/release.js';
import { nodeArgsFromUnit, restartDelayMsFromUnit } from '../../scripts/supervisor/unit-file.js';
import { eventually, jsonLines, REPO } from '../helpers/fort.js';
import { buildArtifact } from '../helpers/mender.js';
import { startMenderClient, type MenderClientProcess } from '../helpers/mender-client.js';
import { startUpdatableFort, type UpdatableFort } from '../helpers/update-fort.js';
import type { Benchmark } from './benchmark.js';
import { median, round } from './measure.js';

/**
 * update-deploy-to-success: from a deployment created on the dev update server to `success`
 * reported there, for a ~200 MB release, the fort's deployment manager against Debian's real
 * Mender client 3.4 on the same server, in the same run. Both poll every 2 s and verify the
 * artifact's signature. The fort: the DM (the unit's node flags) downloads (resumable, kept on
 * disk) while it verifies and unpacks the release, switches `current`, asks for the agent's
 * restart in agent_restart_dir, which its supervisor does at once as root's
 * fort-agent-restart.path does (a drained agent would wait out the unit's RestartSec=), and
 * reports success once the agent answers healthy on the new version. Mender: `mender daemon`
 * with its `single-file` update module installs the same tarball as a file (it backs up the
 * file it replaces, for its own rollback) and commits. Each deployment is made half a poll
 * interval after a poll of its device (deployOnce). Ratio = fort / Mender, medians.
 */

const FORT = 'fort-dev-1';
const MENDER_DEVICE = 'mender-bench-1';
const DEVICE_TYPE = 'fort-bench';
const PAD_BYTES = 200 * 1024 * 1024;
const MB = 1024 * 1024;
const RUNS = 5;
const POLL_SECONDS = 2;
// The running and the previous release are never replaced: a version comes round again after two others.
const VERSIONS = ['1.0.1', '1.0.2', '1.0.3'];
// Two names: a deployment of the artifact already installed is no update.
const MENDER_ARTIFACTS = ['mender-bench-a', 'mender-bench-b'];

const unit = (name: string) => join(REPO, 'systemd', name);

/** Incompressible, like the gzip tarball it stands in for: no layer of compression gains anything. */
async function randomFile(file: string, bytes: number): Promise<void> {
  const out = createWriteStream(file);
  for (let n = 0; n < bytes; n += MB) if (!out.write(randomBytes(Math.min(MB, bytes - n)))) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

/** A signed fort release (the real build of this tree) whose tarball also holds `pad` (padding.bin). */
function paddedRelease(fort: UpdatableFort, version: string, pad: string, out: string) {
  const plain = fort.release(version);
  const staging = mkdtempSync(join(tmpdir(), 'fort-padded-'));
  try {
    execFileSync('tar', ['-xzf', plain.tarball, '-C', staging]);
    linkSync(pad, join(staging, 'padding.bin'));
    return packRelease(staging, { version, deviceType: DEVICE_TYPE, key: fort.signKey, out });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

interface Run {
  ms: number;
  /** Phase name → ms, in order. */
  phases: [string, number][];
}

const at = (dd: DeviceDeployment, status: string) => {
  const h = dd.history.find((x) => x.status === status);
  if (!h)
    throw new Error(`bench: the deployment has no ${status} report (${dd.history.map((x) => x.status).join(', ')})`);
  return Date.parse(h.at);
};

/**
 * Deploys `artifactName` to `device` half a poll interval after one of its polls (the mean wait
 * of a deployment made at a random time, with less noise), then waits for it to finish; the
 * times are the server's. Not right after its last update: the Mender client polls at once
 * when an update ends, the DM a poll interval later, and back-to-back deployments would time that.
 */
async function deployOnce(mender: MenderServer, artifactName: string, device: string) {
  const before = mender.device(device).lastPollAt;
  const polled = await mender.waitFor(
    () => {
      const at = mender.device(device).lastPollAt;
      return at !== before ? at : undefined;
    },
    4 * POLL_SECONDS * 1000,
    `${device}: a poll`,
  );
  await sleep(Math.max(0, Date.parse(polled) + POLL_SECONDS * 500 - Date.now()));
  const dep = mender.deploy({ artifactName, devices: device });
  const dd = await mender.waitFor(
    () => {
      const d = mender.deployment(dep.id)?.devices[0];
      return d?.finishedAt ? d : undefined;
    },
    300_000,
    `${device}: the deployment of ${artifactName} to finish`,
  );
  if (dd.status !== 'success')
    throw new Error(
      `bench: ${device} ended the deployment of ${artifactName} with ${dd.status}: ${dd.log.map((l) => l.message).join('; ')}`,
    );
  return { id: dep.id, created: Date.parse(dep.createdAt), dd };
}

/** Dirty pages of the last run written out, so that no run pays for the one before. */
const settle = () => spawnSync('sync');

/** The DM's own clock on its `update step` lines of one deployment: step → first time logged. */
function dmSteps(fort: UpdatableFort, deploymentId: string): Map<string, number> {
  const steps = new Map<string, number>();
  for (const l of jsonLines(fort.dm!.stdout))
    if (l['msg'] === 'update step' && l['deploymentId'] === deploymentId && typeof l['step'] === 'string')
      if (!steps.has(l['step']))
        steps.set(l['step'], typeof l['time'] === 'number' ? l['time'] : Date.parse(String(l['time'])));
  return steps;
}

async function fortOnce(fort: UpdatableFort, artifactName: string): Promise<Run> {
  const { id, created, dd } = await deployOnce(fort.dev.mender, artifactName, FORT);
  const s = dmSteps(fort, id);
  const step = (name: string) => {
    const t = s.get(name);
    if (t === undefined) throw new Error(`bench: the DM logged no ${name} step for ${id}`);
    return t;
  };
  const success = Date.parse(dd.finishedAt!);
  // Finished at the server; the DM still deletes the artifact and the release two back. Not timed.
  await eventually(() => (fort.state().step === 'idle' ? true : undefined), 60_000, 'the DM idle again');
  return {
    ms: success - created,
    // The DM's steps by its own log (same clock): its `downloading` report reaches the server only
    // after that step's download, with the next reports.
    phases: [
      ['poll', step('downloading') - created],
      ['download+verify+unpack', step('verifying') - step('downloading')],
      ['verify tail', step('installing') - step('verifying')],
      ['install', step('switching') - step('installing')],
      ['switch+restart', step('health_checking') - step('switching')],
      ['agent restart+health', step('committed') - step('health_checking')],
      ['success report', success - step('committed')],
    ],
  };
}

async function menderOnce(mender: MenderServer, artifactName: string): Promise<Run> {
  const { created, dd } = await deployOnce(mender, artifactName, MENDER_DEVICE);
  const success = Date.parse(dd.finishedAt!);
  return {
    ms: success - created,
    phases: [
      ['poll', at(dd, 'downloading') - created],
      ['download+store', at(dd, 'installing') - at(dd, 'downloading')],
      ['install+commit', success - at(dd, 'installing')],
    ],
  };
}

const seconds = (ms: number) => round(ms / 1000, 2);
/** Every run's total, then each phase's median over the runs. */
const phasesText = (runs: Run[]) =>
  `${runs.map((r) => seconds(r.ms)).join('/')} s; phase medians: ${runs[0]!.phases
    .map(([name], i) => `${name} ${seconds(median(runs.map((r) => r.phases[i]![1])))}`)
    .join(', ')}`;

export const updateDeployToSuccess: Benchmark = {
  name: 'update-deploy-to-success',
  unit: 'ratio',
  goal: { atMost: 1 },
  async run() {
    const fort = await startUpdatableFort({
      fortId: FORT,
      deviceType: DEVICE_TYPE,
      install: { logLevel: 'info' },
      // The units' node flags and restart delay: an update restarts the agent the way systemd does.
      agent: {
        nodeArgs: nodeArgsFromUnit(unit('fort-agent.service')),
        restartDelayMs: restartDelayMsFromUnit(unit('fort-agent.service')),
      },
      dm: { nodeArgs: nodeArgsFromUnit(unit('fort-deployment-manager.service')) },
      healthDeadlineSeconds: 120,
      pollSeconds: POLL_SECONDS,
      retrySeconds: POLL_SECONDS,
      inventorySeconds: 3600,
    });
    let client: MenderClientProcess | undefined;
    try {
      const mender = fort.dev.mender;
      const work = join(fort.inst.dir, 'bench');
      mkdirSync(work);
      const pad = join(work, 'padding.bin');
      await randomFile(pad, PAD_BYTES);
      const releases = VERSIONS.map((v) => paddedRelease(fort, v, pad, join(work, 'releases')));
      rmSync(pad);

      // Mender installs the same bytes: the first padded tarball, as one file in dest_dir.
      const payload = releases[0]!.tarball;
      const destDir = join(work, 'mender-installed');
      mkdirSync(destDir);
      writeFileSync(join(work, 'dest_dir'), destDir);
      writeFileSync(join(work, 'filename'), basename(payload));
      // Every install replaces a file, as an update does (single-file backs it up first).
      copyFileSync(payload, join(destDir, basename(payload)));
      const menderArtifacts = MENDER_ARTIFACTS.map((name) =>
        buildArtifact({
          dir: work,
          name,
          deviceType: DEVICE_TYPE,
          payloadType: 'single-file',
          payloadFile: [join(work, 'dest_dir'), join(work, 'filename'), payload],
          sign: { key: fort.signKey },
        }),
      );
      for (const file of [...releases.map((r) => r.artifact), ...menderArtifacts]) await mender.upload(file);

      client = await startMenderClient({
        dir: join(work, 'mender-client'),
        serverUrl: mender.url,
        serverCa: fort.pki.cloudServer.ca,
        cert: fort.pki.cloudDevice.deviceCert,
        key: fort.pki.cloudDevice.deviceKey,
        artifactVerifyKey: fort.signPub,
        deviceType: DEVICE_TYPE,
        identity: { fort_id: MENDER_DEVICE },
        artifactName: 'mender-bench-0',
        pollSeconds: POLL_SECONDS,
        inventorySeconds: 3600,
        retrySeconds: POLL_SECONDS,
      });
      const running = client;
      const died = running.exited.then(({ code, signal }) => {
        throw new Error(
          `bench: the Mender client exited (code ${code}, signal ${signal}):\n${running.lines.slice(-20).join('\n')}`,
        );
      });
      died.catch(() => undefined);
      const admitted = async (device: string) => {
        await Promise.race([
          mender.waitFor(
            () => mender.devices().find((d) => d.identity['fort_id'] === device),
            30_000,
            `${device} asking to be admitted`,
          ),
          died,
        ]);
        mender.accept(device);
        await Promise.race([
          mender.waitFor(() => mender.device(device).lastPollAt, 30_000, `a first poll of ${device}`),
          died,
        ]);
      };
      await admitted(MENDER_DEVICE);
      await mender.waitFor(() => mender.device(FORT).lastPollAt, 30_000, 'a first poll of the fort');

      const fortRuns: Run[] = [];
      const menderRuns: Run[] = [];
      // Alternated, who goes first too; each from a synced disk.
      for (let i = 0; i < RUNS; i++) {
        const viaFort = async () => fortRuns.push(await fortOnce(fort, releases[i % releases.length]!.artifactName));
        const viaMender = async () =>
          menderRuns.push(
            await Promise.race([menderOnce(mender, MENDER_ARTIFACTS[i % MENDER_ARTIFACTS.length]!), died]),
          );
        for (const f of i % 2 ? [viaMender, viaFort] : [viaFort, viaMender]) {
          settle();
          await f();
        }
      }
      const fortMs = median(fortRuns.map((r) => r.ms));
      const menderMs = median(menderRuns.map((r) => r.ms));
      process.stdout.write(
        `bench: ${round(PAD_BYTES / MB, 0)} MB padded release, poll ${POLL_SECONDS} s: fort DM ${seconds(fortMs)} s median: ${phasesText(fortRuns)}\n` +
          `bench: Mender client 3.4 ${seconds(menderMs)} s median: ${phasesText(menderRuns)}\n`,
      );
      return {
        value: round(fortMs / menderMs, 2),
        baseline: { name: 'mender-client-3.4-s', value: seconds(menderMs) },
        extra: { 'fort-dm-s': seconds(fortMs) },
      };
    } finally {
      await client?.stop();
      await fort.stop();
    }
  },
};
