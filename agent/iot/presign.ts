// SigV4-presigned WebSocket URL for AWS IoT Core (see PROTOCOLS.md, "MQTT over WebSocket").
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

/**
 * smithy's presign always emits X-Amz-Expires (it cannot be omitted the way aws-crt does by
 * default). The URL is presigned anew for every connect and IoT enforces a ±5 min clock skew
 * anyway, so the value only has to cover the handshake; smithy's own default of 1 h is kept.
 */
export const DEFAULT_EXPIRES_SECONDS = 3600;
const MAX_EXPIRES_SECONDS = 604_800; // SigV4 presign limit: one week

const SERVICE = 'iotdevicegateway';
const PATH = '/mqtt';

/** RFC 3986 encoding as SigV4 requires (encodeURIComponent leaves !'()* alone). */
export function sigv4Encode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function splitEndpoint(endpoint: string): { hostname: string; port?: number } {
  const m = /^(.+):(\d+)$/.exec(endpoint);
  if (!m || m[1]!.includes(':')) return { hostname: endpoint }; // no port (or bare IPv6)
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid port in endpoint '${endpoint}'`);
  return port === 443 ? { hostname: m[1]! } : { hostname: m[1]!, port };
}

export async function presignMqttUrl(opts: {
  endpoint: string; // host or host:port
  region: string;
  credentials: AwsCredentials;
  now?: Date;
  expiresSeconds?: number;
}): Promise<string> {
  const expiresIn = opts.expiresSeconds ?? DEFAULT_EXPIRES_SECONDS;
  if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_EXPIRES_SECONDS) {
    throw new Error(`expiresSeconds must be an integer in 1..${MAX_EXPIRES_SECONDS}`);
  }
  const { hostname, port } = splitEndpoint(opts.endpoint);
  const host = port === undefined ? hostname : `${hostname}:${port}`; // :443 is implied by wss

  // Key + secret only: IoT wants the session token appended *unsigned* after signing.
  const signer = new SignatureV4({
    service: SERVICE,
    region: opts.region,
    credentials: { accessKeyId: opts.credentials.accessKeyId, secretAccessKey: opts.credentials.secretAccessKey },
    sha256: Hash.bind(null, 'sha256'),
  });
  // No `body` and no x-amz-content-sha256 header: smithy's getPayloadHash then yields the
  // SHA-256 of the empty string (UNSIGNED-PAYLOAD is only used for stream bodies).
  // `host` is the only header, hence the only one signed (smithy's signableHeaders merely
  // re-allows normally unsignable headers; it is not an allow-list).
  const signed = await signer.presign(
    { method: 'GET', protocol: 'wss:', hostname, port, path: PATH, headers: { host }, query: {} },
    { signingDate: opts.now ?? new Date(), expiresIn, signableHeaders: new Set(['host']) },
  );

  const q = signed.query ?? {};
  const str = (k: string): string => {
    const v = q[k];
    if (typeof v !== 'string') throw new Error(`presign produced no ${k}`);
    return v;
  };
  const keys = [
    'X-Amz-Algorithm',
    'X-Amz-Credential',
    'X-Amz-Date',
    'X-Amz-Expires',
    'X-Amz-SignedHeaders',
    'X-Amz-Signature',
  ];
  // Anything else would be signed in but dropped from the URL: fail loudly instead.
  const extra = Object.keys(q).filter((k) => !keys.includes(k));
  if (extra.length > 0) throw new Error(`presign produced unexpected query params: ${extra.join(', ')}`);
  const parts = keys.map((k) => `${k}=${sigv4Encode(str(k))}`);
  if (opts.credentials.sessionToken) parts.push(`X-Amz-Security-Token=${sigv4Encode(opts.credentials.sessionToken)}`);
  return `wss://${host}${PATH}?${parts.join('&')}`;
}
