import { createHash, randomBytes } from 'node:crypto';

/** Why a code was refused; the pairing endpoint answers each with its own problem code. */
export type CodeRefusal = 'unknown' | 'used' | 'expired' | 'other_tenant';

export class PairingCodeRefused extends Error {
  constructor(
    readonly reason: CodeRefusal,
    message: string,
  ) {
    super(message);
  }
}

interface CodeRecord {
  tenant: string;
  /** The id the fort gets, when the operator chose it (a fort registered by name beforehand). */
  fortId?: string;
  expiresAt: number;
  usedAt?: number;
}

/** RFC 4648 base32 without padding: no 0/1/8/9, so it reads back unambiguously. */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** 20 random bytes: 160 bits, 32 characters. */
const CODE_BYTES = 20;

function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** As typed: case, spaces and dashes do not matter. */
const normalize = (code: string) => code.toUpperCase().replace(/[\s-]/g, '');
/** Only a hash is kept: a leaked list of codes pairs nothing. */
const digest = (code: string) => createHash('sha256').update(normalize(code)).digest('hex');

/**
 * One-time pairing codes: random, single-use, expiring, bound to a tenant. A used code is
 * remembered, so a second attempt is told "already used". Any attempt uses a code up, even one
 * refused for naming another tenant: a code is never guessed at twice.
 */
export function createPairingCodes(opts: { now: () => Date }) {
  const codes = new Map<string, CodeRecord>();
  // Kept a day past expiry: a late attempt is told "expired", not "unknown".
  const sweep = (t: number) => {
    for (const [k, r] of codes) if (r.expiresAt + 86_400_000 <= t) codes.delete(k);
  };
  return {
    /** A new code, grouped by 4 for people to read (e.g. ABCD-EFGH-…). */
    issue(
      tenant: string,
      ttlSeconds: number,
      fortId?: string,
    ): { code: string; tenant: string; fortId?: string; expiresAt: string } {
      const t = opts.now().getTime();
      sweep(t);
      const code = base32(randomBytes(CODE_BYTES))
        .match(/.{1,4}/g)!
        .join('-');
      const expiresAt = t + ttlSeconds * 1000;
      codes.set(digest(code), { tenant, expiresAt, ...(fortId ? { fortId } : {}) });
      return { code, tenant, ...(fortId ? { fortId } : {}), expiresAt: new Date(expiresAt).toISOString() };
    },
    /** Uses the code up (whatever happens next) and answers its tenant (and fort id); throws PairingCodeRefused. */
    redeem(code: string, expectedTenant?: string): { tenant: string; fortId?: string } {
      const t = opts.now().getTime();
      const r = codes.get(digest(code));
      if (!r) throw new PairingCodeRefused('unknown', 'unknown pairing code');
      if (r.usedAt !== undefined) throw new PairingCodeRefused('used', 'this pairing code was already used');
      if (r.expiresAt <= t)
        throw new PairingCodeRefused('expired', `this pairing code expired at ${new Date(r.expiresAt).toISOString()}`);
      r.usedAt = t;
      if (expectedTenant !== undefined && expectedTenant !== r.tenant) {
        throw new PairingCodeRefused('other_tenant', `this pairing code is for another tenant than ${expectedTenant}`);
      }
      return { tenant: r.tenant, ...(r.fortId ? { fortId: r.fortId } : {}) };
    },
  };
}
export type PairingCodes = ReturnType<typeof createPairingCodes>;
