import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type PeerCertificate } from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { issueCert, loadCa } from '../../../lib/pki/certs.js';
import { writeSecretFile } from '../../../lib/files.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import { DIST, eventually, startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import { httpsRequest } from '../../helpers/https.js';

const run = promisify(execFile);
const FORT = 'fort-dev-1';

/** The certificate a fresh handshake gets, verified against `ca` (never unverified). */
function servedCert(port: number, ca: Buffer, client?: { cert: Buffer; key: Buffer }): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...client }, () => {
      const cert = s.getPeerCertificate();
      s.end();
      resolve(cert);
    });
    s.on('error', reject);
  });
}

/** Certificate rotation: new files on disk → SIGHUP or fortctl reload-certs → served, links untouched. */
describe('agent certificate reload', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let agent: Supervised;
  let operator: { ca: Buffer; cert: Buffer; key: Buffer };
  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { fortId: FORT, iot: true });
    dev = await testDevCloud(pki, { ports: inst.layout.ports });
    operator = {
      ca: readFileSync(pki.trustZone.ca),
      cert: readFileSync(pki.trustZone.fortctlCert),
      key: readFileSync(pki.trustZone.fortctlKey),
    };
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);
  });
  afterAll(async () => {
    await agent?.stop();
    await dev.stop();
    inst.cleanup();
  });

  const fortctl = (...args: string[]) =>
    run(process.execPath, [join(DIST, 'fortctl/main.js'), '-c', inst.files.fortctl, ...args]).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  const adminPort = () => inst.layout.ports.admin;
  const apiPort = () => inst.layout.ports.clientApi;
  /** The bridge's session object of the fort: the same object means the same MQTT connection. */
  const mqttSession = () =>
    (dev.bridge.broker as unknown as { clients: Record<string, object | undefined> }).clients[FORT];
  const linked = () => eventually(() => mqttSession(), 20_000, 'the fort connected to the bridge');
  const newServerCert = async (zone: 'trustZone' | 'clientZone') => {
    const z = pki[zone];
    const ca = await loadCa(readFileSync(z.ca, 'utf8'), readFileSync(z.caKey, 'utf8'));
    return issueCert(ca, {
      commonName: zone === 'trustZone' ? 'agent' : 'fort client api',
      usage: zone === 'trustZone' ? 'server+client' : 'server',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
  };
  const replace = (cert: string, key: string, kc: { certPem: string; keyPem: string }) => {
    writeSecretFile(key, kc.keyPem, true);
    writeFileSync(cert, kc.certPem);
  };

  it('SIGHUP serves new trust-zone and client-zone certificates without dropping the MQTT connection', async () => {
    const session = await linked();
    const upgrades = dev.bridge.stats.upgradesAccepted;
    const oldAdmin = await servedCert(adminPort(), operator.ca, operator);
    const oldApi = await servedCert(apiPort(), readFileSync(pki.clientZone.ca));
    const admin = await newServerCert('trustZone');
    const api = await newServerCert('clientZone');
    replace(pki.trustZone.agentCert, pki.trustZone.agentKey, admin);
    replace(pki.clientZone.clientApiCert, pki.clientZone.clientApiKey, api);
    agent.kill('SIGHUP');

    const newAdmin = await eventually(
      async () => {
        const c = await servedCert(adminPort(), operator.ca, operator);
        return c.serialNumber !== oldAdmin.serialNumber ? c : undefined;
      },
      10_000,
      'the new admin certificate',
    );
    const newApi = await servedCert(apiPort(), readFileSync(pki.clientZone.ca));
    expect(newAdmin.fingerprint256).toBe(new X509Certificate(admin.certPem).fingerprint256);
    expect(newApi.fingerprint256).toBe(new X509Certificate(api.certPem).fingerprint256);
    expect(newApi.serialNumber).not.toBe(oldApi.serialNumber);

    // Same MQTT session object, no new WebSocket upgrade, the process never restarted.
    expect(mqttSession()).toBe(session);
    expect(dev.bridge.stats.upgradesAccepted).toBe(upgrades);
    expect(agent.starts).toBe(1);
    const health = JSON.parse(
      (await httpsRequest(`https://127.0.0.1:${adminPort()}/admin/v1/health`, operator)).body,
    ) as { modules: Record<string, { info?: Record<string, unknown> }> };
    expect(health.modules['iot-link']?.info).toMatchObject({ state: 'connected', connects: 1 });
  });

  it('fortctl reload-certs does the same and prints what is served; a key that does not match is refused and the old certificate stays served', async () => {
    const session = await linked();
    const next = await newServerCert('clientZone');
    replace(pki.clientZone.clientApiCert, pki.clientZone.clientApiKey, next);
    const r = await fortctl('reload-certs');
    expect(r.code).toBe(0);
    const serial = new X509Certificate(next.certPem).serialNumber;
    expect(r.stdout).toMatch(new RegExp(`^client API \\(client zone\\) +${serial} `, 'm'));
    expect(r.stdout).toMatch(/^admin API \(trust zone\) /m);
    expect((await servedCert(apiPort(), readFileSync(pki.clientZone.ca))).serialNumber).toBe(serial);

    // A certificate whose key is another one's: refused by name, nothing swapped, no key in the message.
    const other = await newServerCert('clientZone');
    writeFileSync(pki.clientZone.clientApiCert, other.certPem);
    const bad = await fortctl('reload-certs');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      `private key ${pki.clientZone.clientApiKey} does not belong to certificate ${pki.clientZone.clientApiCert}`,
    );
    expect(bad.stderr).toContain('still serving the previous certificates');
    expect(bad.stderr).not.toContain('PRIVATE KEY');
    expect((await servedCert(apiPort(), readFileSync(pki.clientZone.ca))).serialNumber).toBe(serial);
    // SIGHUP with the same bad file: logged, the agent stays up and serving.
    agent.kill('SIGHUP');
    await eventually(
      () => (agent.stdout.some((l) => l.includes('certificates not reloaded')) ? true : undefined),
      10_000,
      'the refusal in the log',
    );
    expect(agent.stdout.some((l) => l.includes('BEGIN'))).toBe(false);
    expect((await servedCert(apiPort(), readFileSync(pki.clientZone.ca))).serialNumber).toBe(serial);
    expect(mqttSession()).toBe(session);
    expect(agent.starts).toBe(1);
  });

  it('the deployment manager may not reload certificates', async () => {
    const dm = {
      ca: operator.ca,
      cert: readFileSync(pki.trustZone.deploymentManagerCert),
      key: readFileSync(pki.trustZone.deploymentManagerKey),
    };
    const res = await httpsRequest(`https://127.0.0.1:${adminPort()}/admin/v1/reload-certs`, dm, 'POST');
    expect(res.status).toBe(403);
  });
});
