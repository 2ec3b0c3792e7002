import helmet, { type HelmetOptions } from 'helmet';

export type HeaderSet = Readonly<Record<string, string>>;

/**
 * What helmet would set for `options`, computed once. helmet recomputes its headers for every
 * response (it supports per-request CSP nonces, which the fort does not use); measured on the
 * rows route that cost ~40 % of the throughput of a bare server, for a constant result.
 */
export function helmetHeaders(options: Readonly<HelmetOptions>): HeaderSet {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (name: string, value: string) => void (headers[name.toLowerCase()] = value),
    removeHeader: (name: string) => void delete headers[name.toLowerCase()],
  };
  let done = false;
  // helmet only ever reads `res` and calls next() synchronously.
  (helmet(options) as unknown as (req: unknown, r: typeof res, next: (err?: unknown) => void) => void)(
    {},
    res,
    (err) => {
      if (err) throw err as Error;
      done = true;
    },
  );
  if (!done) throw new Error('helmet did not complete synchronously');
  return Object.freeze(headers);
}

/** HTML and script of the viewer page: helmet's defaults with a same-origin-only CSP. */
export const PAGE_HEADERS = helmetHeaders({
  contentSecurityPolicy: {
    directives: {
      defaultSrc: ["'self'"],
      connectSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      frameAncestors: ["'none'"],
    },
  },
});

/**
 * JSON answers (OWASP REST security headers): nothing may render, frame or cache them; customer
 * data must not linger in a browser or proxy cache.
 */
export const API_HEADERS: HeaderSet = Object.freeze({
  ...helmetHeaders({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    xFrameOptions: { action: 'deny' },
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  }),
  'cache-control': 'no-store',
});
