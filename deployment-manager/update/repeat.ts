/** ±10 %, so a fleet started together does not poll together. */
export const jitter = (ms: number) => Math.round(ms * (0.9 + Math.random() * 0.2));

export interface Repeating {
  /** No further run is scheduled; one under way finishes (its caller awaits it). */
  stop(): void;
}

/**
 * Runs `run` now, then again `intervalMs()` after each run settles, until stopped. It holds one
 * timer at a time: a fired timer is dropped, so a daemon polling every second for months keeps
 * no trail of them (an array of every timer, cleared only at stop, grew ~2 900 a day).
 */
export function repeat(intervalMs: () => number, run: () => Promise<void>): Repeating {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = () => {
    timer = undefined;
    if (stopped) return;
    void run().then(() => {
      if (!stopped) timer = setTimeout(tick, intervalMs());
    });
  };
  tick();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}
