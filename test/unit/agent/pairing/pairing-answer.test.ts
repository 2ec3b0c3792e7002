import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:https';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { pairFort } from '../../../../agent/pairing/pair.js';
import type { PkiPaths } from '../../../../lib/pki/layout.js';
import { clientZonePki } from '../../../helpers/client-api.js';
import { tempDir } from '../../../helpers/fort.js';

/**
 * The cloud's pairing answer is checked like agent.toml before anything is written: its values
 * become the MQTT client id, file names, the URLs the fort calls and the origins its API trusts.
 * A stand-in cloud over real TLS answers what a compromised or buggy one might.
 */

let pki: PkiPaths;
let server: Server;
let answer: unknown;
let cloud: string;

beforeAll(async () => {
  pki = await clientZonePki();
  const cz = pki.clientZone;
  server = createServer({ cert: readFileSync(cz.clientApiCert), key: readFileSync(cz.clientApiKey) }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cloud = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function goodAnswer() {
  const cert = readFileSync(pki.clientZone.clientApiCert, 'utf8');
  return {
    fort_id: 'fort-0a1b2c3d4e',
    tenant: 't1',
    client_id: 'fort-0a1b2c3d4e',
    thing_name: 'fort-0a1b2c3d4e',
    device_certificate: cert,
    device_ca: readFileSync(pki.clientZone.ca, 'utf8'),
    server_ca: readFileSync(pki.clientZone.ca, 'utf8'),
    cloud: { url: 'https://cloud.example', token_endpoint: 'https://cloud.example/oauth/token' },
    user_tokens: {
      issuer: 'https://cloud.example',
      audience: 'fort-client-api',
      jwks_url: 'https://cloud.example/.well-known/jwks.json',
    },
    iot: {
      endpoint: 'iot.example:443',
      region: 'eu-west-1',
      role_alias: 'fort-iot-role',
      credentials_url: 'https://credentials.example',
    },
    update_server: { url: 'https://updates.example' },
    artifact_key: null,
    cors_origins: ['https://hub.example'],
  };
}

const pair = (dir: string) =>
  pairFort(
    { cloud, code: 'ABCD-EFGH' },
    { dir, ca: readFileSync(pki.clientZone.ca), proxy: undefined, timeoutMs: 10_000, now: () => new Date() },
  );

describe('the pairing answer, checked like config', () => {
  it('a well-formed answer is written', async () => {
    answer = goodAnswer();
    const dir = join(tempDir('pair-ok'), 'pairing');
    expect(await pair(dir)).toMatchObject({ fort_id: 'fort-0a1b2c3d4e', cors_origins: ['https://hub.example'] });
    expect(existsSync(`${dir}/identity.json`)).toBe(true);
  });

  it('refuses hostile values, naming every field, and writes nothing', async () => {
    const a = goodAnswer();
    answer = {
      ...a,
      fort_id: '../../etc/fort',
      thing_name: 'fort/#',
      cloud: { ...a.cloud, url: 'http://cloud.example' },
      user_tokens: { ...a.user_tokens, jwks_url: 'file:///etc/passwd' },
      iot: { ...a.iot, endpoint: 'iot.example/path?x' },
      device_certificate: 'not a certificate BEGIN CERTIFICATE',
      cors_origins: ['https://hub.example', '*', 'http://evil.example', 'https://evil.example/path'],
    };
    const dir = join(tempDir('pair-hostile'), 'pairing');
    const err = await pair(dir).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(err).toMatchObject({ code: 'FORT_ERR_PAIRING' });
    for (const field of [
      'fort_id',
      'thing_name',
      'device_certificate',
      'cloud.url',
      'user_tokens.jwks_url',
      'iot.endpoint',
      'cors_origins.1',
      'cors_origins.2',
      'cors_origins.3',
    ])
      expect(err!.message).toContain(`${field}: `);
    expect(err!.message).not.toMatch(/cors_origins\.0|client_id|tenant/);
    expect(existsSync(dir)).toBe(false);
  });
});
