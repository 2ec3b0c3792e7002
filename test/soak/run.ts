#!/usr/bin/env node
import { Command } from 'commander';
import { wholeNumber } from '../../fortctl/args.js';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { NO_HOST_PROXY, REPO } from '../helpers/fort.js';
import { fakeClockEnv } from '../helpers/fake-clock.js';
import { startTinyproxy, type Tinyproxy } from '../helpers/tinyproxy.js';
import { startUpdatableFort, type UpdatableFort } from '../helpers/update-fort.js';
import { nodeArgsFromUnit } from '../../scripts/supervisor/unit-file.js';
import { createRequestDriver } from './requests.js';
import { createEventDriver } from './events.js';
import { createChaos, mulberry32 } from './chaos.js';
import { createRssSampler, rssGrowthLimitPercent, steadyGrowth } from './rss.js';
import { createHeapSampler, heapFailures, heapPhaseMs, heapSnapshotArgs } from './heap.js';
import { printReport, type SoakReport } from './report.js';

/**
 * `npm run soak -- --minutes N`: the real agent and deployment manager (supervised, restarted
 * like systemd does) against the dev cloud on loopback. Events and client requests run the
 * whole time and one update is deployed. The first half is chaos (kill -9 of either daemon
 * until 30 %, dropped IoT links), the second half only drops links: RSS growth is measured
 * there, on processes that are no longer killed. Then the heap phase, under the same load:
 * heap snapshots of both daemons at its start, middle and end judge retained objects
 * (heap.ts); it comes after the RSS window because a snapshot leaves its process's RSS
 * meaningless. Exit 1 when an event
 * was lost or applied twice, the update did not land, RSS grew by 5 % or more (10 % in runs
 * under 30 minutes: rssGrowthLimitPercent), or a class of retained objects grew steadily
 * (HEAP_RULE). `--accelerated`: the deployment manager's poll, inventory, retry, resume and
 * agent health intervals all 1 s, so its loops fire in 30 minutes what they fire in a day or
 * more at the defaults.
 */
const o = new Command('soak')
  // At least 2: RSS growth is measured from 30 s after the chaos half ends, and needs time after that.
  .option(
    '--minutes <n>',
    'how long the load and chaos run; the heap phase then adds N/5 minutes, at least 1 (setup and drain not counted)',
    wholeNumber(2, 24 * 60),
    5,
  )
  .option(
    '--seed <n>',
    'chaos schedule seed (the report names it: a failing run can be replayed)',
    wholeNumber(0, 2 ** 32),
    Math.floor(Math.random() * 2 ** 32),
  )
  .option('--events-per-second <n>', 'ping events the cloud sends', wholeNumber(1, 100), 20)
  .option('--requests-per-second <n>', 'client API requests a user makes', wholeNumber(1, 100), 10)
  .option('--accelerated', "the deployment manager's intervals (poll, inventory, retry, resume, health) all 1 s")
  .option(
    '--more-chaos',
    "also fill the data disk (a tmpfs, as root), jump the agent's host clock a day forward (libfaketime) and take down the HTTP proxy every outbound link then goes through (tinyproxy), 15 s each",
  )
  .option('--out <file>', 'JSON report', join(REPO, 'bench', 'results', 'soak.json'))
  .parse(process.argv)
  .opts<{
    minutes: number;
    seed: number;
    eventsPerSecond: number;
    requestsPerSecond: number;
    accelerated?: boolean;
    moreChaos?: boolean;
    out: string;
  }>();

const FORT = 'fort-dev-1';
/** The agent's clock offset under --more-chaos (libfaketime reads it). */
const clockFile = join(tmpdir(), `fort-soak-clock-${process.pid}`);
const WARMUP_MS = 30_000;
/**
 * Kills stop at 30 % of the run, so the processes whose RSS the second half judges have lived a
 * fifth of the run when it starts (12 minutes of 60): a fresh agent's SQLite page caches take
 * ~10 minutes at 20 events/s to fill their bound (3 MiB), V8 its code space and old-space limit.
 */
const KILLS_END = 0.3;
const RELOGIN_MS = 30 * 60_000;
/**
 * The deployment manager's intervals. Poll 2 s, inventory, retry and health 1 s, resume at its
 * default (30 s) unless accelerated: then all 1 s (the schema's minimum), against defaults of
 * 1800, 28 800, 300, 30 and 30 s.
 */
const INTERVALS = o.accelerated
  ? { poll: 1, inventory: 1, retry: 1, resume: 1, health: 1 }
  : { poll: 2, inventory: 1, retry: 1, resume: 30, health: 1 };
