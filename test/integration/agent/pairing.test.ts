import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { SignJWT } from 'jose';
import { ASSERTION_TYPE } from '../../../dev-cloud/cloud-api/token-route.js';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import { httpsCall, httpsRequest } from '../../helpers/https.js';
import {
  DIST,
  eventually,
  jsonLines,
  startAgent,
  testInstallation,
  testPki,
  type TestInstallation,
} from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';

const run = promisify(execFile);

/** fortctl (as the operator runs it, exit code kept) and the agent's health, for one installation. */
function operator(inst: TestInstallation, pki: PkiPaths) {
  const adminTls = {
    ca: readFileSync(pki.trustZone.ca),
    cert: readFileSync(pki.trustZone.fortctlCert),
    key: readFileSync(pki.trustZone.fortctlKey),
  };
  return {
    fortctl: (...args: string[]) =>
      run(process.execPath, [join(DIST, 'fortctl/main.js'), '-c', inst.files.fortctl, ...args]).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      ),
    health: async () =>
      JSON.parse(
        (await httpsRequest(`https://127.0.0.1:${inst.layout.ports.admin}/admin/v1/health`, adminTls)).body,
      ) as { fortId: string; status: string; modules: Record<string, { state: string; detail?: string }> },
  };
}

describe('pairing: fortctl pair gives an unpaired fort its identity; nothing is copied by hand', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let agent: Supervised;
  const pairingDir = () => join(inst.layout.dataDir, 'agent', 'pairing');
  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { paired: true });
    dev = await testDevCloud(pki, { ports: inst.layout.ports });
    agent = await startAgent(inst.files.agent, { restart: true, restartDelayMs: 100 });
    await agent.waitReady(30_000);
  });
  afterAll(async () => {
    await agent?.stop();
    await dev.stop();
    inst.cleanup();
  });

  const fortctl = (...args: string[]) => operator(inst, pki).fortctl(...args);
  const health = () => operator(inst, pki).health();
  const newCode = async (tenant: string) => dev.pairing.codes.issue(tenant, 600).code;

  it('starts unpaired and says so', async () => {
    const h = await health();
    expect(h.fortId).toBe('unpaired');
    expect(h.modules['pairing']?.detail).toMatch(/^unpaired: run fortctl pair/);
    const toml = readFileSync(inst.files.agent, 'utf8');
    expect(toml).not.toMatch(/^\[(fort|iot|cloud)\]/m);
    expect(toml).toMatch(/^\[pairing\]\nca = /m);
    expect(existsSync(pairingDir())).toBe(false);
  });

  it('refuses a code of another tenant, an unknown, an expired and a used code, and a cloud whose certificate chains to another CA — and stays unpaired with nothing written', async () => {
    const other = await fortctl(
      'pair',
      '--cloud',
      dev.apiUrl,
      '--code',
      await newCode('t2'),
      '--tenant',
      't1',
      '--wait',
      '0',
    );
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/pairing failed \(422 FORT_ERR_PAIRING\).*FORT_ERR_PAIRING_CODE_TENANT/);
    const unknown = await fortctl('pair', '--cloud', dev.apiUrl, '--code', 'AAAA-BBBB-CCCC-DDDD', '--wait', '0');
    expect(unknown.stderr).toMatch(/FORT_ERR_PAIRING_CODE_UNKNOWN/);
    const expired = await fortctl(
      'pair',
      '--cloud',
      dev.apiUrl,
      '--code',
      dev.pairing.codes.issue('t1', 0).code,
      '--wait',
      '0',
    );
    expect(expired.stderr).toMatch(
      /pairing failed \(422 FORT_ERR_PAIRING\).*FORT_ERR_PAIRING_CODE_EXPIRED.*expired at /,
    );
    // A code another fort already used.
    const usedCode = await newCode('t1');
    dev.pairing.codes.redeem(usedCode);
    const reused = await fortctl('pair', '--cloud', dev.apiUrl, '--code', usedCode, '--wait', '0');
    expect(reused.code).toBe(2);
    expect(reused.stderr).toMatch(/FORT_ERR_PAIRING_CODE_USED.*already used/);
    // The trust-zone CA is not what the cloud's certificate chains to: refused before any code is sent.
    const rogue = readFileSync(inst.files.agent, 'utf8');
    const otherCa = rogue.replace(/^(\[pairing\]\nca = ).*$/m, `$1${JSON.stringify(pki.trustZone.ca)}`);
    expect(otherCa).not.toBe(rogue);
    writeFileSync(inst.files.agent, otherCa);
    await fortctl('drain');
    await eventually(
      async () => ((await health()).status === 'healthy' ? true : undefined),
      20_000,
      'the agent back after its drain',
    );
    const code = await newCode('t1');
    const refused = await fortctl('pair', '--cloud', dev.apiUrl, '--code', code, '--wait', '0');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/pairing endpoint https:\/\/127\.0\.0\.1:\d+: .*(certificate|self.signed)/i);
    writeFileSync(inst.files.agent, rogue);
    await fortctl('drain');
    await eventually(
      async () => ((await health()).status === 'healthy' ? true : undefined),
      20_000,
      'the agent back with the right CA',
    );
    expect(existsSync(pairingDir())).toBe(false);
    expect(readdirSync(dirname(pairingDir())).filter((n) => n.includes('pairing'))).toEqual([]);
    expect((await health()).fortId).toBe('unpaired');
    // The code the refused attempt never sent still pairs: it is used below.
    codeForPairing = code;
  });

  let codeForPairing = '';
  let fortId = '';
  it('pairs: the agent restarts with its identity, its keys 0600, and the link, an event round trip and an authorised request work', async () => {
    const res = await fortctl(
      'pair',
      '--cloud',
      dev.apiUrl,
      '--code',
      codeForPairing,
      '--tenant',
      't1',
      '--wait',
      '60',
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const m = /^paired as (fort-[0-9a-f]{10}) \(tenant t1\)/.exec(res.stdout);
    expect(m).not.toBeNull();
    fortId = m![1]!;
    expect(res.stdout).toContain(`agent ${fortId} is back`);
    for (const key of ['jwt.key', 'device.key']) expect(statSync(join(pairingDir(), key)).mode & 0o777).toBe(0o600);
    const h = await health();
    expect(h.fortId).toBe(fortId);
    expect(h.modules['pairing']?.detail).toMatch(new RegExp(`^paired as ${fortId} \\(tenant t1\\)`));

    // The IoT link with the paired device certificate: a ping gets its pong.
    await eventually(
      async () => ((await health()).modules['iot-link']?.state === 'ready' ? true : undefined),
      30_000,
      'iot-link ready',
    );
    const ping = {
      v: 1,
      id: randomUUID(),
      type: 'ping',
      fortId,
      ts: new Date().toISOString(),
      data: { echo: 'paired' },
    };
    await dev.bridge.publish(`forts/${fortId}/events`, JSON.stringify(ping));
    await eventually(
      () =>
        dev.bridge.messages
          .filter((x) => x.topic === `forts/${fortId}/status`)
          .map((x) => JSON.parse(x.payload.toString()) as { type: string; data: { pingId?: string } })
          .find((p) => p.type === 'pong' && p.data.pingId === ping.id),
      15_000,
      'the pong of the paired fort',
    );

    // User requests authorised by the cloud, which the fort reaches with its own token key:
    // alice may read app demo (allowed, then 404: no such app here yet), bob may not (403).
    dev.cloudApi.setPolicy({
      decision_ttl_seconds: 60,
      tenants: {
        t1: {
          forts: [fortId],
          users: { alice: { groups: ['g'] }, bob: { groups: [] } },
          spaces: { s: { g: ['app.read'] } },
          apps: { demo: { space: 's' } },
        },
      },
    });
    const asked = dev.cloudApi.stats().decisions;
    const get = async (user: string) =>
      httpsCall(
        `https://127.0.0.1:${inst.layout.ports.clientApi}`,
        readFileSync(pki.clientZone.ca),
        'GET',
        '/api/v1/apps/demo',
        { headers: { authorization: `Bearer ${await dev.login(user, 't1')}` } },
      );
    expect((await get('alice')).json()).toMatchObject({ status: 404, code: 'FORT_ERR_NOT_FOUND' });
    expect((await get('bob')).json()).toMatchObject({ status: 403, code: 'FORT_ERR_FORBIDDEN' });
    expect(dev.cloudApi.stats().decisions - asked).toBe(2);
    expect(dev.cloudApi.stats().tokensIssued).toBeGreaterThan(0);

    // Pairing again is refused: the identity stays.
    const again = await fortctl('pair', '--cloud', dev.apiUrl, '--code', await newCode('t1'), '--wait', '0');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/409 FORT_ERR_CONFLICT.*already paired/);
  });

  it('revoked in the cloud: its link, its token and its update-server calls are all refused', async () => {
    const res = await httpsCall(dev.apiUrl, dev.ca, 'POST', `/dev/v1/forts/${fortId}/revoke`);
    expect(res.status).toBe(200);
    // The link is dropped and the credentials provider refuses the device certificate from now on.
    await eventually(
      async () => ((await health()).modules['iot-link']?.state !== 'ready' ? true : undefined),
      15_000,
      'iot-link down',
    );
    const f = join(pairingDir(), 'device');
    const creds = await httpsRequest(
      `${dev.providerUrl}/role-aliases/fort-iot-role/credentials`,
      { ca: dev.ca, cert: readFileSync(`${f}.pem`), key: readFileSync(`${f}.key`) },
      'GET',
      { 'x-amzn-iot-thingname': fortId },
    );
    expect(creds.status).toBe(403);
    // A user request needing a new decision: the cloud no longer answers this fort, so it fails closed.
    const dave = await dev.login('dave', 't1');
    const r = await httpsCall(
      `https://127.0.0.1:${inst.layout.ports.clientApi}`,
      readFileSync(pki.clientZone.ca),
      'GET',
      '/api/v1/apps/demo',
      { headers: { authorization: `Bearer ${dave}` } },
    );
    expect(r.json()).toMatchObject({ status: 503, code: 'FORT_ERR_AUTHZ_UNAVAILABLE' });
    // The update server refuses the device certificate on every call.
    const mender = await httpsRequest(
      `${dev.mender.url}/api/devices/v1/authentication/auth_requests`,
      { ca: dev.ca, cert: readFileSync(`${f}.pem`), key: readFileSync(`${f}.key`) },
      'POST',
    );
    expect(mender.status).toBe(401);
    expect(mender.body).toContain('device certificate revoked');
  });
});

