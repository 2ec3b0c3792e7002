// Independent SigV4 presigned-URL check for the IoT WebSocket stand-in (node:crypto only; it
// deliberately shares no code with agent/iot/presign.ts so a bug on one side shows up in tests).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export type VerifyResult = { ok: true; accessKeyId: string; sessionToken?: string } | { ok: false; reason: string };

export interface IssuedKey {
  secretAccessKey: string;
  /** For temporary credentials: the token that must accompany the key. */
  sessionToken?: string;
  expiration?: Date;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const TOKEN = 'X-Amz-Security-Token';
const SIGNATURE = 'X-Amz-Signature';
const REQUIRED = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-SignedHeaders', SIGNATURE] as const;
const MAX_EXPIRES = 604_800;

const fail = (reason: string): VerifyResult => ({ ok: false, reason });
// Echo client-supplied values in reasons only when they look harmless.
const show = (s: string): string => (/^[A-Za-z0-9._-]{1,64}$/.test(s) ? s : '?');
const rfc3986 = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const sha256hex = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

function parseQuery(raw: string): Map<string, string> | string {
  const params = new Map<string, string>();
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    let key: string;
    let value: string;
    try {
      // No '+'-as-space: SigV4 clients percent-encode everything outside the unreserved set.
      key = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
      value = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
    } catch {
      return 'malformed query encoding';
    }
    if (params.has(key)) return `duplicate query parameter '${show(key)}'`;
    params.set(key, value);
  }
  return params;
}

function parseAmzDate(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, se));
  // Reject overflowing fields such as month 13 that Date.UTC would silently roll over.
  return date.toISOString().replace(/[-:]|\.\d{3}/g, '') === s ? date : undefined;
}

