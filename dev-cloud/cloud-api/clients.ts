import { readFileSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { TlsMaterialError } from '../../lib/errors.js';

/** A registered fort: its id and the one algorithm its key may sign with. */
export interface RegisteredClient {
  id: string;
  key: KeyObject;
  alg: 'ES256' | 'EdDSA';
}

/**
 * The algorithm follows from the registered key, never from a token header (RFC 8725 §3.1):
 * P-256 → ES256, Ed25519 → EdDSA; anything else is refused at start.
 */
export function algorithmFor(key: KeyObject): RegisteredClient['alg'] | undefined {
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  return undefined;
}

export function loadClients(clients: readonly { id: string; public_key: string }[]): Map<string, RegisteredClient> {
  const out = new Map<string, RegisteredClient>();
  for (const c of clients) {
    if (out.has(c.id)) throw new TlsMaterialError(`cloud_api.clients: client ${c.id} is registered twice`);
    let key: KeyObject;
    try {
      key = createPublicKey(readFileSync(c.public_key));
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new TlsMaterialError(`cannot load public key of client ${c.id} from ${c.public_key}: ${reason}`, 'FORT_ERR_TLS_MATERIAL', err);
    }
    const alg = algorithmFor(key);
    if (!alg) throw new TlsMaterialError(`public key of client ${c.id} (${c.public_key}) is ${key.asymmetricKeyType ?? 'unknown'}; expected an EC P-256 or Ed25519 key`);
    out.set(c.id, { id: c.id, key, alg });
  }
  return out;
}
