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
    writeFileSync(
      file,
      readFileSync(inst.files.agent, 'utf8')
        .replace(/key = "[^"]*agent\.key"/, `key = "${key}"`)
        .replace(/path = "[^"]*"/, `path = "${dir}/agent.db"`),
    );
    const agent = await startAgent(file);
    const exit = await agent.waitExit(15_000);
    await agent.stop();
    expect(exit.code).toBe(78);
    expect(agent.stderr.join('\n')).toContain(
      `fort-agent: key file ${key} has mode 0644; it must not be readable by group or others`,
    );
    expect(agent.stderr.join('\n')).not.toContain('PRIVATE KEY');
    expect(existsSync(join(dir, 'agent.db'))).toBe(false);
    expect(agent.notify.messages.filter((m) => m['READY'])).toEqual([]);
  });

  it('exits 78 when the proxy password file is readable by others, before opening the store', async () => {
    const dir = tempDir('badproxypw');
    const pw = join(dir, 'proxy-password');
    writeFileSync(pw, 'proxy-secret-1', { mode: 0o644 });
    chmodSync(pw, 0o644);
    // Next to the installation's file, so its relative certificate paths still resolve.
    const file = join(inst.dir, 'agent-badproxy.toml');
    const toml = readFileSync(inst.files.agent, 'utf8').replace(/path = "[^"]*"/, `path = "${dir}/agent.db"`);
    writeFileSync(
      file,
      `${toml}\n[proxy]\nurl = "http://127.0.0.1:3128"\nusername = "fort"\npassword_file = "${pw}"\n`,
    );
    const agent = await startAgent(file);
    const exit = await agent.waitExit(15_000);
    await agent.stop();
    expect(exit.code).toBe(78);
    expect(agent.stderr.join('\n')).toContain(
      `fort-agent: proxy password file ${pw} has mode 0644; it must not be readable by group or others (chmod 600 ${pw})`,
    );
    expect(agent.stderr.join('\n')).not.toContain('proxy-secret-1');
    expect(existsSync(join(dir, 'agent.db'))).toBe(false);
  });

  it('exits 78 when HTTPS_PROXY carries credentials, without repeating them', async () => {
    const agent = await startAgent(inst.files.agent, { env: { HTTPS_PROXY: 'http://fort:hunter2@127.0.0.1:3128' } });
    const exit = await agent.waitExit(15_000);
    await agent.stop();
    expect(exit.code).toBe(78);
    const stderr = agent.stderr.join('\n');
    expect(stderr).toContain(
      'fort-agent: environment: HTTPS_PROXY: credentials in the proxy URL are not accepted: set proxy.username and put the password in proxy.password_file (mode 0600)',
    );
    expect(stderr).not.toContain('hunter2');
    expect(agent.notify.messages.filter((m) => m['READY'])).toEqual([]);
  });

  it('exits 78 on a malformed static IoT credentials file, without printing its content', async () => {
    const dir = tempDir('badcreds');
    const creds = join(dir, 'iot-credentials.json');
    writeFileSync(creds, '{"accessKeyId": "AKIASHORT", "secret": "do-not-print-me"}', { mode: 0o600 });
    const file = join(dir, 'agent.toml');
    writeFileSync(
      file,
      `${readFileSync(inst.files.agent, 'utf8').replace(/path = "[^"]*"/, `path = "${dir}/agent.db"`)}
[iot]
endpoint = "127.0.0.1:1"
region = "eu-west-1"
[iot.credentials]
source = "static"
file = "${creds}"
`,
    );
    const agent = await startAgent(file);
    const exit = await agent.waitExit(15_000);
    await agent.stop();
    expect(exit.code).toBe(78);
    expect(agent.stderr.join('\n')).toContain(
      `fort-agent: ${creds}: expected JSON {"accessKeyId": "...", "secretAccessKey": "..."}`,
    );
    expect(agent.stderr.join('\n')).not.toContain('do-not-print-me');
    expect(agent.notify.messages.filter((m) => m['READY'])).toEqual([]);
  });
});
