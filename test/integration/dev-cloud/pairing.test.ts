import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { eventually, testPki } from '../../helpers/fort.js';
import { cloudRequest, testDevCloud, type CloudResponse, type TestDevCloud } from '../../helpers/dev-cloud.js';
import { ASSERTION_TYPE } from '../../../dev-cloud/cloud-api/token-route.js';
import { createCsr } from '../../../lib/pki/certs.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';

interface Identity {
  fort_id: string;
  tenant: string;
  client_id: string;
  thing_name: string;
  device_certificate: string;
  device_ca: string;
  server_ca: string;
  cloud: { url: string; token_endpoint: string };
  iot: { endpoint: string; region: string; role_alias: string; credentials_url: string } | null;
  update_server: { url: string } | null;
  cors_origins: string[];
}

describe('dev cloud: pairing (one-time code → fort identity)', () => {
  let pki: PkiPaths;
  let dev: TestDevCloud;
  beforeAll(async () => {
    pki = await testPki();
    dev = await testDevCloud(pki, { pairingAttemptsPerMinute: 1000 });
  });
  afterAll(async () => {
    await dev.stop();
  });

  const call = (method: string, path: string, opts: Parameters<typeof cloudRequest>[4] = {}) =>
    cloudRequest(dev.apiUrl, dev.ca, method, path, opts);
  const json = <T = Record<string, unknown>>(r: CloudResponse) => r.json() as T;
  const newCode = async (tenant = 't1', ttl?: number) => {
    const res = await call('POST', '/dev/v1/pairing-codes', { json: { tenant, ...(ttl ? { ttl_seconds: ttl } : {}) } });
    expect(res.status).toBe(201);
    return json<{ code: string; expiresAt: string }>(res).code;
  };
  /** The fort's side: its own keys; only the public halves are sent. */
  const fortKeys = async () => {
    const jwt = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const device = await createCsr('whatever-the-fort-asks');
    return { jwt, device, jwtPublicPem: jwt.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
  };
  const pair = async (code: string, keys: Awaited<ReturnType<typeof fortKeys>>, tenant?: string) =>
    call('POST', '/api/v1/pairing', {
      json: { code, jwt_public_key: keys.jwtPublicPem, csr: keys.device.csrPem, ...(tenant ? { tenant } : {}) },
    });
  const tokenFor = async (id: string, key: KeyObject) => {
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({
      iss: id,
      sub: id,
      aud: dev.tokenUrl,
      iat: now,
      exp: now + 60,
      jti: `pair-${now}-${Math.random()}`,
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
      .sign(key);
    return call('POST', '/oauth/token', {
      form: { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion },
    });
  };

  it('pairs with a fresh code: a new fort id, a device certificate for its own key, the endpoints, and a working token endpoint', async () => {
    const code = await newCode();
    expect(code.replace(/-/g, '')).toMatch(/^[A-Z2-7]{32}$/); // 160 random bits
    const keys = await fortKeys();
    const res = await pair(code, keys, 't1');
    expect(res.status).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const id = json<Identity>(res);
    expect(id.fort_id).toMatch(/^fort-[0-9a-f]{10}$/);
    expect(id).toMatchObject({
      tenant: 't1',
      client_id: id.fort_id,
      thing_name: id.fort_id,
      cloud: { url: dev.issuer, token_endpoint: dev.tokenUrl },
      cors_origins: [dev.apiUrl],
    });
    expect(id.iot).toEqual({
      endpoint: dev.endpoint,
      region: 'eu-west-1',
      role_alias: 'fort-iot-role',
      credentials_url: dev.providerUrl,
    });
    expect(id.update_server?.url).toBe(dev.mender.url);
    // The certificate names the id the cloud chose, for the key only the fort holds.
    const cert = new X509Certificate(id.device_certificate);
    expect(cert.subject).toBe(`CN=${id.fort_id}`);
    expect(cert.verify(new X509Certificate(id.device_ca).publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(keys.device.keyPem))).toBe(true);
    expect(id.server_ca).toContain('BEGIN CERTIFICATE');
    expect(JSON.stringify(id)).not.toContain('PRIVATE KEY');
    expect(dev.pairing.registry.get(id.fort_id)).toMatchObject({ tenant: 't1', deviceCertSerial: cert.serialNumber });

    expect((await tokenFor(id.fort_id, keys.jwt.privateKey)).status).toBe(200);
    // Another key under its name is refused.
    expect((await tokenFor(id.fort_id, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)).status).toBe(
      401,
    );
  });

  it('refuses a used code, an unknown one and one of another tenant, each with its own problem code and no new fort', async () => {
    const code = await newCode('t1');
    expect((await pair(code, await fortKeys())).status).toBe(201);
    const forts = dev.pairing.registry.list().length;
    const again = await pair(code, await fortKeys());
    expect(again.status).toBe(403);
    expect(json(again)).toMatchObject({ code: 'FORT_ERR_PAIRING_CODE_USED' });
    const unknown = await pair('AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH', await fortKeys());
    expect(json(unknown)).toMatchObject({ status: 403, code: 'FORT_ERR_PAIRING_CODE_UNKNOWN' });
    const other = await pair(await newCode('t2'), await fortKeys(), 't1');
    expect(json(other)).toMatchObject({ status: 403, code: 'FORT_ERR_PAIRING_CODE_TENANT' });
    expect(dev.pairing.registry.list()).toHaveLength(forts);
  });

  it('gives the fort the id its code was issued for; that id pairs again only once revoked', async () => {
    const issue = async () =>
      json<{ code: string; fortId: string }>(
        await call('POST', '/dev/v1/pairing-codes', { json: { tenant: 't1', fort_id: 'fort-named-1' } }),
      );
    const first = await issue();
    expect(first.fortId).toBe('fort-named-1');
    const keys = await fortKeys();
    const res = await pair(first.code, keys);
    expect(json<Identity>(res)).toMatchObject({ fort_id: 'fort-named-1', thing_name: 'fort-named-1' });
    expect(new X509Certificate(json<Identity>(res).device_certificate).subject).toBe('CN=fort-named-1');
    const taken = await pair((await issue()).code, await fortKeys());
    expect(json(taken)).toMatchObject({ status: 409, code: 'FORT_ERR_CONFLICT' });
    expect((await call('POST', '/dev/v1/forts/fort-named-1/revoke')).status).toBe(200);
    const again = await fortKeys();
    expect((await pair((await issue()).code, again)).status).toBe(201);
    expect((await tokenFor('fort-named-1', again.jwt.privateKey)).status).toBe(200);
    expect((await tokenFor('fort-named-1', keys.jwt.privateKey)).status).toBe(401);
  });

  it('refuses malformed keys without using the code up: the same code then pairs', async () => {
    const code = await newCode();
    const keys = await fortKeys();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    const badKey = await call('POST', '/api/v1/pairing', {
      json: { code, jwt_public_key: rsa, csr: keys.device.csrPem },
    });
    expect(json(badKey)).toMatchObject({
      status: 400,
      code: 'FORT_ERR_BAD_REQUEST',
      detail: expect.stringContaining('P-256'),
    });
    const badCsr = await call('POST', '/api/v1/pairing', {
      json: {
        code,
        jwt_public_key: keys.jwtPublicPem,
        csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
      },
    });
    expect(json(badCsr)).toMatchObject({ status: 400, code: 'FORT_ERR_BAD_REQUEST' });
    const missing = await call('POST', '/api/v1/pairing', { json: { code } });
    expect(json(missing)).toMatchObject({ status: 400, detail: expect.stringContaining('jwt_public_key') });
    expect((await pair(code, keys)).status).toBe(201);
  });

  it('a revoked fort gets no token; paired forts survive a restart of the cloud', async () => {
    const keys = await fortKeys();
    const id = json<Identity>(await pair(await newCode(), keys)).fort_id;
    const revoked = await call('POST', `/dev/v1/forts/${id}/revoke`);
    expect(revoked.status).toBe(200);
    expect(json(revoked)).toMatchObject({ id, revokedAt: expect.any(String) });
    expect((await tokenFor(id, keys.jwt.privateKey)).status).toBe(401);

    const kept = await fortKeys();
    const keptId = json<Identity>(await pair(await newCode(), kept)).fort_id;
    await dev.restart();
    expect((await tokenFor(keptId, kept.jwt.privateKey)).status).toBe(200);
    expect((await tokenFor(id, keys.jwt.privateKey)).status).toBe(401);
    expect((await call('POST', '/dev/v1/forts/fort-none/revoke')).status).toBe(404);
  });
});

describe('dev cloud: pairing attempts are rate-limited per source', () => {
  it('answers 429 once a source has made its attempts for the minute', async () => {
    const pki = await testPki();
    const dev = await testDevCloud(pki, { pairingAttemptsPerMinute: 3 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await cloudRequest(dev.apiUrl, dev.ca, 'POST', '/api/v1/pairing', {
          json: { code: `GUESS-${i}`, jwt_public_key: 'x', csr: 'y' },
        });
        statuses.push(res.status);
        if (res.status === 429) expect(res.json()).toMatchObject({ code: 'FORT_ERR_RATE_LIMITED' });
      }
      expect(statuses).toEqual([400, 400, 400, 429, 429]);
    } finally {
      await dev.stop();
    }
  });
});

describe('dev cloud: key rotation of a paired fort', () => {
  it('accepts the new keys at once and the old ones only until the overlap ends', async () => {
    const pki = await testPki();
    const dev = await testDevCloud(pki, { keyOverlapSeconds: 2 });
    try {
      const call = (method: string, path: string, opts: Parameters<typeof cloudRequest>[4] = {}) =>
        cloudRequest(dev.apiUrl, dev.ca, method, path, opts);
      const keys = () => ({ jwt: generateKeyPairSync('ec', { namedCurve: 'P-256' }) });
      const token = async (id: string, key: KeyObject) => {
        const now = Math.floor(Date.now() / 1000);
        const assertion = await new SignJWT({
          iss: id,
          sub: id,
          aud: dev.tokenUrl,
          iat: now,
          exp: now + 60,
          jti: `rot-${now}-${Math.random()}`,
        })
          .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
          .sign(key);
        return call('POST', '/oauth/token', {
          form: {
            grant_type: 'client_credentials',
            client_assertion_type: ASSERTION_TYPE,
            client_assertion: assertion,
          },
        });
      };
      const old = keys();
      const code = dev.pairing.codes.issue('t1', 600).code;
      const paired = await call('POST', '/api/v1/pairing', {
        json: {
          code,
          jwt_public_key: old.jwt.publicKey.export({ type: 'spki', format: 'pem' }),
          csr: (await createCsr('x')).csrPem,
        },
      });
      const id = (paired.json() as Identity).fort_id;
      const oldSerial = new X509Certificate((paired.json() as Identity).device_certificate).serialNumber;
      const bearer = ((await token(id, old.jwt.privateKey)).json() as { access_token: string }).access_token;

      const next = keys();
      const csr = await createCsr('x');
      const unauth = await call('POST', '/api/v1/rotate', {
        json: { jwt_public_key: next.jwt.publicKey.export({ type: 'spki', format: 'pem' }), csr: csr.csrPem },
      });
      expect(unauth.status).toBe(401);
      const rotated = await call('POST', '/api/v1/rotate', {
        headers: { authorization: `Bearer ${bearer}` },
        json: { jwt_public_key: next.jwt.publicKey.export({ type: 'spki', format: 'pem' }), csr: csr.csrPem },
      });
      expect(rotated.status).toBe(200);
      const cert = new X509Certificate((rotated.json() as { device_certificate: string }).device_certificate);
      expect(cert.subject).toBe(`CN=${id}`);
      expect(cert.checkPrivateKey(createPrivateKey(csr.keyPem))).toBe(true);

      expect((await token(id, next.jwt.privateKey)).status).toBe(200);
      expect((await token(id, old.jwt.privateKey)).status).toBe(200); // overlap
      expect(dev.pairing.registry.isRevokedSerial(oldSerial)).toBe(false);
      await eventually(
        async () => ((await token(id, old.jwt.privateKey)).status === 401 ? true : undefined),
        10_000,
        'the old key refused after the overlap',
      );
      expect(dev.pairing.registry.isRevokedSerial(oldSerial)).toBe(true);
      expect(dev.pairing.registry.isRevokedSerial(cert.serialNumber)).toBe(false);
      expect((await token(id, next.jwt.privateKey)).status).toBe(200);
    } finally {
      await dev.stop();
    }
  });
});
