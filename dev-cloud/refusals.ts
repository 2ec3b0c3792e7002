/** What an armed refusal answers: a status that carries a retry hint, and the hint as sent. */
export interface Refusal {
  status: 429 | 503;
  /**
   * The `Retry-After` header as sent: seconds, a Date (sent as an IMF-fixdate HTTP-date), or any
   * text (a malformed one, on purpose); absent = no header.
   */
  retryAfter?: number | Date | string;
}

/** A refusal armed for the next `times` requests (default 1) to any of `routes` (default all). */
export interface ArmedRefusal<Route extends string> extends Refusal {
  routes?: readonly Route[];
  times?: number;
}

/**
 * Fault injection shared by the dev cloud's servers: answer the next requests to some routes
 * with 429 or 503 and a `Retry-After` (RFC 9110 §10.2.3), as a rate limiter or an overloaded
 * gateway in front of the real service would. Each request takes at most one armed refusal,
 * the oldest that matches it.
 */
export function createRefusals<Route extends string>(changed: () => void = () => undefined) {
  const armed: { refusal: Refusal; routes: readonly Route[] | undefined; left: number }[] = [];
  return {
    arm(r: ArmedRefusal<Route>): void {
      const times = r.times ?? 1;
      if (!Number.isInteger(times) || times < 1)
        throw new RangeError(`refuse: times must be a positive integer, got ${times}`);
      const { routes, times: _times, ...refusal } = r;
      armed.push({ refusal, routes, left: times });
    },
    /** The refusal this request gets (and one fewer of it), or undefined. */
    take(route: Route | undefined): Refusal | undefined {
      const i = armed.findIndex((a) => !a.routes || (route !== undefined && a.routes.includes(route)));
      if (i < 0) return undefined;
      const a = armed[i]!;
      if (--a.left === 0) armed.splice(i, 1);
      changed();
      return a.refusal;
    },
    clear(): void {
      armed.length = 0;
    },
  };
}
export type Refusals<Route extends string> = ReturnType<typeof createRefusals<Route>>;

/** The `Retry-After` header value of a refusal, or undefined for none. */
export function retryAfterHeader(r: Refusal): string | undefined {
  if (r.retryAfter === undefined) return undefined;
  if (r.retryAfter instanceof Date) return r.retryAfter.toUTCString();
  return String(r.retryAfter);
}
