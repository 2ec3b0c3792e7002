import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cloudApiIssuer, loadDevCloudConfig } from '../../../dev-cloud/config.js';
import { tempDir } from '../../helpers/fort.js';

const BASE = `[server]\nport = 8443\n[server.tls]\ncert = "c.pem"\nkey = "k.pem"\n`;

function load(toml: string) {
  const dir = tempDir('dccfg');
  const file = join(dir, 'dev-cloud.toml');
  writeFileSync(file, BASE + toml);
  return { dir, config: () => loadDevCloudConfig(file) };
}

describe('dev-cloud.toml [cloud_api]', () => {
  it('is optional; with an empty section everything has its default', () => {
    expect(load('').config().cloud_api).toBeUndefined();
    const c = load('[cloud_api]\n').config();
    expect(c.cloud_api).toEqual({
      access_token_seconds: 600,
      user_token_seconds: 3600,
      fort_origins: [],
      clients: [],
    });
    expect(cloudApiIssuer(c)).toBe('https://127.0.0.1:8443');
    expect(cloudApiIssuer({ server: { ...c.server, host: '::1' }, cloud_api: c.cloud_api })).toBe('https://[::1]:8443');
  });

  it('resolves the policy and client key files relative to the config file', () => {
    const { dir, config } = load(
      '[cloud_api]\nissuer = "https://cloud.test/tenant-a"\npolicy = "policy.json"\nfort_origins = ["https://127.0.0.1:9443"]\n[[cloud_api.clients]]\nid = "fort-1"\npublic_key = "keys/fort-1.pem"\n',
    );
    const c = config();
    expect(c.cloud_api).toMatchObject({
      issuer: 'https://cloud.test/tenant-a',
      policy: join(dir, 'policy.json'),
      fort_origins: ['https://127.0.0.1:9443'],
      clients: [{ id: 'fort-1', public_key: join(dir, 'keys/fort-1.pem') }],
    });
    expect(cloudApiIssuer(c)).toBe('https://cloud.test/tenant-a');
  });

  it('names each bad field', () => {
    const { config } = load(
      '[cloud_api]\nissuer = "https://cloud.test/"\naccess_token_seconds = 10\nfort_origins = ["https://127.0.0.1:9443/app", "http://127.0.0.1:1"]\nclients = [{ id = "-x", public_key = "k.pem" }]\n',
    );
    expect(() => config()).toThrow(
      [
        'dev-cloud.toml: cloud_api.issuer: expected an https URL without a trailing slash, got "https://cloud.test/"',
        'dev-cloud.toml: cloud_api.access_token_seconds: expected integer 30..3600, got 10',
        'dev-cloud.toml: cloud_api.fort_origins.0: expected an https origin such as https://127.0.0.1:8443 (no path, no trailing slash), got "https://127.0.0.1:9443/app"',
        'dev-cloud.toml: cloud_api.fort_origins.1: expected an https:// URL, got "http://127.0.0.1:1"',
        'dev-cloud.toml: cloud_api.clients.0.id: expected 1-128 characters of letters, digits, ".", "_", "-" (not starting with a symbol), got "-x"',
      ].join('\n'),
    );
  });
});
