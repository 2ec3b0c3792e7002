import { readFileSync } from 'node:fs';
import type { ServerOptions } from 'node:https';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { assertPrivateFileMode } from './files.js';
import { TlsMaterialError } from './errors.js';

/** The oldest TLS the fort's servers speak, at start and after a certificate reload. */
export const TLS_MIN_VERSION = 'TLSv1.2';

export interface TlsMaterial {
  ca?: Buffer;
  cert: Buffer;
  key: Buffer;
  /** Leaf certificate, for logging subject/expiry and refusing expired material at start. */
  leaf: X509Certificate;
}

/**
 * HTTPS options of a trust-zone server: its certificate, and a client certificate required and
 * verified against the installation's root CA only (a peer of any other CA fails the handshake).
 */
export const trustZoneServerTls = (tls: TlsMaterial): ServerOptions => ({
  key: tls.key,
  cert: tls.cert,
  ca: tls.ca,
  requestCert: true,
  rejectUnauthorized: true,
  minVersion: TLS_MIN_VERSION,
});

export interface TlsFilePaths {
  ca?: string;
  cert: string;
  key: string;
}

function readPem(path: string, what: string): Buffer {
  try {
    const buf = readFileSync(path);
    if (!buf.includes('-----BEGIN ')) throw new Error('not PEM');
    return buf;
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new TlsMaterialError(`cannot load ${what} ${path}: ${reason}`, 'FORT_ERR_TLS_MATERIAL', err);
  }
}

/** Load a cert/key/CA triple; the key must be private to this user (0600 or stricter). */
export function loadTlsMaterial(paths: TlsFilePaths, now: Date = new Date()): TlsMaterial {
  assertPrivateFileMode(paths.key);
  const key = readPem(paths.key, 'private key');
  const cert = readPem(paths.cert, 'certificate');
  const ca = paths.ca === undefined ? undefined : readPem(paths.ca, 'CA bundle');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new TlsMaterialError(`cannot parse certificate ${paths.cert}`, 'FORT_ERR_TLS_MATERIAL', err);
  }
  if (new Date(leaf.validTo) < now) {
    throw new TlsMaterialError(`certificate ${paths.cert} expired on ${new Date(leaf.validTo).toISOString()}`);
  }
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(key))) throw new Error('mismatch');
  } catch {
    throw new TlsMaterialError(`private key ${paths.key} does not belong to certificate ${paths.cert}`);
  }
  return ca === undefined ? { cert, key, leaf } : { ca, cert, key, leaf };
}

/** The CN of a peer certificate as Node reports it (string, or array when repeated). */
export function commonName(subject: Record<string, unknown> | undefined): string | undefined {
  const cn = subject?.['CN'];
  return Array.isArray(cn) ? String(cn[0]) : typeof cn === 'string' ? cn : undefined;
}