function canonicalQuery(params: Map<string, string>, omit: ReadonlySet<string>): string {
  return [...params]
    .filter(([k]) => !omit.has(k))
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function computeSignature(a: {
  secret: string;
  headers: [string, string][];
  query: string;
  amzDate: string;
  scope: string;
  shortDate: string;
  region: string;
  service: string;
}): Buffer {
  const canonicalHeaders = a.headers.map(([k, v]) => `${k}:${v.trim().replace(/\s+/g, ' ')}\n`).join('');
  const signedHeaders = a.headers.map(([k]) => k).join(';');
  const canonicalRequest = ['GET', '/mqtt', a.query, canonicalHeaders, signedHeaders, EMPTY_SHA256].join('\n');
  const stringToSign = [ALGORITHM, a.amzDate, a.scope, sha256hex(canonicalRequest)].join('\n');
  let key: Buffer = hmac(`AWS4${a.secret}`, a.shortDate);
  for (const part of [a.region, a.service, 'aws4_request']) key = hmac(key, part);
  return hmac(key, stringToSign);
}

function sameString(a: string, b: string): boolean {
  // Hash first so timingSafeEqual gets equal lengths and the length does not leak.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

export function verifyPresignedUrl(opts: {
  url: string; // path + query as received, e.g. req.url
  host: string; // Host header
  /** Every request header, for clients that sign more than host (the AWS SDK signs `connection;host`). */
  headers?: Record<string, string | string[] | undefined>;
  region: string;
  service?: string;
  now: Date;
  maxSkewSeconds?: number;
  lookupSecret: (accessKeyId: string) => IssuedKey | undefined;
}): VerifyResult {
  const service = opts.service ?? 'iotdevicegateway';
  const maxSkew = opts.maxSkewSeconds ?? 300;
  const q = opts.url.indexOf('?');
  if ((q < 0 ? opts.url : opts.url.slice(0, q)) !== '/mqtt') return fail('path must be /mqtt');
  const params = parseQuery(q < 0 ? '' : opts.url.slice(q + 1));
  if (typeof params === 'string') return fail(params);
  for (const name of REQUIRED) if (!params.get(name)) return fail(`${name} missing`);
  const get = (k: string): string => params.get(k) ?? '';

  if (get('X-Amz-Algorithm') !== ALGORITHM) return fail(`unsupported algorithm '${show(get('X-Amz-Algorithm'))}'`);
  // AWS accepts any signed header set that includes host; the values come from the request.
  const signedNames = get('X-Amz-SignedHeaders').split(';');
  if (!signedNames.includes('host')) return fail("signed headers must include 'host'");
  if (signedNames.some((n, i) => !/^[a-z0-9-]+$/.test(n) || (i > 0 && n <= signedNames[i - 1]!)))
    return fail('signed headers must be lowercase, sorted and unique');
  const headerValue = (name: string): string | undefined => {
    if (name === 'host') return opts.host;
    const v = opts.headers?.[name];
    return Array.isArray(v) ? v.join(',') : v;
  };
  const signedHeaders: [string, string][] = [];
  for (const n of signedNames) {
    const v = headerValue(n);
    if (v === undefined) return fail(`signed header '${show(n)}' missing from the request`);
    signedHeaders.push([n, v]);
  }
  const amzDate = get('X-Amz-Date');
  const date = parseAmzDate(amzDate);
  if (!date) return fail('malformed X-Amz-Date');
  const cred = get('X-Amz-Credential').split('/');
  if (cred.length !== 5 || cred[4] !== 'aws4_request' || !cred[0]) return fail('malformed credential scope');
  const [accessKeyId, shortDate, region, credService] = cred as [string, string, string, string, string];
  if (shortDate !== amzDate.slice(0, 8)) return fail('credential scope date does not match X-Amz-Date');
  if (region !== opts.region) return fail(`credential scope region '${show(region)}' does not match`);
  if (credService !== service) return fail(`credential scope service '${show(credService)}' does not match`);

  const now = opts.now.getTime();
  if (Math.abs(now - date.getTime()) > maxSkew * 1000) return fail(`request date outside ±${maxSkew} s`);
  const expires = params.get('X-Amz-Expires');
  if (expires !== undefined) {
    if (!/^\d{1,6}$/.test(expires) || Number(expires) < 1 || Number(expires) > MAX_EXPIRES)
      return fail('malformed X-Amz-Expires');
    if (date.getTime() + Number(expires) * 1000 < now) return fail('presigned URL expired');
  }

  const issued = opts.lookupSecret(accessKeyId);
  if (!issued) return fail('unknown access key');
  const token = params.get(TOKEN);
  if (issued.sessionToken !== undefined) {
    if (!token) return fail('security token missing');
    if (!sameString(token, issued.sessionToken)) return fail('security token mismatch');
  } else if (token !== undefined) {
    return fail('security token given for a long-term key');
  }
  if (issued.expiration && issued.expiration.getTime() <= now) {
    return fail(issued.sessionToken !== undefined ? 'security token expired' : 'access key expired');
  }

  const given = get(SIGNATURE);
  if (!/^[0-9a-f]{64}$/.test(given)) return fail('malformed signature');
  const givenBuf = Buffer.from(given, 'hex');
  const base = {
    secret: issued.secretAccessKey,
    headers: signedHeaders,
    amzDate,
    scope: cred.slice(1).join('/'),
    shortDate,
    region,
    service,
  };
  // IoT's rule: the token is appended after signing and is not part of the canonical query.
  const expected = computeSignature({ ...base, query: canonicalQuery(params, new Set([SIGNATURE, TOKEN])) });
  if (!timingSafeEqual(expected, givenBuf)) {
    // Give a precise reason for the common mistake of generic (non-IoT) presigning.
    const withToken =
      token !== undefined && computeSignature({ ...base, query: canonicalQuery(params, new Set([SIGNATURE])) });
    if (withToken && timingSafeEqual(withToken, givenBuf)) return fail('security token must not be signed');
    return fail('signature mismatch');
  }
  return token === undefined ? { ok: true, accessKeyId } : { ok: true, accessKeyId, sessionToken: token };
}
