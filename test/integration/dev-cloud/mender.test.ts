import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { once } from 'node:events';
import { request } from 'node:https';
import { connect as connectTls } from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCa, issueCert } from '../../../lib/pki/certs.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { ArtifactView, DeploymentDetail } from '../../../dev-cloud/mender/dev-routes.js';
import type { DeploymentRecord } from '../../../dev-cloud/mender/deployments.js';
import { DIST, tempDir, testPki } from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';

const run = promisify(execFile);
const NEXT_V1 = '/api/devices/v1/deployments/device/deployments/next';
const NEXT_V2 = '/api/devices/v2/deployments/device/deployments/next';
const AUTH = '/api/devices/v1/authentication/auth_requests';
const INVENTORY = '/api/devices/v1/inventory/device/attributes';
const deploymentPath = (id: string, what: 'status' | 'log') =>
  `/api/devices/v1/deployments/device/deployments/${id}/${what}`;

interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The whole message arrived (false: the connection died mid-body). */
  complete: boolean;
  json<T>(): T;
}
interface ClientTls {
  ca: Buffer;
  cert?: Buffer | string;
  key?: Buffer | string;
}

/** One HTTPS request with explicit TLS material; resolves on close, with whatever body arrived. */
function call(
  url: string,
  tls: ClientTls,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; json?: unknown } = {},
): Promise<Res> {
  const headers: Record<string, string> = { ...opts.headers };
  let body = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] ??= 'application/json';
  }
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? 'GET',
        headers,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => {}); // a cut connection: reported as complete = false
        res.on('close', () => {
          const b = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: b,
            complete: res.complete,
            json: <T>() => JSON.parse(b.toString('utf8')) as T,
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

type KeyPair = { privateKey: KeyObject; publicKey: KeyObject };
const KEYS = {
  rsa: () => generateKeyPairSync('rsa', { modulusLength: 3072 }),
  ecdsa: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  ed25519: () => generateKeyPairSync('ed25519'),
};

/** An auth request as the Mender client 3.4 sends it: sorted id_data, tenant_token "", empty Bearer, X-Men-Signature. */
function authRequest(key: KeyPair, identity: Record<string, string>, tamper?: (raw: Buffer) => Buffer) {
  const idData = JSON.stringify(Object.fromEntries(Object.entries(identity).sort(([a], [b]) => a.localeCompare(b))));
  const raw = Buffer.from(
    JSON.stringify({
      id_data: idData,
      pubkey: key.publicKey.export({ type: 'spki', format: 'pem' }),
      tenant_token: '',
    }),
  );
  const sig =
    key.privateKey.asymmetricKeyType === 'ed25519'
      ? sign(null, raw, key.privateKey)
      : sign('sha256', raw, key.privateKey);
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: 'Bearer ',
      'x-men-signature': sig.toString('base64'),
    },
    body: tamper ? tamper(raw) : raw,
  };
}

