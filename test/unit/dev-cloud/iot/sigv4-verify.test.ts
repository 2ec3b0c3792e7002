import { describe, it, expect } from 'vitest';
import { auth, http } from 'aws-crt';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { presignMqttUrl, sigv4Encode, type AwsCredentials } from '../../../../agent/iot/presign.js';
import { verifyPresignedUrl, type IssuedKey, type VerifyResult } from '../../../../dev-cloud/iot/sigv4-verify.js';

const HOST = 'iot.example.test:8443';
const REGION = 'eu-west-1';
const NOW = new Date('2024-05-01T12:00:00Z');
const AKID = 'AKIDEXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const TOKEN = 'FwoGZXIvYXdzE+/session=token';
const STATIC: AwsCredentials = { accessKeyId: AKID, secretAccessKey: SECRET };
const TEMP: AwsCredentials = { ...STATIC, sessionToken: TOKEN };

const at = (deltaSeconds: number): Date => new Date(NOW.getTime() + deltaSeconds * 1000);
/** What the server sees: req.url and the Host header. */
const received = (url: string): { url: string; host: string } => {
  const u = new URL(url);
  return { url: u.pathname + u.search, host: u.host };
};

function verify(
  url: string,
  o: { keys?: Record<string, IssuedKey>; now?: Date; region?: string; host?: string } = {},
): VerifyResult {
  const keys = o.keys ?? { [AKID]: { secretAccessKey: SECRET } };
  const r = received(url);
  return verifyPresignedUrl({
    url: r.url,
    host: o.host ?? r.host,
    region: o.region ?? REGION,
    now: o.now ?? NOW,
    lookupSecret: (id) => keys[id],
  });
}

function expectReason(res: VerifyResult, reason: string): void {
  expect(res).toEqual({ ok: false, reason });
  // Reasons end up in logs: never a secret, token or signature.
  for (const secret of [SECRET, TOKEN, 'wrong-secret']) expect(reason).not.toContain(secret);
  expect(reason).not.toMatch(/[0-9a-f]{64}/);
}

/** Generic smithy presign (the non-IoT way: token signed in), for malformed-client cases. */
async function smithyUrl(creds: AwsCredentials, service = 'iotdevicegateway'): Promise<string> {
  const signer = new SignatureV4({ service, region: REGION, credentials: creds, sha256: Hash.bind(null, 'sha256') });
  const [hostname, port] = HOST.split(':') as [string, string];
  const req = await signer.presign(
    {
      method: 'GET',
      protocol: 'wss:',
      hostname,
      port: Number(port),
      path: '/mqtt',
      headers: { host: HOST },
      query: {},
    },
    { signingDate: NOW },
  );
  const query = Object.entries(req.query ?? {})
    .map(([k, v]) => `${k}=${sigv4Encode(String(v))}`)
    .join('&');
  return `wss://${HOST}/mqtt?${query}`;
}

const presign = (credentials: AwsCredentials, now = NOW, expiresSeconds?: number): Promise<string> =>
  presignMqttUrl({ endpoint: HOST, region: REGION, credentials, now, expiresSeconds });

