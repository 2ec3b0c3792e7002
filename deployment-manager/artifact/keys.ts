import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { ConfigError, FortError } from '../../lib/errors.js';

/** The signature schemes Mender artifacts use (Ed25519 is ours: the Mender tool cannot sign with it). */
export type ArtifactKeyType = 'rsa' | 'ecdsa' | 'ed25519';

/** A public key that may verify `manifest.sig`; `source` names it in messages (file path, "key 2"). */
export interface ArtifactPublicKey {
  readonly type: ArtifactKeyType;
  readonly key: KeyObject;
  readonly source: string;
}

const MIN_RSA_BITS = 2048;
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;

function keyError(source: string, reason: string, cause?: unknown): FortError {
  return new FortError('FORT_ERR_TLS_MATERIAL', `${source}: ${reason}`, { cause });
}

/**
 * Public keys from PEM text: SPKI ("PUBLIC KEY") or PKCS#1 ("RSA PUBLIC KEY"); several blocks
 * give several keys (key rotation). Private keys and certificates are refused, so a private key
 * is never copied to a device by mistake. RSA ≥ 2048 bits, EC only on P-256 (what Mender signs with).
 */
export function parsePublicKeys(pem: string, source: string): ArtifactPublicKey[] {
  const blocks = [...pem.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) throw keyError(source, 'no PEM block found (expected "-----BEGIN PUBLIC KEY-----")');
  return blocks.map((m, i) => {
    const label = m[1] ?? '';
    const where = blocks.length > 1 ? `${source} (block ${i + 1})` : source;
    if (/PRIVATE KEY/.test(label)) {
      throw keyError(where, `is a private key (${label}); give the public key (openssl pkey -in KEY -pubout)`);
    }
    if (label !== 'PUBLIC KEY' && label !== 'RSA PUBLIC KEY') {
      throw keyError(where, `unsupported PEM block "${label}" (expected PUBLIC KEY or RSA PUBLIC KEY)`);
    }
    let key: KeyObject;
    try {
      key = createPublicKey(
        label === 'RSA PUBLIC KEY' ? { key: m[0], format: 'pem', type: 'pkcs1' } : { key: m[0], format: 'pem' },
      );
    } catch (err) {
      throw keyError(where, `not a valid public key: ${(err as Error).message}`, err);
    }
    return { type: keyTypeOf(key, where), key, source: where };
  });
}

function keyTypeOf(key: KeyObject, where: string): ArtifactKeyType {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) throw keyError(where, `RSA key of ${bits} bits is too weak (at least ${MIN_RSA_BITS})`);
      return 'rsa';
    }
    case 'ec':
      if (details.namedCurve !== 'prime256v1')
        throw keyError(
          where,
          `EC key on curve ${details.namedCurve ?? '?'} is not supported (only P-256 / prime256v1)`,
        );
      return 'ecdsa';
    case 'ed25519':
      return 'ed25519';
    default:
      throw keyError(where, `unsupported key type ${key.asymmetricKeyType ?? '?'} (expected RSA, EC P-256 or Ed25519)`);
  }
}

export function loadPublicKeyFile(path: string): ArtifactPublicKey[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw keyError(path, `cannot read the key file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
  }
  return parsePublicKeys(text, path);
}

/**
 * The configured verification keys (updates.artifact_keys): whoever can write one decides what
 * this fort installs, so a key file writable by group or others, or owned by anyone but root or
 * this process's user, is a configuration error (exit 78) naming the file.
 */
export function loadArtifactKeyFiles(paths: readonly string[]): ArtifactPublicKey[] {
  const uid = process.getuid?.() ?? 0;
  for (const path of paths) {
    let st;
    try {
      st = statSync(path);
    } catch (err) {
      throw new ConfigError(path, [
        `artifact key: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      ]);
    }
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    if ((st.mode & 0o022) !== 0)
      throw new ConfigError(path, [`artifact key is writable by group or others (mode ${mode}); chmod go-w ${path}`]);
    if (st.uid !== 0 && st.uid !== uid)
      throw new ConfigError(path, [
        `artifact key is owned by uid ${st.uid}, not root or this process's user (uid ${uid}); chown root ${path}`,
      ]);
  }
  return paths.flatMap((p) => loadPublicKeyFile(p));
}