const log = (line: string) => process.stdout.write(`soak: ${line}\n`);

async function main(): Promise<number> {
  const durationMs = o.minutes * 60_000;
  log(
    `starting: ${o.minutes} min, seed ${o.seed}, ${o.eventsPerSecond} events/s, ${o.requestsPerSecond} requests/s${o.accelerated ? ', accelerated' : ''}`,
  );
  const heapDir = mkdtempSync(join(tmpdir(), 'fort-soak-heap-'));
  const heapDirs = { agent: join(heapDir, 'agent'), 'deployment-manager': join(heapDir, 'deployment-manager') };
  const proxy = o.moreChaos ? await startTinyproxy() : undefined;
  // Both daemons' links to the cloud (IoT bridge, credentials, cloud API, update server) through it.
  const viaProxy = { ...NO_HOST_PROXY, ...(proxy ? { HTTPS_PROXY: proxy.url, https_proxy: proxy.url } : {}) };
  try {
    const fort: UpdatableFort = await startUpdatableFort({
      fortId: FORT,
      install: { iot: true, cloudAuth: true, logLevel: 'info', healthIntervalSeconds: INTERVALS.health },
      // The units' node flags, as in production, and the heap snapshot signal; both restarted
      // on exit as Restart=always does.
      agent: {
        nodeArgs: [...nodeArgsFromUnit(join(REPO, 'systemd/fort-agent.service')), ...heapSnapshotArgs(heapDirs.agent)],
        env: { ...viaProxy, ...(o.moreChaos ? fakeClockEnv(clockFile) : {}) },
      },
      ...(o.moreChaos ? { dataFsMib: 512 } : {}),
      dm: {
        nodeArgs: [
          ...nodeArgsFromUnit(join(REPO, 'systemd/fort-deployment-manager.service')),
          ...heapSnapshotArgs(heapDirs['deployment-manager']),
        ],
        restart: true,
        restartDelayMs: 200,
        env: viaProxy,
      },
      healthDeadlineSeconds: 60,
      pollSeconds: INTERVALS.poll,
      inventorySeconds: INTERVALS.inventory,
      retrySeconds: INTERVALS.retry,
      ...(INTERVALS.resume === 30 ? {} : { resumeSeconds: INTERVALS.resume }),
    });
    try {
      return await soak(fort, durationMs, heapDirs, proxy);
    } finally {
      await fort.stop();
    }
  } finally {
    await proxy?.stop();
    rmSync(heapDir, { recursive: true, force: true });
    rmSync(clockFile, { force: true });
  }
}

