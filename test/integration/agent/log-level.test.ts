import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import {
  DIST,
  eventually,
  jsonLines,
  startAgent,
  startDeploymentManager,
  startEngine,
  testInstallation,
  testPki,
  type TestInstallation,
} from '../../helpers/fort.js';

const run = promisify(execFile);

/**
 * `fortctl log-level`: each service's level raised for a while on the running processes (the
 * agent's own, the engine's through the agent over the trust zone, the deployment manager's told
 * with its next health check), proven by a debug line that only a debug level writes, and back to
 * the configured level by itself when the time is up.
 */
describe('fortctl log-level (agent, engine, deployment manager; real processes)', () => {
  let inst: TestInstallation;
  let agent: Supervised;
  let engine: Supervised;
  let dm: Supervised;

  beforeAll(async () => {
    inst = await testInstallation(await testPki(), { engine: true, logLevel: 'info', healthIntervalSeconds: 1 });
    engine = await startEngine(inst.files.engine);
    await engine.waitReady(20_000);
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);
    dm = await startDeploymentManager(inst.files.dm);
    await dm.waitReady(20_000);
  });
  afterAll(async () => {
    await dm?.stop();
    await agent?.stop();
    await engine?.stop();
    inst?.cleanup();
  });

  const fortctl = (...args: string[]) =>
    run(process.execPath, [join(DIST, 'fortctl/main.js'), '--config', inst.files.fortctl, ...args]);
  /** The first line from line `from` on that says `msg`, waited for (a deadline, not a sleep). */
  const logged = (p: Supervised, msg: string, from: number, ms = 15_000) =>
    eventually(() => jsonLines(p.stdout.slice(from)).find((l) => l['msg'] === msg), ms, `${p.name}: ${msg}`);

  it.each([
    ['agent', () => agent],
    ['engine', () => engine],
    ['deployment-manager', () => dm],
  ] as const)('%s: debug for 3 s, then back to info by itself', async (service, proc) => {
    const p = proc();
    const from = p.stdout.length;
    const set = await fortctl('log-level', 'debug', '--for', '3s', '--service', service, '--json');
    const answer = JSON.parse(set.stdout) as { service: string; level: string; until: string };
    expect(answer).toMatchObject({ service, level: 'debug' });
    expect(Date.parse(answer.until) - Date.now()).toBeLessThanOrEqual(3000);
    // Written at debug only: the level really changed in that process.
    expect(await logged(p, 'debug lines on', from)).toMatchObject({ level: 'debug' });
    const shown = JSON.parse((await fortctl('log-level', '--json')).stdout) as Record<string, unknown>;
    expect(shown).toMatchObject(
      service === 'deployment-manager'
        ? { 'deployment-manager': { level: 'debug', until: answer.until } }
        : { [service]: { level: 'debug', configured: 'info', until: answer.until } },
    );
    await logged(p, 'log level back to the configured one', from);
    const after = JSON.parse((await fortctl('log-level', '--json')).stdout) as Record<string, Record<string, unknown>>;
    if (service === 'deployment-manager') expect(after['deployment-manager']).toBeNull();
    else expect(after[service]).toEqual({ level: 'info', configured: 'info' });
  });

  it('refuses a level or a duration it does not know, naming it, and changes nothing', async () => {
    const bad = await fortctl('log-level', 'loud').then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(bad?.stderr).toMatch(/level: expected one of fatal, error, warn, info, debug, trace/);
    const long = await fortctl('log-level', 'debug', '--for', '2d').then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(long?.stderr).toMatch(/for_seconds: expected an integer 1\.\.86400/);
    const forever = await fortctl('log-level', 'debug', '--for', 'ever').then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(forever?.stderr).toMatch(/expected a duration such as 90s, 10m, 2h, 1d/);
    const shown = JSON.parse((await fortctl('log-level', '--json')).stdout) as Record<string, unknown>;
    expect(shown['agent']).toEqual({ level: 'info', configured: 'info' });
  });
});
