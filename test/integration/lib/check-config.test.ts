import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadAgentConfig, type AgentConfig } from '../../../agent/config.js';
import { loadDeploymentManagerConfig, type DeploymentManagerConfig } from '../../../deployment-manager/config.js';
import { parseConfigCheck } from '../../../lib/config/check.js';
import type { AgentConfigView, DeploymentManagerConfigView } from '../../../lib/config/views.js';
import { MALFORMED, VALID } from '../../helpers/agent-configs.js';
import { DIST, tempDir, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';

const run = promisify(execFile);
const AGENT = join(DIST, 'agent/main.js');
const DM = join(DIST, 'deployment-manager/main.js');

/** `<daemon> --check-config`: what fortctl doctor reads each daemon's configuration through. */
async function check(entry: string, file: string) {
  const r = await run(process.execPath, [entry, '--check-config', '--config', file]).then(
    (o) => ({ code: 0, ...o }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
  return { ...r, check: parseConfigCheck(r.stdout) };
}

describe('--check-config of the daemons (the configuration contract of fortctl doctor)', () => {
  let inst: TestInstallation;
  beforeAll(async () => {
    inst = await testInstallation(await testPki());
  });
  afterAll(() => inst.cleanup());

  it("the daemons' config types are assignable to the views doctor reads (tsc checks it)", () => {
    const agentView = (c: AgentConfig): AgentConfigView => c;
    const dmView = (c: DeploymentManagerConfig): DeploymentManagerConfigView => c;
    expect([agentView, dmView]).toHaveLength(2);
  });

  it("prints the agent's configuration exactly as the agent loads it, starting nothing (exit 0)", async () => {
    const dir = tempDir('check-agent');
    const file = join(dir, 'agent.toml');
    writeFileSync(file, VALID);
    const r = await check(AGENT, file);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.check).toEqual({ ok: true, file, config: JSON.parse(JSON.stringify(loadAgentConfig(file))) });
    expect(readdirSync(dir)).toEqual(['agent.toml']);
  });

  it("prints the deployment manager's as it loads it (exit 0)", async () => {
    const r = await check(DM, inst.files.dm);
    expect(r.code).toBe(0);
    expect(r.check).toEqual({
      ok: true,
      file: inst.files.dm,
      config: JSON.parse(JSON.stringify(loadDeploymentManagerConfig(inst.files.dm))),
    });
  });

  it('says why a file does not load, with its code, on stdout (exit 1; nothing on stderr, no data directory)', async () => {
    const dir = tempDir('check-bad');
    const file = join(dir, 'agent.toml');
    const bad = MALFORMED.find((m) => m.name === 'port out of range')!;
    writeFileSync(file, bad.toml);
    const r = await check(AGENT, file);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('');
    expect(r.check).toEqual({
      ok: false,
      file,
      code: 'FORT_ERR_CONFIG',
      message: bad.problems.map((p) => `agent.toml: ${p}`).join('\n'),
    });
    expect(existsSync(join(dir, 'data'))).toBe(false);
    const missing = await check(DM, join(dir, 'none.toml'));
    expect(missing).toMatchObject({ code: 1, check: { ok: false, code: 'FORT_ERR_CONFIG' } });
  });
});
