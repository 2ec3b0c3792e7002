import { describe, expect, it } from 'vitest';
import { createAccessTokens } from '../../../../dev-cloud/cloud-api/access-tokens.js';

describe('access tokens', () => {
  it('are opaque, distinct, and unknown once expired or revoked', () => {
    let now = new Date('2026-03-01T12:00:00Z');
    const tokens = createAccessTokens({ lifetimeSeconds: 60, now: () => now });
    const a = tokens.issue('fort-1');
    const b = tokens.issue('fort-2');
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(tokens.lookup(a)).toEqual({ clientId: 'fort-1', expiresAt: now.getTime() + 60_000 });
    expect(tokens.lookup('nope')).toBeUndefined();
    now = new Date(now.getTime() + 59_999);
    expect(tokens.lookup(b)?.clientId).toBe('fort-2');
    now = new Date(now.getTime() + 1);
    expect(tokens.lookup(a)).toBeUndefined();
    const c = tokens.issue('fort-1');
    tokens.revokeAll();
    expect(tokens.lookup(c)).toBeUndefined();
  });
});