describe('verifyPresignedUrl', () => {
  it('accepts a URL presigned with static credentials', async () => {
    expect(verify(await presign(STATIC), { now: at(30) })).toEqual({ ok: true, accessKeyId: AKID });
  });

  it('accepts a URL presigned with temporary credentials', async () => {
    const keys = { [AKID]: { secretAccessKey: SECRET, sessionToken: TOKEN, expiration: at(3600) } };
    expect(verify(await presign(TEMP), { keys })).toEqual({ ok: true, accessKeyId: AKID, sessionToken: TOKEN });
  });

  it('accepts a URL signed by aws-crt exactly as the IoT device SDK does (no X-Amz-Expires)', async () => {
    const signed = await auth.aws_sign_request(
      new http.HttpRequest('GET', '/mqtt', new http.HttpHeaders([['host', HOST]])),
      {
        algorithm: auth.AwsSigningAlgorithm.SigV4,
        signature_type: auth.AwsSignatureType.HttpRequestViaQueryParams,
        provider: auth.AwsCredentialsProvider.newStatic(AKID, SECRET, TOKEN),
        region: REGION,
        service: 'iotdevicegateway',
        date: NOW,
        signed_body_value: auth.AwsSignedBodyValue.EmptySha256,
        omit_session_token: true,
      },
    );
    expect(signed.path).not.toContain('X-Amz-Expires');
    const keys = { [AKID]: { secretAccessKey: SECRET, sessionToken: TOKEN } };
    expect(verify(`wss://${HOST}${signed.path}`, { keys })).toEqual({
      ok: true,
      accessKeyId: AKID,
      sessionToken: TOKEN,
    });
  });

  it('rejects a wrong secret', async () => {
    expectReason(verify(await presign({ ...STATIC, secretAccessKey: 'wrong-secret' })), 'signature mismatch');
  });

  it('rejects an old date (now = +10 min) and a future date beyond the skew', async () => {
    const url = await presign(STATIC, NOW, 3600);
    expectReason(verify(url, { now: at(600) }), 'request date outside ±300 s');
    expectReason(verify(url, { now: at(-600) }), 'request date outside ±300 s');
  });

  it('rejects a URL past its X-Amz-Expires', async () => {
    expectReason(verify(await presign(STATIC, NOW, 60), { now: at(120) }), 'presigned URL expired');
  });

  it('rejects a wrong region', async () => {
    expectReason(
      verify(await presign(STATIC), { region: 'us-east-1' }),
      "credential scope region 'eu-west-1' does not match",
    );
  });

  it('rejects a wrong service', async () => {
    expectReason(
      verify(await smithyUrl(STATIC, 'execute-api')),
      "credential scope service 'execute-api' does not match",
    );
  });

  it('rejects a tampered query', async () => {
    const url = await presign(STATIC);
    expectReason(
      verify(url.replace('X-Amz-Date=20240501T120000Z', 'X-Amz-Date=20240501T120001Z')),
      'signature mismatch',
    );
    expectReason(verify(`${url}&extra=1`), 'signature mismatch');
    expectReason(verify(url.replace('X-Amz-Expires=3600', 'X-Amz-Expires=7200')), 'signature mismatch');
  });

  it('rejects a different Host header', async () => {
    expectReason(verify(await presign(STATIC), { host: 'other.example.test:8443' }), 'signature mismatch');
  });

  it('rejects a security token that was signed in (non-IoT presigning)', async () => {
    const keys = { [AKID]: { secretAccessKey: SECRET, sessionToken: TOKEN } };
    expectReason(verify(await smithyUrl(TEMP), { keys }), 'security token must not be signed');
  });

  it('rejects a temporary key without its token, or with a wrong one', async () => {
    const keys = { [AKID]: { secretAccessKey: SECRET, sessionToken: TOKEN } };
    expectReason(verify(await presign(STATIC), { keys }), 'security token missing');
    expectReason(verify(await presign({ ...TEMP, sessionToken: 'other-token' }), { keys }), 'security token mismatch');
  });

  it('rejects a token on a long-term key', async () => {
    expectReason(verify(await presign(TEMP)), 'security token given for a long-term key');
  });

  it('rejects expired temporary credentials', async () => {
    const keys = { [AKID]: { secretAccessKey: SECRET, sessionToken: TOKEN, expiration: at(-1) } };
    expectReason(verify(await presign(TEMP), { keys }), 'security token expired');
  });

  it('rejects a wrong path', async () => {
    expectReason(verify((await presign(STATIC)).replace('/mqtt?', '/other?')), 'path must be /mqtt');
  });

  it('rejects an unknown key', async () => {
    expectReason(verify(await presign({ ...STATIC, accessKeyId: 'AKIDUNKNOWN' })), 'unknown access key');
  });

  it('rejects missing or malformed parameters', async () => {
    const url = await presign(STATIC);
    expectReason(verify(url.replace(/&X-Amz-Signature=[0-9a-f]+/, '')), 'X-Amz-Signature missing');
    expectReason(
      verify(url.replace('X-Amz-SignedHeaders=host', 'X-Amz-SignedHeaders=host%3Bx-amz-date')),
      "signed header 'x-amz-date' missing from the request",
    );
    expectReason(
      verify(url.replace('X-Amz-SignedHeaders=host', 'X-Amz-SignedHeaders=connection')),
      "signed headers must include 'host'",
    );
    expectReason(
      verify(url.replace('X-Amz-SignedHeaders=host', 'X-Amz-SignedHeaders=host%3Bconnection')),
      'signed headers must be lowercase, sorted and unique',
    );
    expectReason(verify(`${url}&X-Amz-Date=20240501T120000Z`), "duplicate query parameter 'X-Amz-Date'");
  });
});