describe('pairing: kill -9 while pairing leaves the fort cleanly unpaired; unpair', () => {
  it('killed while the cloud answers: restarts unpaired with no half-written identity, then pairs with a new code, then unpairs', async () => {
    const pki = await testPki();
    const inst = await testInstallation(pki, { paired: true });
    const dev = await testDevCloud(pki, { ports: inst.layout.ports });
    const agent = await startAgent(inst.files.agent, { restart: true, restartDelayMs: 100 });
    const pairingDir = join(inst.layout.dataDir, 'agent', 'pairing');
    const { fortctl, health } = operator(inst, pki);
    try {
      await agent.waitReady(30_000);
      // A staging directory an earlier crash left (as if killed between two of its files).
      const left = join(inst.layout.dataDir, 'agent', '.pairing.tmp-crash1');
      mkdirSync(left);
      writeFileSync(join(left, 'jwt.key'), 'half');

      dev.pairing.hold();
      const attempt = fortctl(
        'pair',
        '--cloud',
        dev.apiUrl,
        '--code',
        dev.pairing.codes.issue('t1', 600).code,
        '--wait',
        '0',
      );
      await eventually(
        () => (dev.pairing.waiting() > 0 ? true : undefined),
        15_000,
        'the pairing request at the cloud',
      );
      const starts = agent.starts;
      agent.kill('SIGKILL');
      const failed = await attempt;
      expect(failed.code).toBe(2);
      dev.pairing.release();
      await eventually(
        async () => (agent.starts > starts && (await health()).status === 'healthy' ? true : undefined),
        20_000,
        'the agent restarted',
      );
      expect((await health()).fortId).toBe('unpaired');
      expect(existsSync(pairingDir)).toBe(false);
      expect(readdirSync(join(inst.layout.dataDir, 'agent')).filter((n) => n.includes('pairing'))).toEqual([]);
      expect(agent.stdout.some((l) => l.includes('removed what an interrupted pairing left'))).toBe(true);

      const ok = await fortctl(
        'pair',
        '--cloud',
        dev.apiUrl,
        '--code',
        dev.pairing.codes.issue('t1', 600).code,
        '--wait',
        '60',
      );
      expect(ok.code).toBe(0);
      expect((await health()).fortId).toMatch(/^fort-[0-9a-f]{10}$/);
      expect(readFileSync(join(pairingDir, 'identity.json'), 'utf8')).toContain('"tenant": "t1"');

      // Unpair: the cloud revokes it, the identity and keys go, the data stays.
      const fortId = (await health()).fortId;
      const starts2 = agent.starts;
      const un = await fortctl('unpair');
      expect(un.stderr).toBe('');
      expect(un.stdout).toBe(
        `unpaired ${fortId} (revoked in the cloud); its data is kept; the agent restarts unpaired\n`,
      );
      expect(dev.pairing.registry.get(fortId)?.revokedAt).toEqual(expect.any(String));
      await eventually(
        async () => (agent.starts > starts2 && (await health()).fortId === 'unpaired' ? true : undefined),
        20_000,
        'the agent back unpaired',
      );
      expect(existsSync(pairingDir)).toBe(false);
      expect(existsSync(join(inst.layout.dataDir, 'agent', 'agent.db'))).toBe(true);
      const twice = await fortctl('unpair');
      expect(twice.code).toBe(1);
      expect(twice.stderr).toMatch(/409 FORT_ERR_CONFLICT.*not paired/);
    } finally {
      await agent.stop();
      await dev.stop();
      inst.cleanup();
    }
  });
});

