import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { issueCert, loadCa } from '../../../lib/pki/certs.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import { DIST, startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';

const run = promisify(execFile);

describe('fortctl certs check', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let agent: Supervised;
  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki);
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(30_000);
  });
  afterAll(async () => {
    await agent?.stop();
    inst.cleanup();
  });

  const check = () =>
    run(process.execPath, [join(DIST, 'fortctl/main.js'), '-c', inst.files.fortctl, 'certs', 'check']).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    );

  it("lists every certificate the agent uses and fortctl's own, with days left; exit 0 when none is close to expiry", async () => {
    const r = await check();
    expect(r.code).toBe(0);
    for (const role of [
      'admin API (trust zone)',
      'trust-zone root CA',
      'client API (client zone)',
      'fortctl client (trust zone)',
    ])
      expect(r.stdout).toContain(role);
    expect(r.stdout).not.toMatch(/^(WARN|EXPIRED)/m);
    expect(r.stdout).toMatch(/^ok +\d{3,}/m);
  });

  it('warns (exit 1) about a certificate replaced on disk by one that expires within 30 days', async () => {
    const ca = await loadCa(readFileSync(pki.clientZone.ca, 'utf8'), readFileSync(pki.clientZone.caKey, 'utf8'));
    const short = await issueCert(ca, {
      commonName: 'localhost',
      usage: 'server',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      validDays: 10,
    });
    // Read from disk on each check: the replaced file shows its own dates.
    writeFileSync(pki.clientZone.clientApiCert, short.certPem);
    const r = await check();
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^WARN +(9|10) +\S+ +client API \(client zone\) +CN=localhost/m);
  });
});
