import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { bypassesProxy } from '../../lib/proxy.js';
import { fail, ok, type Check } from './check.js';
import type { Endpoint } from './endpoints.js';

/** Host names this host itself must resolve: an endpoint's, or its proxy's when it tunnels (the proxy resolves the endpoint). */
export function namesToResolve(endpoints: readonly Endpoint[]): Map<string, string[]> {
  const names = new Map<string, string[]>();
  for (const e of endpoints) {
    const proxied = e.proxy && !bypassesProxy(e.url.host, e.proxy.noProxy);
    const host = (proxied ? e.proxy!.url.hostname : e.url.hostname).replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0) continue;
    names.set(host, [...(names.get(host) ?? []), proxied ? `proxy of ${e.name}` : e.name]);
  }
  return names;
}

/** Each name through the system resolver (getaddrinfo, as the services connect); a name that does not resolve is a FAIL. */
export async function dnsChecks(endpoints: readonly Endpoint[], timeoutMs: number): Promise<Check[]> {
  if (endpoints.length === 0) return [];
  const names = namesToResolve(endpoints);
  if (names.size === 0) return [ok('dns', 'nothing to resolve: every endpoint is an IP address')];
  return Promise.all(
    [...names].map(async ([host, users]) => {
      const name = `dns ${host}`;
      const forWhat = `(${users.join(', ')})`;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>(
        (_, reject) =>
          (timer = setTimeout(
            () => reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })),
            timeoutMs,
          )),
      );
      try {
        const addrs = await Promise.race([lookup(host, { all: true }), late]);
        return ok(name, `${addrs.map((a) => a.address).join(', ')} ${forWhat}`);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        return fail(
          name,
          `does not resolve: ${e.code === 'ENOTFOUND' ? 'no such host' : e.message} (${e.code ?? 'error'}) ${forWhat}`,
        );
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}
