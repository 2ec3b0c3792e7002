/**
 * Exponential backoff with full jitter (AWS architecture blog): delay = random(0, min(cap,
 * base * 2^attempt)), floored so that a storm of failures never retries faster than `floorMs`.
 */
export function fullJitterDelay(
  attempt: number,
  opts: { baseMs: number; capMs: number; floorMs?: number },
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(opts.capMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  return Math.max(opts.floorMs ?? 0, Math.floor(random() * ceiling));
}
