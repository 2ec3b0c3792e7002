/** A small seeded PRNG: the same seed replays the same chaos schedule. */
export { mulberry32 } from '../../scripts/seeded-random.js';

/**
 * Until `chaosEndMs`, every 10–25 s one of the actions: each once first (in a random order, so
 * even a short run kills every process), then picked at random. After it only link drops
 * (every 20–40 s), so the processes measured for RSS growth are no longer killed.
 */
export function createChaos(o: {
  random: () => number;
  elapsed: () => number;
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
  const next = () => {
    const chaotic = o.elapsed() < o.chaosEndMs;
    const wait = chaotic ? between(10_000, 25_000) : between(20_000, 40_000);
    timer = setTimeout(() => {
      const name =
        o.elapsed() < o.chaosEndMs ? (firstRound.shift() ?? names[Math.floor(o.random() * names.length)]!) : linkDrop;
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