async function soak(
  fort: UpdatableFort,
  durationMs: number,
  heapDirs: Record<'agent' | 'deployment-manager', string>,
  proxy: Tinyproxy | undefined,
): Promise<number> {
  const random = mulberry32(o.seed);
  const started = Date.now();
  const elapsed = () => Date.now() - started;
  const events = createEventDriver({
    bridge: fort.dev.bridge,
    fortId: FORT,
    perSecond: o.eventsPerSecond,
    newId: randomUUID,
  });
  let token = await fort.dev.login('alice', 't1');
  // User tokens live an hour (the dev cloud's default): the user signs in again every half hour,
  // as a browser would, or a 60-minute run's heap phase would only be answered 401.
  const relogin = setInterval(
    () =>
      void fort.dev.login('alice', 't1').then(
        (t) => (token = t),
        (err: Error) => log(`alice could not sign in again: ${err.message}`),
      ),
    RELOGIN_MS,
  );
  const requests = createRequestDriver({
    url: `https://127.0.0.1:${fort.inst.layout.ports.clientApi}/api/v1/apps`,
    ca: readFileSync(fort.pki.clientZone.ca),
    token: () => token,
    perSecond: o.requestsPerSecond,
  });
  const rss = createRssSampler({ agent: () => fort.agent.pid, 'deployment-manager': () => fort.dm?.pid }, elapsed);
  const chaosEndMs = durationMs / 2;
  const heapAtMs = heapPhaseMs(durationMs);
  const heap = createHeapSampler(
    {
      agent: { pid: () => fort.agent.pid, dir: heapDirs.agent },
      'deployment-manager': { pid: () => fort.dm?.pid, dir: heapDirs['deployment-manager'] },
    },
    elapsed,
    log,
  );
  const chaos = createChaos({
    random,
    elapsed,
    killsEndMs: durationMs * KILLS_END,
    chaosEndMs,
    // Links keep dropping through the heap phase.
    durationMs: heapAtMs[2],
    actions: {
      'kill -9 agent': () => fort.agent.kill('SIGKILL'),
      'kill -9 deployment-manager': () => fort.dm?.kill('SIGKILL'),
      'drop IoT links': () => fort.dev.bridge.dropConnections(),
      ...(o.moreChaos
        ? {
            'disk full for 15 s': () => {
              fort.dataFs!.fill(0);
              setTimeout(() => fort.dataFs!.free(), 15_000);
            },
            'agent clock a day forward for 15 s': () => {
              writeFileSync(clockFile, '+1d\n');
              setTimeout(() => writeFileSync(clockFile, '+0\n'), 15_000);
            },
            'proxy down for 15 s': () => {
              void proxy!
                .down()
                .then(() =>
                  setTimeout(
                    () => void proxy!.up().catch((err: Error) => log(`proxy not back: ${err.message}`)),
                    15_000,
                  ),
                );
            },
          }
        : {}),
    },
    log,
  });

  // Built before the load starts: mender-artifact takes a few seconds of CPU.
  const release = fort.release('1.0.1');
  await fort.agentOn('1.0.0');
  events.start();
  requests.start();
  rss.start();
  chaos.start();

  // One update, during the chaos: kills may land in any of its steps.
  const updateAtMs = durationMs * 0.15;
  let deploymentId: string | undefined;
  const updateTimer = setTimeout(() => {
    void fort.deploy(release).then((id) => {
      deploymentId = id;
      log(`deployed ${release.artifactName} (deployment ${id}) at ${Math.round(elapsed() / 1000)} s`);
    });
  }, updateAtMs);

  // The load goes on until the last snapshot is written.
  await heap.run(heapAtMs);
  clearTimeout(updateTimer);
  clearInterval(relogin);
  chaos.stop();
  events.stop();
  requests.stop();
  log('load stopped; waiting for every event to be answered');

  // Drain: every sent event answered and the fort's outbox empty, or 120 s.
  const drainedBy = Date.now() + 120_000;
  while (Date.now() < drainedBy && events.unanswered() > 0) await new Promise((r) => setTimeout(r, 250));
  const update = deploymentId ? await fort.finished(deploymentId, 120_000).catch(() => undefined) : undefined;
  rss.stop();
  events.close();

  const counts = events.counts();
  const report: SoakReport = {
    name: 'soak',
    seed: o.seed,
    minutes: o.minutes,
    accelerated: o.accelerated ?? false,
    intervalsSeconds: INTERVALS,
    events: counts,
    requests: requests.counts(),
    update: {
      deployment: deploymentId ?? null,
      status: update?.status ?? 'not finished',
      agentVersion: (await fort.health().catch(() => undefined))?.version ?? null,
    },
    chaos: chaos.counts(),
    restarts: { agent: fort.agent.starts - 1, 'deployment-manager': (fort.dm?.starts ?? 1) - 1 },
    rss: steadyGrowth(rss.samples(), chaosEndMs + WARMUP_MS, heapAtMs[0], WARMUP_MS),
    heap: heap.growth(),
    machine: { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    at: new Date().toISOString(),
  };
  const failures = [
    ...(counts.lost > 0 ? [`${counts.lost} events lost`] : []),
    ...(counts.duplicatesApplied > 0 ? [`${counts.duplicatesApplied} events applied twice`] : []),
    ...(report.update.status !== 'success' || report.update.agentVersion !== '1.0.1'
      ? [`the update did not land (${report.update.status}, agent on ${report.update.agentVersion})`]
      : []),
    ...Object.entries(report.rss)
      .filter(([, r]) => r.growthPercent === null || r.growthPercent >= rssGrowthLimitPercent(o.minutes))
      .map(([p, r]) => `${p} RSS ${r.growthPercent === null ? 'not measured' : `grew ${r.growthPercent} %`}`),
    ...heapFailures(report.heap),
  ];
  report.failures = failures;
  mkdirSync(dirname(resolve(o.out)), { recursive: true });
  writeFileSync(o.out, `${JSON.stringify(report, null, 2)}\n`);
  printReport(report, (l) => process.stdout.write(`${l}\n`));
  log(`report: ${o.out}`);
  return failures.length ? 1 : 0;
}

process.exitCode = await main().catch((err: unknown) => {
  process.stderr.write(`soak: ${(err as Error).stack ?? String(err)}\n`);
  return 1;
});
