/** A small seeded PRNG: the same seed replays the same chaos schedule. */
export { mulberry32 } from '../../scripts/seeded-random.js';

/**
 * Until `chaosEndMs`, every 10–25 s one of the actions: each once first (in a random order, so
 * even a short run kills every process), then picked at random; the kills (actions named
 * `kill …`) only until `killsEndMs`, so the processes measured for RSS growth after `chaosEndMs`
 * have lived a while by then. After `chaosEndMs` only link drops (every 20–40 s).
 */
export function createChaos(o: {
  random: () => number;
  elapsed: () => number;
  killsEndMs: number;
  chaosEndMs: number;
  durationMs: number;
  actions: Record<string, () => void>;
  log: (line: string) => void;
}) {
  const names = Object.keys(o.actions);
  const linkDrop = names.find((n) => n.includes('link'));
  const counts: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  let timer: NodeJS.Timeout | undefined;
  const firstRound = names
    .map((n) => ({ n, k: o.random() }))
    .sort((a, b) => a.k - b.k)
    .map((x) => x.n);
  const between = (min: number, max: number) => min + o.random() * (max - min);
  const pick = () => {
    const allowed = o.elapsed() < o.killsEndMs ? names : names.filter((n) => !n.startsWith('kill'));
    while (firstRound.length) {
      const n = firstRound.shift()!;
      if (allowed.includes(n)) return n;
    }
    return allowed[Math.floor(o.random() * allowed.length)];
  };
  const next = () => {
    const chaotic = o.elapsed() < o.chaosEndMs;
    const wait = chaotic ? between(10_000, 25_000) : between(20_000, 40_000);
    timer = setTimeout(() => {
      const name = o.elapsed() < o.chaosEndMs ? pick() : linkDrop;
      if (name && o.elapsed() < o.durationMs) {
        counts[name]! += 1;
        o.log(`${Math.round(o.elapsed() / 1000)} s: ${name}`);
        o.actions[name]!();
      }
      next();
    }, wait);
  };
  return {
    start: next,
    stop: () => clearTimeout(timer),
    counts: () => ({ ...counts }),
  };
}