describe('pairing: key rotation under event load', () => {
  it('loses no event and handles none twice; the old JWT key and device certificate are refused after the overlap', async () => {
    const pki = await testPki();
    const inst = await testInstallation(pki, { paired: true });
    const dev = await testDevCloud(pki, { ports: inst.layout.ports, keyOverlapSeconds: 3 });
    const agent = await startAgent(inst.files.agent, { restart: true, restartDelayMs: 100 });
    const pairingDir = join(inst.layout.dataDir, 'agent', 'pairing');
    const { fortctl, health } = operator(inst, pki);
    try {
      await agent.waitReady(30_000);
      expect(
        (
          await fortctl(
            'pair',
            '--cloud',
            dev.apiUrl,
            '--code',
            dev.pairing.codes.issue('t1', 600).code,
            '--wait',
            '60',
          )
        ).code,
      ).toBe(0);
      const fortId = (await health()).fortId;
      await eventually(
        async () => ((await health()).modules['iot-link']?.state === 'ready' ? true : undefined),
        30_000,
        'iot-link ready',
      );
      const oldJwt = readFileSync(join(pairingDir, 'jwt.key'));
      const oldCert = readFileSync(join(pairingDir, 'device.pem'));
      const oldKey = readFileSync(join(pairingDir, 'device.key'));

      // Events keep coming while the keys rotate and the agent restarts with them.
      const sent: string[] = [];
      let sending = true;
      const load = (async () => {
        while (sending) {
          const e = { v: 1, id: randomUUID(), type: 'ping', fortId, ts: new Date().toISOString(), data: {} };
          sent.push(e.id);
          await dev.bridge.publish(`forts/${fortId}/events`, JSON.stringify(e));
          await new Promise((r) => setImmediate(r));
          if (sent.length >= 400) break;
        }
      })();
      await eventually(() => (sent.length >= 50 ? true : undefined), 10_000, 'events flowing');
      const starts = agent.starts;
      const rotated = await fortctl('rotate-keys');
      expect(rotated.stderr).toBe('');
      expect(rotated.stdout).toMatch(
        new RegExp(
          `^keys of ${fortId} rotated; the old ones are accepted until \\S+; the agent restarts with the new ones\\n$`,
        ),
      );
      await eventually(
        async () =>
          agent.starts > starts && (await health()).modules['iot-link']?.state === 'ready' ? true : undefined,
        30_000,
        'the link back with the new certificate',
      );
      sending = false;
      await load;
      expect(readFileSync(join(pairingDir, 'jwt.key')).equals(oldJwt)).toBe(false);
      expect(readFileSync(join(pairingDir, 'device.pem')).equals(oldCert)).toBe(false);
      expect(statSync(join(pairingDir, 'device.key')).mode & 0o777).toBe(0o600);

      const pongs = () =>
        dev.bridge.messages
          .filter((m) => m.topic === `forts/${fortId}/status`)
          .map((m) => JSON.parse(m.payload.toString()) as { id: string; type: string; data: { pingId: string } })
          .filter((m) => m.type === 'pong');
      await eventually(
        () => (new Set(pongs().map((p) => p.data.pingId)).size >= sent.length ? true : undefined),
        30_000,
        'a pong for every event',
      );
      const byPing = new Map<string, Set<string>>();
      for (const p of pongs()) byPing.set(p.data.pingId, (byPing.get(p.data.pingId) ?? new Set()).add(p.id));
      for (const id of sent) expect(byPing.get(id)?.size, `event ${id} handled once`).toBe(1);

      // After the overlap the old device certificate gets no IoT credentials (the new one does).
      const creds = (cert: Buffer, key: Buffer) =>
        httpsRequest(`${dev.providerUrl}/role-aliases/fort-iot-role/credentials`, { ca: dev.ca, cert, key }, 'GET', {
          'x-amzn-iot-thingname': fortId,
        });
      await eventually(
        async () => ((await creds(oldCert, oldKey)).status === 403 ? true : undefined),
        15_000,
        'the old certificate refused after the overlap',
      );
      expect(
        (await creds(readFileSync(join(pairingDir, 'device.pem')), readFileSync(join(pairingDir, 'device.key'))))
          .status,
      ).toBe(200);
      // ... and the old JWT key no longer gets a token; the new one (the agent's) does.
      const token = async (key: Buffer) => {
        const now = Math.floor(Date.now() / 1000);
        const assertion = await new SignJWT({
          iss: fortId,
          sub: fortId,
          aud: dev.tokenUrl,
          iat: now,
          exp: now + 60,
          jti: randomUUID(),
        })
          .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
          .sign(createPrivateKey(key));
        return (
          await httpsCall(dev.apiUrl, dev.ca, 'POST', '/oauth/token', {
            form: {
              grant_type: 'client_credentials',
              client_assertion_type: ASSERTION_TYPE,
              client_assertion: assertion,
            },
          })
        ).status;
      };
      expect(await token(oldJwt)).toBe(401);
      expect(await token(readFileSync(join(pairingDir, 'jwt.key')))).toBe(200);
    } finally {
      await agent.stop();
      await dev.stop();
      inst.cleanup();
    }
  });

  it('renews its device certificate and JWT key by itself past two thirds of the certificate life (certificates of 30 s)', async () => {
    const pki = await testPki();
    const inst = await testInstallation(pki, { paired: true });
    const dev = await testDevCloud(pki, { ports: inst.layout.ports, deviceCertSeconds: 30 });
    const agent = await startAgent(inst.files.agent, { restart: true, restartDelayMs: 100 });
    const pairingDir = join(inst.layout.dataDir, 'agent', 'pairing');
    const { fortctl, health } = operator(inst, pki);
    const serial = () => new X509Certificate(readFileSync(join(pairingDir, 'device.pem'))).serialNumber;
    const renewed = () =>
      jsonLines(agent.stdout).filter((l) => String(l['msg']).startsWith('device certificate and JWT key renewed'));
    try {
      await agent.waitReady(30_000);
      const code = dev.pairing.codes.issue('t1', 600).code;
      expect((await fortctl('pair', '--cloud', dev.apiUrl, '--code', code, '--wait', '60')).code).toBe(0);
      const paired = new X509Certificate(readFileSync(join(pairingDir, 'device.pem')));
      const life = Date.parse(paired.validTo) - Date.parse(paired.validFrom);
      expect(life).toBe(30_000);
      const oldJwt = readFileSync(join(pairingDir, 'jwt.key'));
      const starts = agent.starts;
      // Not before two thirds of its life; then renewed, and the agent back on the new one.
      const seen = await eventually(() => (renewed().length > 0 ? Date.now() : undefined), 60_000, 'a renewal');
      expect(seen).toBeGreaterThanOrEqual(Date.parse(paired.validFrom) + (life * 2) / 3 - 1000);
      await eventually(
        async () =>
          agent.starts > starts &&
          serial() !== paired.serialNumber &&
          (await health().catch(() => undefined))?.modules['iot-link']?.state === 'ready'
            ? true
            : undefined,
        30_000,
        'the agent back with the renewed certificate',
      );
      expect(readFileSync(join(pairingDir, 'jwt.key')).equals(oldJwt)).toBe(false);
      expect(statSync(join(pairingDir, 'device.key')).mode & 0o777).toBe(0o600);
      expect((await health()).fortId).toBe(paired.subject.replace(/^CN=/, ''));
    } finally {
      await agent.stop();
      await dev.stop();
      inst.cleanup();
    }
  });
});