describe('dev cloud: Mender-compatible update server (mutual TLS)', () => {
  let pki: PkiPaths;
  let dev: TestDevCloud;
  let device: ClientTls;
  let artifactFile: string;
  let artifactBytes: Buffer;
  let home: string;

  const m = (path: string, opts: Parameters<typeof call>[2] = {}, tls: ClientTls = device) =>
    call(`${dev.mender.url}${path}`, tls, opts);
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  /** Authenticates a new device (pending → accepted by the operator) and returns its JWT. */
  async function acceptedDevice(fortId: string, key: KeyPair = KEYS.ed25519()): Promise<string> {
    expect((await m(AUTH, authRequest(key, { fort_id: fortId, mac: '02:00:00:00:00:01' }))).status).toBe(401);
    dev.mender.accept(fortId);
    const res = await m(AUTH, authRequest(key, { fort_id: fortId, mac: '02:00:00:00:00:01' }));
    expect(res.status).toBe(200);
    return res.body.toString('utf8');
  }

  beforeAll(async () => {
    pki = await testPki();
    dev = await testDevCloud(pki);
    device = {
      ca: readFileSync(pki.cloudServer.ca),
      cert: readFileSync(pki.cloudDevice.deviceCert),
      key: readFileSync(pki.cloudDevice.deviceKey),
    };
    const dir = tempDir('mender-art');
    writeFileSync(join(dir, 'fort-agent-1.0.1.tgz'), randomBytes(20_000));
    artifactFile = join(dir, 'fort-1.0.1.mender');
    execFileSync('mender-artifact', [
      'write',
      'module-image',
      '-T',
      'fort-agent',
      '-n',
      'fort-1.0.1',
      '-t',
      'fort-test',
      '-f',
      join(dir, 'fort-agent-1.0.1.tgz'),
      '-o',
      artifactFile,
    ]);
    artifactBytes = readFileSync(artifactFile);
    home = tempDir('devhome');
    writeFileSync(
      join(home, 'dev-cloud.json'),
      JSON.stringify({ cloud: { url: dev.apiUrl }, ca: { cloudServer: pki.cloudServer.ca } }),
    );
  });
  afterAll(async () => {
    await dev?.stop();
  });

  it('refuses a client without a certificate, or with one from another CA, in the TLS handshake', async () => {
    const cd = new (await import('node:crypto')).X509Certificate(readFileSync(pki.cloudDevice.ca));
    // Same subject name as the real device CA: only the key tells them apart.
    const rogueCa = await createCa({ commonName: cd.subject.replace(/^CN=/, '') });
    const rogue = await issueCert(rogueCa, { commonName: 'fort-dev-1', usage: 'client' });
    const token = 'x';
    const link = dev.mender.downloadLink('no-such-artifact');
    for (const tls of [{ ca: device.ca }, { ca: device.ca, cert: rogue.certPem, key: rogue.keyPem }]) {
      for (const path of [NEXT_V1, AUTH, new URL(link.uri).pathname + new URL(link.uri).search]) {
        await expect(m(path, { headers: bearer(token) }, tls)).rejects.toThrow(
          /alert|socket hang up|ECONNRESET|certificate/i,
        );
      }
    }
    // The device certificate gets through to HTTP (and then needs a JWT).
    const ok = await m(`${NEXT_V1}?artifact_name=a&device_type=t`);
    expect([ok.status, ok.json<{ error: string }>().error, ok.headers['www-authenticate']]).toEqual([
      401,
      'missing device token',
      'Bearer',
    ]);
  });

  it.each(['rsa', 'ecdsa', 'ed25519'] as const)(
    'authenticates a %s device key: 401 pending until accepted, then a JWT',
    async (kind) => {
      const key = KEYS[kind]();
      const fortId = `fort-${kind}`;
      const pending = await m(AUTH, authRequest(key, { fort_id: fortId, mac: '02:00:00:00:00:02' }));
      expect([pending.status, pending.headers['retry-after'], pending.json<{ error: string }>().error]).toEqual([
        401,
        '60',
        'device not accepted yet (pending)',
      ]);
      const listed = dev.mender.device(fortId);
      expect([listed.status, listed.identity]).toEqual(['pending', { fort_id: fortId, mac: '02:00:00:00:00:02' }]);

      // Signed by another key: refused, and the device stays pending.
      const forged = authRequest(key, { fort_id: fortId, mac: '02:00:00:00:00:02' });
      forged.headers['x-men-signature'] = authRequest(KEYS.ed25519(), {
        fort_id: fortId,
        mac: '02:00:00:00:00:02',
      }).headers['x-men-signature'];
      expect((await m(AUTH, forged)).status).toBe(401);
      // The signed bytes changed (one more space): refused.
      const tampered = authRequest(key, { fort_id: fortId, mac: '02:00:00:00:00:02' }, (raw) =>
        Buffer.from(raw.toString('utf8').replace('{', '{ ')),
      );
      expect((await m(AUTH, tampered)).status).toBe(401);

      expect(dev.mender.accept(fortId).status).toBe('accepted');
      const ok = await m(AUTH, authRequest(key, { fort_id: fortId, mac: '02:00:00:00:00:02' }));
      expect(ok.status).toBe(200);
      const jwt = ok.body.toString('utf8');
      expect(jwt).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<
        string,
        unknown
      >;
      expect(claims).toMatchObject({ sub: listed.id, 'mender.device': true });
      expect((claims['exp'] as number) - (claims['iat'] as number)).toBe(3600);

      const next = await m(NEXT_V2, {
        method: 'POST',
        headers: bearer(jwt),
        json: { device_provides: { artifact_name: 'fort-1.0.0', device_type: 'fort-test' } },
      });
      expect(next.status).toBe(204);
      expect(dev.mender.device(fortId).provides).toEqual({ artifact_name: 'fort-1.0.0', device_type: 'fort-test' });

      expect(
        dev.mender
          .authAttempts()
          .filter((a) => a.deviceId === listed.id)
          .map((a) => a.result),
      ).toEqual(['pending', 'accepted']);
      expect(dev.mender.authAttempts().filter((a) => a.result === 'bad-signature').length).toBeGreaterThanOrEqual(2);
    },
  );

  it('refuses missing, forged and expired JWTs, and those of a device the operator rejected', async () => {
    const key = KEYS.ed25519();
    const jwt = await acceptedDevice('fort-jwt', key);
    const q = `${NEXT_V1}?artifact_name=fort-1.0.0&device_type=fort-test`;
    expect((await m(q, { headers: bearer(jwt) })).status).toBe(204);
    const expired = await dev.mender.issueDeviceToken('fort-jwt', new Date(Date.now() - 1000));
    const [h, p] = jwt.split('.');
    for (const bad of [expired, `${h}.${p}.${Buffer.alloc(32).toString('base64url')}`, 'not-a-jwt']) {
      const res = await m(q, { headers: bearer(bad) });
      expect([res.status, res.json<{ error: string }>().error]).toEqual([401, 'invalid or expired token']);
    }
    expect((await m(q)).status).toBe(401);
    dev.mender.reject('fort-jwt');
    expect((await m(q, { headers: bearer(jwt) })).status).toBe(401);
    const again = await m(AUTH, authRequest(key, { fort_id: 'fort-jwt', mac: '02:00:00:00:00:01' }));
    expect([again.status, again.json<{ error: string }>().error, dev.mender.device('fort-jwt').status]).toEqual([
      401,
      'device rejected',
      'rejected',
    ]);
    expect(
      dev.mender
        .authAttempts()
        .filter((a) => a.identity?.['fort_id'] === 'fort-jwt')
        .map((a) => a.result),
    ).toEqual(['pending', 'accepted', 'rejected']);
  });

  it('uploads a real artifact (dev route), parsing its name and device type; the same name and type again is a conflict', async () => {
    const up = await call(
      `${dev.apiUrl}/dev/v1/mender/artifacts`,
      { ca: dev.ca },
      { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: artifactBytes },
    );
    expect(up.status).toBe(201);
    const a = up.json<ArtifactView>();
    expect(a).toEqual({
      id: expect.any(String),
      name: 'fort-1.0.1',
      deviceTypes: ['fort-test'],
      payloadTypes: ['fort-agent'],
      signed: false,
      size: artifactBytes.length,
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      uploadedAt: expect.any(String),
    });
    expect(dev.mender.artifacts().map((x) => [x.id, x.name])).toEqual([[a.id, 'fort-1.0.1']]);
    const again = await call(
      `${dev.apiUrl}/dev/v1/mender/artifacts`,
      { ca: dev.ca },
      { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: artifactBytes },
    );
    expect([again.status, again.json<{ code: string }>().code]).toEqual([409, 'FORT_ERR_CONFLICT']);
    const junk = await call(
      `${dev.apiUrl}/dev/v1/mender/artifacts`,
      { ca: dev.ca },
      { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'not a tar' },
    );
    expect([junk.status, junk.json<{ code: string }>().code]).toEqual([400, 'FORT_ERR_BAD_REQUEST']);
    expect(dev.mender.artifacts()).toHaveLength(1);
  });

  it('deploys it: next (v2 POST and v1 GET) gives a working presigned link with range support; bad links are 403', async () => {
    const jwt = await acceptedDevice('fort-dl');
    const [artifact] = dev.mender.artifacts();
    const dep = dev.mender.deploy({ artifactName: 'fort-1.0.1', devices: 'fort-dl' });
    type Next = {
      id: string;
      artifact: { artifact_name: string; source: { uri: string; expire: string }; device_types_compatible: string[] };
    };
    const v2 = await m(NEXT_V2, {
      method: 'POST',
      headers: bearer(jwt),
      json: { device_provides: { artifact_name: 'fort-1.0.0', device_type: 'fort-test' } },
    });
    const v1 = await m(`${NEXT_V1}?artifact_name=fort-1.0.0&device_type=fort-test`, { headers: bearer(jwt) });
    for (const res of [v2, v1]) {
      expect(res.status).toBe(200);
      const n = res.json<Next>();
      expect(n).toMatchObject({
        id: dep.id,
        artifact: { artifact_name: 'fort-1.0.1', device_types_compatible: ['fort-test'] },
      });
      expect(Date.parse(n.artifact.source.expire) - Date.now()).toBeGreaterThan(290_000);
      expect(Date.parse(n.artifact.source.expire) - Date.now()).toBeLessThanOrEqual(300_000);
      expect(n.artifact.source.uri.startsWith(`${dev.mender.url}/download/${artifact!.id}?`)).toBe(true);
    }
    const uri = v2.json<Next>().artifact.source.uri;

    const full = await call(uri, device); // no JWT: the link is the credential
    expect([full.status, full.headers['accept-ranges'], Number(full.headers['content-length'])]).toEqual([
      200,
      'bytes',
      artifactBytes.length,
    ]);
    expect(full.body.equals(artifactBytes)).toBe(true);

    const tail = await call(uri, device, { headers: { range: 'bytes=100-' } });
    expect([tail.status, tail.headers['content-range']]).toEqual([
      206,
      `bytes 100-${artifactBytes.length - 1}/${artifactBytes.length}`,
    ]);
    expect(tail.body.equals(artifactBytes.subarray(100))).toBe(true);
    const mid = await call(uri, device, { headers: { range: 'bytes=10-19' } });
    expect([mid.status, mid.body.equals(artifactBytes.subarray(10, 20))]).toEqual([206, true]);
    const beyond = await call(uri, device, { headers: { range: `bytes=${artifactBytes.length}-` } });
    expect([beyond.status, beyond.headers['content-range']]).toEqual([416, `bytes */${artifactBytes.length}`]);

    const expired = dev.mender.downloadLink(artifact!.id, new Date(Date.now() - 1000));
    const u = new URL(uri);
    u.searchParams.set('sig', `${u.searchParams.get('sig')!.slice(0, -2)}AA`);
    const forged = new URL(uri);
    forged.searchParams.set('expire', String(Number(forged.searchParams.get('expire')) + 3600));
    for (const [link, error] of [
      [expired.uri, 'download link expired'],
      [u.toString(), 'download link signature mismatch'],
      [forged.toString(), 'download link signature mismatch'],
    ] as const) {
      const res = await call(link, device);
      expect([res.status, res.json<{ error: string }>().error]).toEqual([403, error]);
    }

    const recorded = dev.mender
      .downloads({ artifactId: artifact!.id })
      .map(({ range, start, end, status, clientCn }) => ({ range, start, end, status, clientCn }));
    const last = artifactBytes.length - 1;
    expect(recorded).toEqual([
      { range: null, start: 0, end: last, status: 200, clientCn: 'fort-dev-1' },
      { range: 'bytes=100-', start: 100, end: last, status: 206, clientCn: 'fort-dev-1' },
      { range: 'bytes=10-19', start: 10, end: 19, status: 206, clientCn: 'fort-dev-1' },
      { range: `bytes=${artifactBytes.length}-`, start: null, end: null, status: 416, clientCn: 'fort-dev-1' },
      { range: null, start: null, end: null, status: 403, clientCn: 'fort-dev-1' },
      { range: null, start: null, end: null, status: 403, clientCn: 'fort-dev-1' },
      { range: null, start: null, end: null, status: 403, clientCn: 'fort-dev-1' },
    ]);
  });

  it('dropAfterBytes cuts the next download; a resume with Range gets the rest (recorded offsets)', async () => {
    const [artifact] = dev.mender.artifacts();
    const before = dev.mender.downloads().length;
    const { uri } = dev.mender.downloadLink(artifact!.id);
    dev.mender.dropAfterBytes(3000);
    const cut = await call(uri, device);
    expect([cut.status, cut.complete, cut.body.length]).toEqual([200, false, 3000]);
    const rest = await call(uri, device, { headers: { range: `bytes=${cut.body.length}-` } });
    expect([rest.status, rest.complete]).toEqual([206, true]);
    expect(Buffer.concat([cut.body, rest.body]).equals(artifactBytes)).toBe(true);
    await dev.mender.waitFor(
      () => dev.mender.downloads()[before + 1]?.complete,
      5000,
      'the resumed download to finish',
    );
    expect(
      dev.mender
        .downloads()
        .slice(before)
        .map(({ start, bytesSent, dropped, complete }) => ({ start, bytesSent, dropped, complete })),
    ).toEqual([
      { start: 0, bytesSent: 3000, dropped: true, complete: false },
      { start: 3000, bytesSent: artifactBytes.length - 3000, dropped: false, complete: true },
    ]);
  });

  it('records status changes with time and the log; abort → 409 on the next status report', async () => {
    const jwt = await acceptedDevice('fort-status');
    const dep = dev.mender.deploy({ artifactName: 'fort-1.0.1', devices: ['fort-status'] });
    const next = await m(NEXT_V2, {
      method: 'POST',
      headers: bearer(jwt),
      json: { device_provides: { artifact_name: 'fort-1.0.0', device_type: 'fort-test' } },
    });
    expect(next.json<{ id: string }>().id).toBe(dep.id);
    const put = (status: string, token = jwt, id = dep.id) =>
      m(deploymentPath(id, 'status'), { method: 'PUT', headers: bearer(token), json: { status } });
    for (const s of ['downloading', 'pause_before_installing', 'installing']) expect((await put(s)).status).toBe(204);
    const bad = await put('installed');
    expect([bad.status, bad.json<{ error: string }>().error]).toEqual([400, expect.stringMatching(/^status: /)]);
    expect((await put('downloading', jwt, 'no-such-deployment')).status).toBe(404);
    // Another device may not report on this deployment.
    const other = await acceptedDevice('fort-status-other');
    expect((await put('success', other)).status).toBe(404);

    const messages = [
      { timestamp: '2026-01-01T00:00:00Z', level: 'info', message: 'installing fort-1.0.1' },
      { timestamp: '2026-01-01T00:00:01Z', level: 'error', message: 'health check failed' },
    ];
    expect(
      (await m(deploymentPath(dep.id, 'log'), { method: 'PUT', headers: bearer(jwt), json: { messages } })).status,
    ).toBe(204);
    expect(
      (
        await m(deploymentPath(dep.id, 'log'), {
          method: 'PUT',
          headers: bearer(jwt),
          json: { messages: [{ level: 'info' }] },
        })
      ).status,
    ).toBe(400);

    const aborted = await call(
      `${dev.apiUrl}/dev/v1/mender/deployments/${dep.id}/abort`,
      { ca: dev.ca },
      { method: 'POST' },
    );
    expect(aborted.status).toBe(200);
    const conflict = await put('pause_before_rebooting');
    expect([conflict.status, conflict.json<{ error: string }>().error]).toEqual([
      409,
      `deployment ${dep.id} was aborted`,
    ]);
    // Not offered any more.
    expect(
      (await m(`${NEXT_V1}?artifact_name=fort-1.0.0&device_type=fort-test`, { headers: bearer(jwt) })).status,
    ).toBe(204);

    const detail = (
      await call(`${dev.apiUrl}/dev/v1/mender/deployments/${dep.id}`, { ca: dev.ca })
    ).json<DeploymentDetail>();
    const mine = detail.devices[0]!;
    expect(mine.history.map((h) => h.status)).toEqual([
      'pending',
      'downloading',
      'pause_before_installing',
      'installing',
      'aborted',
    ]);
    expect(mine.history.every((h) => Math.abs(Date.parse(h.at) - Date.now()) < 60_000)).toBe(true);
    expect(mine.history.map((h) => h.at)).toEqual([...mine.history.map((h) => h.at)].sort());
    expect(mine.log).toEqual(messages);
    expect([detail.status, detail.aborted, mine.artifactId]).toEqual(['finished', true, dev.mender.artifacts()[0]!.id]);
    const again = await call(
      `${dev.apiUrl}/dev/v1/mender/deployments/${dep.id}/abort`,
      { ca: dev.ca },
      { method: 'POST' },
    );
    expect([again.status, again.json<{ code: string }>().code]).toEqual([409, 'FORT_ERR_CONFLICT']);
  });

  it('inventory: PATCH merges, PUT replaces; bad bodies are 400', async () => {
    const jwt = await acceptedDevice('fort-inv');
    const send = (method: 'PATCH' | 'PUT', json: unknown) => m(INVENTORY, { method, headers: bearer(jwt), json });
    expect(
      (
        await send('PATCH', [
          { name: 'device_type', value: 'fort-test' },
          { name: 'cpus', value: 4 },
        ])
      ).status,
    ).toBe(200);
    expect(
      (
        await send('PATCH', [
          { name: 'cpus', value: 8 },
          { name: 'ips', value: ['10.0.0.1', '10.0.0.2'] },
        ])
      ).status,
    ).toBe(200);
    expect(dev.mender.device('fort-inv').inventory).toEqual({
      device_type: 'fort-test',
      cpus: 8,
      ips: ['10.0.0.1', '10.0.0.2'],
    });
    expect((await send('PUT', [{ name: 'artifact_name', value: 'fort-1.0.0' }])).status).toBe(200);
    expect(dev.mender.device('fort-inv').inventory).toEqual({ artifact_name: 'fort-1.0.0' });
    expect((await send('PATCH', { name: 'x', value: 1 })).status).toBe(400);
    expect((await send('PATCH', [{ name: 'x', value: { nested: true } }])).status).toBe(400);
    expect(dev.mender.device('fort-inv').inventory).toEqual({ artifact_name: 'fort-1.0.0' });
  });

  it('setAvailable(false): 503 with Retry-After on every route until set back', async () => {
    const jwt = await acceptedDevice('fort-503');
    dev.mender.setAvailable(false);
    try {
      const { uri } = dev.mender.downloadLink(dev.mender.artifacts()[0]!.id);
      for (const res of [
        await m(AUTH, authRequest(KEYS.ed25519(), { fort_id: 'fort-503' })),
        await m(`${NEXT_V1}?artifact_name=a&device_type=fort-test`, { headers: bearer(jwt) }),
        await call(uri, device),
      ]) {
        expect([res.status, res.headers['retry-after']]).toEqual([503, '30']);
      }
    } finally {
      dev.mender.setAvailable(true);
    }
    expect((await m(`${NEXT_V1}?artifact_name=a&device_type=fort-test`, { headers: bearer(jwt) })).status).toBe(204);
  });

  it('refuse: 429/503 with Retry-After (seconds, HTTP-date, raw) on the routes armed, as often as armed', async () => {
    const jwt = await acceptedDevice('fort-429');
    if (!dev.mender.artifacts().some((a) => a.name === 'fort-1.0.1')) await dev.mender.upload(artifactFile);
    const { uri } = dev.mender.downloadLink(dev.mender.artifacts()[0]!.id);
    const next = () => m(`${NEXT_V1}?artifact_name=a&device_type=fort-test`, { headers: bearer(jwt) });
    const status = () =>
      m(deploymentPath('no-such', 'status'), { method: 'PUT', headers: bearer(jwt), json: { status: 'downloading' } });
    const seen = (res: Res) => [res.status, res.headers['retry-after'], res.json<{ error?: string }>().error];
    const until = new Date(Date.UTC(2030, 0, 1));
    try {
      dev.mender.refuse({ status: 429, retryAfter: 7, routes: ['next'], times: 2 });
      dev.mender.refuse({ status: 503, retryAfter: until, routes: ['download', 'status'] });
      // A route not armed is served; the armed ones are refused in order, before the token is looked at.
      expect((await m(INVENTORY, { method: 'PATCH', headers: bearer(jwt), json: [] })).status).toBe(200);
      for (const res of [await next(), await m(`${NEXT_V1}?artifact_name=a&device_type=fort-test`)])
        expect(seen(res)).toEqual([429, '7', 'too many requests (dev cloud fault injection)']);
      expect((await next()).status).toBe(204);
      const dl = await call(uri, device);
      expect([dl.status, dl.headers['retry-after']]).toEqual([503, 'Tue, 01 Jan 2030 00:00:00 GMT']);
      expect((await status()).status).toBe(404); // the download took that refusal
      dev.mender.refuse({ status: 503, retryAfter: 'whenever' });
      dev.mender.refuse({ status: 429 });
      expect(seen(await status())).toEqual([503, 'whenever', 'service unavailable (dev cloud fault injection)']);
      const bare = await call(uri, device);
      expect([bare.status, bare.headers['retry-after']]).toEqual([429, undefined]);
      dev.mender.refuse({ status: 503, retryAfter: 1, routes: ['auth'], times: 3 });
      dev.mender.clearRefusals();
      expect((await next()).status).toBe(204);
      expect(() => dev.mender.refuse({ status: 503, times: 0 })).toThrow(RangeError);
    } finally {
      dev.mender.clearRefusals();
    }
    expect((await call(uri, device)).status).toBe(200);
  });

  it('goOffline: new connections refused, open ones cut; goOnline: the same port, devices and deployments kept', async () => {
    const jwt = await acceptedDevice('fort-offline');
    if (!dev.mender.artifacts().some((a) => a.name === 'fort-1.0.1')) await dev.mender.upload(artifactFile);
    const dep = dev.mender.deploy({ artifactName: 'fort-1.0.1', devices: ['fort-offline'] });
    const before = {
      devices: dev.mender.devices(),
      deployments: dev.mender.deployments(),
      artifacts: dev.mender.artifacts(),
    };
    // An established mutual-TLS connection, idle.
    const open = connectTls({
      host: '127.0.0.1',
      port: dev.mender.port,
      ca: device.ca,
      cert: device.cert,
      key: device.key,
    });
    await once(open, 'secureConnect');
    const cut = once(open, 'close');
    await dev.mender.goOffline();
    await cut;
    await expect(
      m(`${NEXT_V1}?artifact_name=fort-1.0.0&device_type=fort-test`, { headers: bearer(jwt) }),
    ).rejects.toThrow(/ECONNREFUSED/);
    await dev.mender.goOffline(); // idempotent
    await dev.mender.goOnline();
    await dev.mender.goOnline(); // idempotent
    expect({
      devices: dev.mender.devices(),
      deployments: dev.mender.deployments(),
      artifacts: dev.mender.artifacts(),
    }).toEqual(before);
    // The device's token still works and its deployment is still on offer, at the same URL.
    const next = await m(`${NEXT_V1}?artifact_name=fort-1.0.0&device_type=fort-test`, { headers: bearer(jwt) });
    expect([next.status, next.json<{ id: string }>().id]).toEqual([200, dep.id]);
    dev.mender.abort(dep.id);
  });

  it('a restart serves the stored artifacts again, but forgets devices and their tokens', async () => {
    const jwt = await acceptedDevice('fort-restart');
    const before = dev.mender.artifacts();
    expect(before.length).toBeGreaterThan(0);
    await dev.restart();
    expect(dev.mender.artifacts()).toEqual(before);
    expect(dev.mender.devices()).toEqual([]);
    expect((await m(`${NEXT_V1}?artifact_name=a&device_type=fort-test`, { headers: bearer(jwt) })).status).toBe(401);
    const { uri } = dev.mender.downloadLink(before[0]!.id);
    const res = await call(uri, device, { headers: { range: 'bytes=0-9' } });
    expect([res.status, res.body.equals(readFileSync(before[0]!.file).subarray(0, 10))]).toEqual([206, true]);
  });

  it('`dev-cloud mender` accept, upload, deploy, status, abort against the dev stack index', async () => {
    const cli = (...args: string[]) =>
      run(process.execPath, [join(DIST, 'dev-cloud/cli.js'), 'mender', ...args, '--home', home]);
    const key = KEYS.ecdsa();
    expect((await m(AUTH, authRequest(key, { fort_id: 'fort-cli', mac: '02:00:00:00:00:09' }))).status).toBe(401);
    expect((await cli('accept', '--device', 'fort-cli')).stdout).toMatch(
      /^device [0-9a-f-]{36} \{"fort_id":"fort-cli","mac":"02:00:00:00:00:09"\}: accepted\n$/,
    );
    const jwt = (await m(AUTH, authRequest(key, { fort_id: 'fort-cli', mac: '02:00:00:00:00:09' }))).body.toString(
      'utf8',
    );

    const dir = tempDir('mender-cli');
    writeFileSync(join(dir, 'payload.tgz'), randomBytes(5000));
    const file = join(dir, 'fort-1.0.2.mender');
    execFileSync('mender-artifact', [
      'write',
      'module-image',
      '-T',
      'fort-agent',
      '-n',
      'fort-1.0.2',
      '-t',
      'fort-test',
      '-f',
      join(dir, 'payload.tgz'),
      '-o',
      file,
    ]);
    const up = await cli('upload', file);
    const uploaded = dev.mender.artifacts().find((a) => a.name === 'fort-1.0.2')!;
    expect(up.stdout).toBe(`uploaded fort-1.0.2 (fort-test) id ${uploaded.id}\n`);
    expect(uploaded.size).toBe(readFileSync(file).length);
    await expect(cli('upload', file)).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/^dev-cloud: HTTP 409: artifact fort-1\.0\.2 for fort-test already exists/),
    });

    const deployed = JSON.parse(
      (await cli('deploy', '--artifact', 'fort-1.0.2', '--device', 'fort-cli', '--json')).stdout,
    ) as DeploymentRecord;
    expect([deployed.artifactName, deployed.devices.map((d) => d.deviceId)]).toEqual([
      'fort-1.0.2',
      [dev.mender.device('fort-cli').id],
    ]);
    await expect(cli('deploy', '--artifact', 'fort-9.9.9', '--device', 'fort-cli')).rejects.toMatchObject({
      stderr: 'dev-cloud: HTTP 404: no artifact named fort-9.9.9\n',
    });

    const next = await m(NEXT_V2, {
      method: 'POST',
      headers: bearer(jwt),
      json: { device_provides: { artifact_name: 'fort-1.0.1', device_type: 'fort-test' } },
    });
    expect(next.json<{ id: string }>().id).toBe(deployed.id);
    expect(
      (
        await m(deploymentPath(deployed.id, 'status'), {
          method: 'PUT',
          headers: bearer(jwt),
          json: { status: 'downloading' },
        })
      ).status,
    ).toBe(204);

    const table = (await cli('status', '--device', 'fort-cli')).stdout.split('\n');
    expect(table[0]).toMatch(/^DEPLOYMENT\s+ARTIFACT\s+DEVICE\s+STATUS\s+SINCE\s+HISTORY$/);
    expect(
      table
        .slice(1)
        .filter(Boolean)
        .map((l) => l.split(/\s{2,}/)),
    ).toEqual([[deployed.id, 'fort-1.0.2', 'fort-cli', 'downloading', expect.any(String), 'pending > downloading']]);
    const asJson = JSON.parse((await cli('status', '--device', 'fort-cli', '--json')).stdout) as DeploymentRecord[];
    expect(asJson).toEqual(dev.mender.deployments({ device: 'fort-cli' }));

    expect((await cli('abort', '--deployment', deployed.id)).stdout).toBe(`deployment ${deployed.id} aborted\n`);
    expect(
      (
        await m(deploymentPath(deployed.id, 'status'), {
          method: 'PUT',
          headers: bearer(jwt),
          json: { status: 'installing' },
        })
      ).status,
    ).toBe(409);
    expect((await cli('status', '--device', 'fort-cli')).stdout).toContain('pending > downloading > aborted');
  });
});
