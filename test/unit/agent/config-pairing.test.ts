import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAgentConfig, UNPAIRED } from '../../../agent/config.js';
import { writeIdentity, type PairingAnswer } from '../../../agent/pairing/identity.js';
import { ConfigError } from '../../../lib/errors.js';
import { tempDir } from '../../helpers/fort.js';
import { VALID } from '../../helpers/agent-configs.js';

const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const answer: PairingAnswer = {
  fort_id: 'fort-abc',
  tenant: 't9',
  client_id: 'fort-abc',
  thing_name: 'fort-abc',
  device_certificate: CERT,
  device_ca: CERT,
  server_ca: CERT,
  cloud: { url: 'https://cloud.example', token_endpoint: 'https://cloud.example/oauth/token' },
  user_tokens: {
    issuer: 'https://cloud.example',
    audience: 'fort-client-api',
    jwks_url: 'https://cloud.example/.well-known/jwks.json',
  },
  iot: {
    endpoint: 'iot.example:443',
    region: 'eu-west-1',
    role_alias: 'fort-role',
    credentials_url: 'https://creds.example',
  },
  update_server: null,
  artifact_key: null,
  cors_origins: ['https://cloud.example'],
};

function installation(toml: string) {
  const dir = tempDir('cfgpair');
  mkdirSync(join(dir, 'data'), { recursive: true });
  const file = join(dir, 'agent.toml');
  writeFileSync(file, toml);
  return { dir, file, pairingDir: join(dir, 'data', 'pairing') };
}
const withoutId = VALID.replace('[fort]\nid = "fort-1"\n', '');

describe('agent config with pairing', () => {
  it('without [fort] id and unpaired: runs as "unpaired", no links', () => {
    const { file, pairingDir } = installation(withoutId);
    const c = loadAgentConfig(file);
    expect(c.fort.id).toBe(UNPAIRED);
    expect(c.identity).toBeUndefined();
    expect(c.pairing.dir).toBe(pairingDir);
    expect([c.iot, c.cloud, c.api.auth]).toEqual([undefined, undefined, undefined]);
  });

  it('paired: the identity fills [fort] id, [iot], [cloud], [api.auth] and the CORS origins with the files beside it', () => {
    const { file, pairingDir } = installation(withoutId);
    writeIdentity(
      pairingDir,
      answer,
      { jwtKeyPem: 'jwt', deviceKeyPem: 'dev' },
      'https://cloud.example',
      new Date('2026-11-23T12:00:00Z'),
    );
    const c = loadAgentConfig(file);
    expect(c.fort.id).toBe('fort-abc');
    expect(c.iot).toMatchObject({
      endpoint: 'iot.example:443',
      region: 'eu-west-1',
      thing_name: 'fort-abc',
      ca: join(pairingDir, 'server-ca.pem'),
      keepalive_seconds: 300,
    });
    expect(c.iot?.credentials).toEqual({
      source: 'provider',
      url: 'https://creds.example',
      role_alias: 'fort-role',
      refresh_before_seconds: 300,
      timeout_seconds: 10,
      tls: {
        ca: join(pairingDir, 'server-ca.pem'),
        cert: join(pairingDir, 'device.pem'),
        key: join(pairingDir, 'device.key'),
      },
    });
    expect(c.cloud).toMatchObject({
      url: 'https://cloud.example',
      client_id: 'fort-abc',
      private_key: join(pairingDir, 'jwt.key'),
      ca: join(pairingDir, 'server-ca.pem'),
    });
    expect(c.api.auth).toMatchObject({
      issuer: 'https://cloud.example',
      tenant: 't9',
      jwks_url: 'https://cloud.example/.well-known/jwks.json',
    });
    expect(c.api.cors_origins).toEqual(['https://cloud.example']);
  });

  it('what agent.toml says wins over the identity', () => {
    const { file, pairingDir } = installation(
      `${VALID}\n[cloud]\nurl = "https://other.example"\nprivate_key = "k.pem"\n`,
    );
    writeIdentity(pairingDir, answer, { jwtKeyPem: 'jwt', deviceKeyPem: 'dev' }, 'https://cloud.example', new Date());
    const c = loadAgentConfig(file);
    expect(c.fort.id).toBe('fort-1');
    expect(c.cloud?.url).toBe('https://other.example');
    expect(c.iot?.endpoint).toBe('iot.example:443');
  });

  it('refuses to start on an unreadable identity, naming the file', () => {
    const { file, pairingDir } = installation(withoutId);
    mkdirSync(pairingDir);
    writeFileSync(join(pairingDir, 'identity.json'), '{"fort_id": 1');
    expect(() => loadAgentConfig(file)).toThrow(ConfigError);
    expect(() => loadAgentConfig(file)).toThrow(`${pairingDir}/identity.json is unreadable`);
  });
});
