import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MALFORMED } from '../../helpers/agent-configs.js';
import { startAgent, tempDir, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';

/** The real agent process refuses to start on bad input, says why, and exits 78 or 65. */
describe('agent start failures', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki);
  });
  afterAll(() => inst.cleanup());

  it.each(MALFORMED)('exits 78 on $name, naming the field, starting nothing', async ({ toml, problems }) => {
    const dir = tempDir('badcfg');
    const file = join(dir, 'agent.toml');
    writeFileSync(file, toml);
    const agent = await startAgent(file);
    const exit = await agent.waitExit(15_000);
    await agent.stop();
    expect(exit.code).toBe(78);
    const stderr = agent.stderr.join('\n');
    if (problems.length) expect(stderr).toBe(problems.map((p) => `fort-agent: agent.toml: ${p}`).join('\n'));
    else expect(stderr).toMatch(/^fort-agent: agent\.toml: line \d+, column \d+: invalid TOML/);
    expect(agent.stdout).toEqual([]);
    expect(agent.notify.messages).toEqual([]);
    expect(existsSync(join(dir, 'data'))).toBe(false);
  });

  it('exits 78 when the admin key is readable by others, before opening the store or a port', async () => {
    const dir = tempDir('badkey');
    const key = join(dir, 'agent.key');
    writeFileSync(key, readFileSync(pki.trustZone.agentKey), { mode: 0o644 });
    chmodSync(key, 0o644);
    const file = join(dir, 'agent.toml');
    writeFileSync(file, readFileSync(inst.files.agent, 'utf8').replace(/key = "[^"]*agent\.key"/, `key = "${key}"`).replace(/path = "[^"]*"/, `path = "${dir}/agent.db"`));
    const agent = await startAgent(file);
    const exit = await agent.waitExit(15_000);
    await agent.stop();
    expect(exit.code).toBe(78);
    expect(agent.stderr.join('\n')).toContain(`fort-agent: key file ${key} has mode 0644; it must not be readable by group or others`);
    expect(agent.stderr.join('\n')).not.toContain('PRIVATE KEY');
    expect(existsSync(join(dir, 'agent.db'))).toBe(false);
    expect(agent.notify.messages.filter((m) => m['READY'])).toEqual([]);
  });
});
