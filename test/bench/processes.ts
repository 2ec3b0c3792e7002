import { join } from 'node:path';
import type { ProcessSpec } from '../../scripts/supervisor/process.js';
import { nodeArgsFromUnit } from '../../scripts/supervisor/unit-file.js';
import type { Benchmark, BenchContext } from './benchmark.js';
import { installation, type Installation } from './fixture.js';
import { maxIdleRssMb, median, round } from './measure.js';

/** Benchmarks of the real service processes, each against a bare baseline process. */

const START_RUNS = 7;
/** The flags systemd runs the services with; baselines get the same ones to stay comparable. */
const nodeArgs = (ctx: BenchContext, unit: string) => nodeArgsFromUnit(join(ctx.dist, '..', 'systemd', unit));
const READY_TIMEOUT_MS = 30_000;

const agent = (ctx: BenchContext, inst: Installation): ProcessSpec => ({
  name: 'agent',
  script: join(ctx.dist, 'agent/main.js'),
  nodeArgs: nodeArgs(ctx, 'fort-agent.service'),
  args: ['--config', inst.files.agent],
});

const deploymentManager = (ctx: BenchContext, inst: Installation): ProcessSpec => ({
  name: 'deployment-manager',
  script: join(ctx.dist, 'deployment-manager/main.js'),
  nodeArgs: nodeArgs(ctx, 'fort-deployment-manager.service'),
  args: ['--config', inst.files.dm],
});

const BARE_HTTPS = 'bare-fastify-https';
/** Same client-zone cert and port as the agent's client API would use. */
const bareHttps = (ctx: BenchContext, inst: Installation): ProcessSpec => ({
  name: BARE_HTTPS,
  script: join(ctx.dist, 'test/bench/baseline-server.js'),
  nodeArgs: nodeArgs(ctx, 'fort-agent.service'),
  args: [ctx.pki.clientZone.clientApiCert, ctx.pki.clientZone.clientApiKey, String(inst.layout.ports.clientApi)],
});

const BARE_IDLE = 'bare-node-idle';
const bareIdle = (ctx: BenchContext): ProcessSpec => ({
  name: BARE_IDLE,
  script: join(ctx.dist, 'test/bench/baseline-idle.js'),
  args: [],
  nodeArgs: nodeArgs(ctx, 'fort-deployment-manager.service'),
});

async function startToReadyMs(ctx: BenchContext, spec: ProcessSpec): Promise<number> {
  const { proc, ms } = await ctx.scope.startTimed(spec, READY_TIMEOUT_MS);
  await ctx.scope.stop(proc);
  return ms;
}

async function idleRssMb(ctx: BenchContext, spec: ProcessSpec): Promise<number> {
  const { proc } = await ctx.scope.startTimed(spec, READY_TIMEOUT_MS);
  const mb = await maxIdleRssMb(proc.pid!);
  await ctx.scope.stop(proc);
  return mb;
}

export const startToReady: Benchmark = {
  name: 'start-to-ready',
  unit: 'ms',
  goal: { below: 1000 },
  async run(ctx) {
    const service: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < START_RUNS; i++) {
      // A fresh installation (new DB) per run; interleaved, alternating who goes first, so
      // both series see the same machine load and neither always follows a stop.
      const inst = await installation(ctx.tmp, ctx.pki);
      const pair = [() => startToReadyMs(ctx, agent(ctx, inst)), () => startToReadyMs(ctx, bareHttps(ctx, inst))];
      if (i % 2) pair.reverse();
      const [a, b] = [await pair[0]!(), await pair[1]!()];
      service.push(i % 2 ? b : a);
      base.push(i % 2 ? a : b);
    }
    return { value: round(median(service), 1), baseline: { name: BARE_HTTPS, value: round(median(base), 1) } };
  },
};

export const idleRssAgent: Benchmark = {
  name: 'idle-rss-agent',
  unit: 'MB',
  goal: { below: 80 },
  async run(ctx) {
    const inst = await installation(ctx.tmp, ctx.pki);
    const value = await idleRssMb(ctx, agent(ctx, inst));
    const baseline = await idleRssMb(ctx, bareHttps(ctx, inst));
    return { value: round(value, 1), baseline: { name: BARE_HTTPS, value: round(baseline, 1) } };
  },
};

export const idleRssDeploymentManager: Benchmark = {
  name: 'idle-rss-deployment-manager',
  unit: 'MB',
  goal: { below: 60 },
  async run(ctx) {
    // Health interval 1 s: the DM is measured while exercising its mTLS link to a live agent.
    const inst = await installation(ctx.tmp, ctx.pki, 1);
    const { proc: agentProc } = await ctx.scope.startTimed(agent(ctx, inst), READY_TIMEOUT_MS);
    // Measured on its second start, as it runs on a host every start but the first: with a
    // state file to read.
    const { proc: first } = await ctx.scope.startTimed(deploymentManager(ctx, inst), READY_TIMEOUT_MS);
    await ctx.scope.stop(first);
    const value = await idleRssMb(ctx, deploymentManager(ctx, inst));
    await ctx.scope.stop(agentProc);
    const baseline = await idleRssMb(ctx, bareIdle(ctx));
    return { value: round(value, 1), baseline: { name: BARE_IDLE, value: round(baseline, 1) } };
  },
};
