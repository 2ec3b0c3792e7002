/**
 * The cutoff before which received event ids are forgotten: `windowMs` back on the wall clock,
 * but moving on only as fast as time really passes (the monotonic clock). A host clock that
 * jumps a day forward must not forget, at the next prune, ids a redelivery may still bring (the
 * event would run twice); one set back simply keeps ids longer.
 */
export function createDedupCutoff(o: { windowMs: number; now?: () => number; monotonic?: () => number }) {
  const now = o.now ?? Date.now;
  const monotonic = o.monotonic ?? (() => performance.now());
  let last = { wall: now() - o.windowMs, mono: monotonic() };
  return {
    next(): Date {
      const mono = monotonic();
      const wall = Math.min(now() - o.windowMs, last.wall + (mono - last.mono));
      last = { wall, mono };
      return new Date(wall);
    },
  };
}
