import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { AuthorizationUnavailableError, createAuthorizer } from '../../../../agent/cloud/authorizer.js';
import type { AuthorizeAnswer, AuthorizeQuestion } from '../../../../agent/cloud/client.js';

const log = pino({ level: 'silent' });
const q = (over: Partial<AuthorizeQuestion> = {}): AuthorizeQuestion => ({
  user: 'alice',
  tenant: 't1',
  action: 'app.read',
  resource: 'sales',
  ...over,
});

function rig(answer: (q: AuthorizeQuestion) => Promise<AuthorizeAnswer>, maxEntries = 100) {
  let t = 1_000_000;
  const asked: AuthorizeQuestion[] = [];
  const authz = createAuthorizer({
    ask: (x) => {
      asked.push(x);
      return answer(x);
    },
    maxEntries,
    log,
    now: () => t,
  });
  return { authz, asked, advance: (ms: number) => (t += ms) };
}

describe('authorizer (cloud decisions, cached, fail closed)', () => {
  it('caches a decision for its TTL, then asks again', async () => {
    const { authz, asked, advance } = rig(async () => ({ allow: true, ttl: 60 }));
    expect(await authz.decide(q())).toEqual({ allow: true, source: 'cloud' });
    advance(59_000);
    expect(await authz.decide(q())).toEqual({ allow: true, source: 'cache' });
    advance(2000);
    expect(await authz.decide(q())).toEqual({ allow: true, source: 'cloud' });
    expect(asked).toHaveLength(2);
  });

  it('keys by user, tenant, action and resource', async () => {
    const { authz, asked } = rig(async (x) => ({ allow: x.user === 'alice', ttl: 60 }));
    await authz.decide(q());
    await authz.decide(q({ user: 'bob' }));
    await authz.decide(q({ action: 'app.reload' }));
    await authz.decide(q({ resource: 'hr' }));
    await authz.decide(q({ tenant: 't2' }));
    expect(asked).toHaveLength(5);
    expect((await authz.decide(q({ user: 'bob' }))).allow).toBe(false);
  });

  it('coalesces identical questions in flight into one cloud request', async () => {
    let release!: (a: AuthorizeAnswer) => void;
    const { authz, asked } = rig(() => new Promise((r) => (release = r)));
    const all = Promise.all([authz.decide(q()), authz.decide(q()), authz.decide(q())]);
    release({ allow: true, ttl: 30 });
    expect((await all).map((d) => d.allow)).toEqual([true, true, true]);
    expect(asked).toHaveLength(1);
    expect(authz.stats().coalesced).toBe(2);
  });

  it('fails closed: cloud down and no fresh decision → error, never an allow', async () => {
    let up = true;
    const { authz, advance } = rig(async () => {
      if (!up) throw new Error('ECONNREFUSED');
      return { allow: true, ttl: 10 };
    });
    await authz.decide(q());
    up = false;
    expect(await authz.decide(q())).toEqual({ allow: true, source: 'cache' }); // fresh: served
    advance(11_000);
    await expect(authz.decide(q())).rejects.toBeInstanceOf(AuthorizationUnavailableError); // stale: not reused
    await expect(authz.decide(q({ user: 'carol' }))).rejects.toThrow(/no fresh decision/);
  });

  it('does not cache ttl 0 and stays within its size bound (LRU)', async () => {
    const { authz, asked } = rig(async (x) => ({ allow: true, ttl: x.resource === 'nocache' ? 0 : 60 }), 2);
    await authz.decide(q({ resource: 'nocache' }));
    await authz.decide(q({ resource: 'nocache' }));
    expect(asked).toHaveLength(2);
    await authz.decide(q({ resource: 'a' }));
    await authz.decide(q({ resource: 'b' }));
    await authz.decide(q({ resource: 'a' })); // hit: a becomes most recent
    await authz.decide(q({ resource: 'c' })); // evicts b
    expect(authz.stats().size).toBe(2);
    await authz.decide(q({ resource: 'a' }));
    expect(asked.filter((x) => x.resource === 'a')).toHaveLength(1);
    await authz.decide(q({ resource: 'b' }));
    expect(asked.filter((x) => x.resource === 'b')).toHaveLength(2);
  });
});
