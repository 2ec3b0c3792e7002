import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generatePki } from '../../../lib/pki/generate.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import {
  DIST,
  eventually,
  jsonLines,
  startAgent,
  startDeploymentManager,
  startEngine,
  tempDir,
  testInstallation,
  type TestInstallation,
} from '../../helpers/fort.js';

const run = promisify(execFile);

/** The serial of the certificate a TLS server on loopback presents (verified against `ca`, as its clients do). */
function servedSerial(port: number, ca: Buffer, client?: { cert: Buffer; key: Buffer }): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...client }, () => {
      resolve(s.getPeerX509Certificate()!.serialNumber);
      s.end();
    });
    s.on('error', reject);
  });
}

const serialOf = (file: string) => new X509Certificate(readFileSync(file)).serialNumber;

/**
 * Certificates that live 75 s, issued 50 s ago: two thirds of their life have passed, and they
 * expire 25 s into the test. `fortctl certs renew` renews every one from the installation's CAs
 * for the same keys; the agent (over its admin API), the engine and the deployment manager
 * (SIGHUP, as `systemctl reload` sends it) use them without a restart, and everything still
 * works after the old ones expired.
 */
describe('fortctl certs renew: certificates that renew themselves before they expire', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let agent: Supervised;
  let engine: Supervised;
  let dm: Supervised;
  let expires: number;
  const fortctl = (...args: string[]) =>
    run(process.execPath, [join(DIST, 'fortctl/main.js'), '--config', inst.files.fortctl, ...args]);

  beforeAll(async () => {
    const now = Date.now();
    expires = now + 25_000;
    pki = await generatePki({
      out: tempDir('pki'),
      leafValidity: { notBefore: new Date(now - 50_000), notAfter: new Date(expires) },
    });
    inst = await testInstallation(pki, { engine: true });
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

  it('renews every certificate due, for the same key and names, owner and mode kept; the services use them without a restart', async () => {
    const tz = pki.trustZone;
    const files = [tz.agentCert, tz.deploymentManagerCert, tz.fortctlCert, tz.engineCert, pki.clientZone.clientApiCert];
    const before = files.map((f) => new X509Certificate(readFileSync(f)));
    const modes = files.map((f) => statSync(f).mode);

    const { stdout } = await run(process.execPath, [
      join(DIST, 'fortctl/main.js'),
      '--config',
      inst.files.fortctl,
      'certs',
      'renew',
    ]);
    for (const role of [
      'trust-zone/agent',
      'trust-zone/deployment-manager',
      'trust-zone/fortctl',
      'trust-zone/engine',
      'client-zone/client API',
    ])
      expect(stdout).toMatch(new RegExp(`^${role}: renewed, serial [0-9A-F]+, valid until `, 'm'));
    expect(stdout).toMatch(/^reloaded: fort-agent \(admin API\)/m);
    files.forEach((f, i) => {
      const next = new X509Certificate(readFileSync(f));
      const old = before[i]!;
      expect(next.serialNumber).not.toBe(old.serialNumber);
      expect(next.subject).toBe(old.subject);
      expect(next.subjectAltName).toBe(old.subjectAltName);
      expect(next.publicKey.equals(old.publicKey)).toBe(true);
      expect(
        next.checkIssued(new X509Certificate(readFileSync(f.includes('client-zone') ? pki.clientZone.ca : tz.ca))),
      ).toBe(true);
      expect(Date.parse(next.validTo) - Date.parse(next.validFrom)).toBe(
        Date.parse(old.validTo) - Date.parse(old.validFrom),
      );
      expect(statSync(f).mode).toBe(modes[i]);
    });
    // Not due again: a second run renews nothing.
    expect((await fortctl('certs', 'renew')).stdout).not.toMatch(/renewed/);

    // systemctl reload's part for the two other services.
    engine.kill('SIGHUP');
    dm.kill('SIGHUP');
    await eventually(
      () =>
        jsonLines(dm.stdout).some((l) => l['msg'] === 'trust-zone client certificate reloaded') ? true : undefined,
      10_000,
      'the deployment manager reloading its certificate',
    );
    const ca = readFileSync(tz.ca);
    const asAgent = { cert: readFileSync(tz.agentCert), key: readFileSync(tz.agentKey) };
    expect(await servedSerial(inst.layout.ports.admin, ca, asAgent)).toBe(serialOf(tz.agentCert));
    expect(await servedSerial(inst.layout.ports.clientApi, readFileSync(pki.clientZone.ca))).toBe(
      serialOf(pki.clientZone.clientApiCert),
    );
    await eventually(
      async () =>
        (await servedSerial(inst.layout.ports.engine, ca, asAgent)) === serialOf(tz.engineCert) ? true : undefined,
      10_000,
      'the engine serving its renewed certificate',
    );
    expect([agent.starts, engine.starts, dm.starts]).toEqual([1, 1, 1]);
  });

  it('after the old certificates expired, every link of the trust zone works on new connections', async () => {
    await eventually(() => (Date.now() > expires + 1000 ? true : undefined), 40_000, 'the old certificates expired');
    // fortctl → agent, and agent → engine (a new connection with the agent's renewed certificate).
    expect((await fortctl('status')).stdout).toMatch(/healthy/);
    const set = await fortctl('log-level', 'debug', '--service', 'engine', '--for', '1m');
    expect(set.stdout).toMatch(/engine/);
    // The deployment manager → agent: a new connection once the agent starts again, which knows
    // the update state only once the deployment manager has reported it.
    await agent.stop();
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);
    await eventually(
      async () => ((await fortctl('update', 'status')).stdout.startsWith('step ') ? true : undefined),
      20_000,
      'the deployment manager reporting to the restarted agent',
    );
  }, 90_000);
});
