import { readFileSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { TlsMaterialError } from '../../lib/errors.js';
import { acceptedAlgorithm, type SigningAlgorithm } from './jws-algorithm.js';

/** A registered fort: its id and the one algorithm its key may sign with. */
export interface RegisteredClient {
  id: string;
  key: KeyObject;
  alg: SigningAlgorithm;
  /** The key it rotated away from, still accepted during the overlap (`until`). */
  previous?: { key: KeyObject; alg: SigningAlgorithm; until: Date };
}

/** Registered forts by client id: those of the config and, with pairing, the paired ones. */
export interface ClientLookup {
  get(id: string): RegisteredClient | undefined;
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
      throw new TlsMaterialError(
        `cannot load public key of client ${c.id} from ${c.public_key}: ${reason}`,
        'FORT_ERR_TLS_MATERIAL',
        err,
      );
    }
    // The algorithm follows from the registered key; other key types are refused at start.
    const alg = acceptedAlgorithm(key);
    if (!alg)
      throw new TlsMaterialError(
        `public key of client ${c.id} (${c.public_key}) is ${key.asymmetricKeyType ?? 'unknown'}; expected an EC P-256 or Ed25519 key`,
      );
    out.set(c.id, { id: c.id, key, alg });
  }
  return out;
}
