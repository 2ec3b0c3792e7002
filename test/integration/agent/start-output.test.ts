import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { ExitInfo, Supervised } from '../../../scripts/supervisor/process.js';
import { httpsRequest } from '../../helpers/https.js';
import { DIST, jsonLines, startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';

/** What a start needs of the host, and what it writes: run as systemd's sandbox allows. */
describe('agent start: what it needs of the host and what it writes', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let agent: Supervised;
  // Stopped once: the last test reads everything the agent wrote, start to stop.
  let stopped: Promise<ExitInfo> | undefined;
  const stop = () => (stopped ??= agent.stop());

  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki);
    // The client API on every address: where Fastify's listen would list the interfaces.
    const toml = readFileSync(inst.files.agent, 'utf8');
    const onAll = toml.replace(/(\[api\]\s*\nhost = )"127\.0\.0\.1"/, '$1"0.0.0.0"');
    expect(onAll).not.toBe(toml);
    writeFileSync(inst.files.agent, onAll);
    agent = await startAgent(inst.files.agent, {
      nodeArgs: ['--import', join(DIST, 'test/fixtures/no-network-interfaces.js')],
    });
    await agent.waitReady(20_000);
  });
  afterAll(async () => {
    if (agent) await stop();
    inst?.cleanup();
  });

  it('serves the client API on 0.0.0.0 when listing network interfaces fails (no AF_NETLINK)', async () => {
    const res = await httpsRequest(`https://127.0.0.1:${inst.layout.ports.clientApi}/health`, {
      ca: readFileSync(pki.clientZone.ca),
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    const tls = {
      ca: readFileSync(pki.trustZone.ca),
      cert: readFileSync(pki.trustZone.fortctlCert),
      key: readFileSync(pki.trustZone.fortctlKey),
    };
    expect((await httpsRequest(`https://127.0.0.1:${inst.layout.ports.admin}/admin/v1/version`, tls)).status).toBe(200);
  });

  it('logs one line per server with the address and port it bound', () => {
    const listening = jsonLines(agent.stdout).filter(
      (l) => typeof l['msg'] === 'string' && /listening/i.test(l['msg']),
    );
    expect(
      listening
        .map((l) => ({ module: l['module'], address: l['address'], port: l['port'] }))
        .sort((a, b) => String(a.module).localeCompare(String(b.module))),
    ).toEqual([
      { module: 'admin-api', address: '127.0.0.1', port: inst.layout.ports.admin },
      { module: 'client-api', address: '0.0.0.0', port: inst.layout.ports.clientApi },
    ]);
  });

  it('writes no deprecation warning from start to stop (FSTDEP…, DeprecationWarning)', async () => {
    expect((await stop()).code).toBe(0);
    const output = [...agent.stderr, ...agent.stdout].join('\n');
    expect(output).not.toMatch(/FSTDEP|DeprecationWarning|FastifyDeprecation/);
    expect(agent.stderr).toEqual([]);
  });
});
