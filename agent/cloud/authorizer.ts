import { FortError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { AuthorizeAnswer, AuthorizeQuestion } from './client.js';

export interface Decision {
  allow: boolean;
  source: 'cache' | 'cloud';
}

/** No fresh decision and the cloud cannot be asked: the caller must refuse (fail closed). */
export class AuthorizationUnavailableError extends FortError {
  constructor(cause: unknown) {
    super(
      'FORT_ERR_AUTHZ_UNAVAILABLE',
      `cannot reach the cloud to authorise, and no fresh decision is cached: ${(cause as Error).message}`,
      { fatal: false, cause },
    );
  }
}

export interface AuthorizerOptions {
  ask: (q: AuthorizeQuestion) => Promise<AuthorizeAnswer>;
  /** Decisions kept; the least recently used go first. */
  maxEntries: number;
  /** Upper bound on a cloud-given TTL, so a bad answer cannot pin a decision for days. */
  maxTtlSeconds?: number;
  log: Logger;
  now?: () => number;
}

/**
 * Cached cloud decisions. Key: tenant + user + action + resource; lifetime: the cloud's TTL.
 * Identical questions in flight share one request. Never allows on its own: an expired
 * decision is not reused when the cloud is down.
 */
export function createAuthorizer(opts: AuthorizerOptions) {
  // Monotonic: a host clock set back must not keep a decision past its TTL.
  const now = opts.now ?? (() => performance.now());
  const maxTtlMs = (opts.maxTtlSeconds ?? 3600) * 1000;
  // A Map iterates in insertion order: re-inserting on a hit makes the first key the LRU.
  const cache = new Map<string, { allow: boolean; expiresAt: number }>();
  const inflight = new Map<string, Promise<Decision>>();
  const stats = { hits: 0, misses: 0, coalesced: 0, failures: 0 };

  const keyOf = (q: AuthorizeQuestion) => JSON.stringify([q.tenant, q.user, q.action, q.resource]);

  async function askCloud(key: string, q: AuthorizeQuestion): Promise<Decision> {
    let answer: AuthorizeAnswer;
    try {
      answer = await opts.ask(q);
    } catch (err) {
      stats.failures += 1;
      opts.log.warn(
        { err: (err as Error).message, action: q.action, resource: q.resource },
        'authorisation: cloud unreachable; refusing',
      );
      throw new AuthorizationUnavailableError(err);
    }
    const ttlMs = Math.min(answer.ttl * 1000, maxTtlMs);
    if (ttlMs > 0) {
      cache.delete(key);
      cache.set(key, { allow: answer.allow, expiresAt: now() + ttlMs });
      while (cache.size > opts.maxEntries) cache.delete(cache.keys().next().value!);
    }
    return { allow: answer.allow, source: 'cloud' };
  }

  return {
    decide(q: AuthorizeQuestion): Promise<Decision> {
      const key = keyOf(q);
      const hit = cache.get(key);
      if (hit && hit.expiresAt > now()) {
        stats.hits += 1;
        cache.delete(key);
        cache.set(key, hit);
        return Promise.resolve({ allow: hit.allow, source: 'cache' });
      }
      if (hit) cache.delete(key);
      const pending = inflight.get(key);
      if (pending) {
        stats.coalesced += 1;
        return pending;
      }
      stats.misses += 1;
      const p = askCloud(key, q).finally(() => inflight.delete(key));
      inflight.set(key, p);
      return p;
    },
    stats: () => ({ ...stats, size: cache.size }),
  };
}
export type Authorizer = ReturnType<typeof createAuthorizer>;
