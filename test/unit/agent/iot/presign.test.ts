import { describe, it, expect } from 'vitest';
import { auth, http } from 'aws-crt';
import { presignMqttUrl, DEFAULT_EXPIRES_SECONDS } from '../../../../agent/iot/presign.js';

const HOST = 'a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com';
const REGION = 'eu-west-1';
const NOW = new Date('2024-05-01T12:00:00Z');
const CREDS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const TOKEN = 'IQoJb3JpZ2luX2VjE+/token=with/odd+chars==';

const keysOf = (url: string): string[] => [...new URL(url).searchParams.keys()];
const sigOf = (url: string): string | null => new URL(url).searchParams.get('X-Amz-Signature');

/** Reference signature from aws-crt, the signer the official IoT device SDK uses. */
async function crtSignature(host: string, sessionToken?: string): Promise<string> {
  const req = new http.HttpRequest('GET', '/mqtt', new http.HttpHeaders([['host', host]]));
  const signed = await auth.aws_sign_request(req, {
    algorithm: auth.AwsSigningAlgorithm.SigV4,
    signature_type: auth.AwsSignatureType.HttpRequestViaQueryParams,
    provider: auth.AwsCredentialsProvider.newStatic(CREDS.accessKeyId, CREDS.secretAccessKey, sessionToken),
    region: REGION,
    service: 'iotdevicegateway',
    date: NOW,
    signed_body_value: auth.AwsSignedBodyValue.EmptySha256,
    omit_session_token: true,
    // crt omits X-Amz-Expires unless asked; smithy always sets it, and it is signed.
    expiration_in_seconds: DEFAULT_EXPIRES_SECONDS,
  });
  const sig = new URLSearchParams(signed.path.slice(signed.path.indexOf('?') + 1)).get('X-Amz-Signature');
  if (!sig) throw new Error(`no signature in ${signed.path}`);
  return sig;
}

describe('presignMqttUrl', () => {
  it('produces exactly the PROTOCOLS query params', async () => {
    const url = await presignMqttUrl({ endpoint: HOST, region: REGION, credentials: CREDS, now: NOW });
    const u = new URL(url);
    expect(u.protocol).toBe('wss:');
    expect(u.host).toBe(HOST);
    expect(u.pathname).toBe('/mqtt');
    expect(keysOf(url)).toEqual([
      'X-Amz-Algorithm',
      'X-Amz-Credential',
      'X-Amz-Date',
      'X-Amz-Expires',
      'X-Amz-SignedHeaders',
      'X-Amz-Signature',
    ]);
    const p = u.searchParams;
    expect(p.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(p.get('X-Amz-Credential')).toBe('AKIDEXAMPLE/20240501/eu-west-1/iotdevicegateway/aws4_request');
    expect(p.get('X-Amz-Date')).toBe('20240501T120000Z');
    expect(p.get('X-Amz-Expires')).toBe(String(DEFAULT_EXPIRES_SECONDS));
    expect(p.get('X-Amz-SignedHeaders')).toBe('host');
    expect(p.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    expect(url).toContain('X-Amz-Credential=AKIDEXAMPLE%2F20240501%2Feu-west-1%2Fiotdevicegateway%2Faws4_request');
  });

  it('appends the session token after the signature, unsigned', async () => {
    const plain = await presignMqttUrl({ endpoint: HOST, region: REGION, credentials: CREDS, now: NOW });
    const withToken = await presignMqttUrl({
      endpoint: HOST,
      region: REGION,
      credentials: { ...CREDS, sessionToken: TOKEN },
      now: NOW,
    });
    expect(keysOf(withToken).slice(-2)).toEqual(['X-Amz-Signature', 'X-Amz-Security-Token']);
    expect(new URL(withToken).searchParams.get('X-Amz-Security-Token')).toBe(TOKEN);
    expect(withToken).toMatch(/X-Amz-Security-Token=IQoJb3JpZ2luX2VjE%2B%2Ftoken%3Dwith%2Fodd%2Bchars%3D%3D$/);
    expect(sigOf(withToken)).toBe(sigOf(plain));
  });

  it('signs anew with a later time', async () => {
    const a = await presignMqttUrl({ endpoint: HOST, region: REGION, credentials: CREDS, now: NOW });
    const b = await presignMqttUrl({
      endpoint: HOST,
      region: REGION,
      credentials: CREDS,
      now: new Date(NOW.getTime() + 1000),
    });
    expect(sigOf(b)).not.toBe(sigOf(a));
  });

  it('keeps a non-default port and drops :443', async () => {
    const custom = await presignMqttUrl({ endpoint: `${HOST}:8443`, region: REGION, credentials: CREDS, now: NOW });
    expect(custom.startsWith(`wss://${HOST}:8443/mqtt?`)).toBe(true);
    const dflt = await presignMqttUrl({ endpoint: `${HOST}:443`, region: REGION, credentials: CREDS, now: NOW });
    expect(dflt).toBe(await presignMqttUrl({ endpoint: HOST, region: REGION, credentials: CREDS, now: NOW }));
  });

  it('rejects an out-of-range expiry', async () => {
    await expect(
      presignMqttUrl({ endpoint: HOST, region: REGION, credentials: CREDS, expiresSeconds: 604_801 }),
    ).rejects.toThrow(/expiresSeconds/);
  });

  describe('cross-check with aws-crt', () => {
    it('matches for static credentials', async () => {
      const url = await presignMqttUrl({ endpoint: HOST, region: REGION, credentials: CREDS, now: NOW });
      expect(sigOf(url)).toBe(await crtSignature(HOST));
    });

    it('matches with a session token (omit_session_token)', async () => {
      const url = await presignMqttUrl({
        endpoint: HOST,
        region: REGION,
        credentials: { ...CREDS, sessionToken: TOKEN },
        now: NOW,
      });
      expect(sigOf(url)).toBe(await crtSignature(HOST, TOKEN));
    });

    it('matches with a non-default port in the host header', async () => {
      const url = await presignMqttUrl({ endpoint: `${HOST}:8443`, region: REGION, credentials: CREDS, now: NOW });
      expect(sigOf(url)).toBe(await crtSignature(`${HOST}:8443`));
    });
  });
});
