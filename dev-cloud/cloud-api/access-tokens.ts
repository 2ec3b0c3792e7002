import { randomBytes } from 'node:crypto';

export interface AccessTokenGrant {
  clientId: string;
  expiresAt: number;
}

/** Opaque bearer tokens for forts, in memory: what a token means is only known here. */
export function createAccessTokens(opts: { lifetimeSeconds: number; now: () => Date }) {
  const tokens = new Map<string, AccessTokenGrant>();
  const prune = (nowMs: number) => {
    for (const [t, g] of tokens) if (g.expiresAt <= nowMs) tokens.delete(t);
  };
  return {
    lifetimeSeconds: opts.lifetimeSeconds,
    issue(clientId: string): string {
      const nowMs = opts.now().getTime();
      prune(nowMs);
      const token = randomBytes(32).toString('base64url');
      tokens.set(token, { clientId, expiresAt: nowMs + opts.lifetimeSeconds * 1000 });
      return token;
    },
    /** The grant of a live token, or undefined for unknown and expired ones. */
    lookup(token: string): AccessTokenGrant | undefined {
      const g = tokens.get(token);
      if (!g) return undefined;
      if (g.expiresAt <= opts.now().getTime()) {
        tokens.delete(token);
        return undefined;
      }
      return g;
    },
    /** Forget one fort's tokens (it was revoked). */
    revokeClient(clientId: string): void {
      for (const [t, g] of tokens) if (g.clientId === clientId) tokens.delete(t);
    },
    /** Test hook: every fort must fetch a new token (exercises the 401 → refresh path). */
    revokeAll(): void {
      tokens.clear();
    },
  };
}
export type AccessTokens = ReturnType<typeof createAccessTokens>;
