/**
 * The samples of a Prometheus text exposition, keyed `name{a="1",b="2"}` with the labels sorted
 * (so the writer's label order does not matter). Enough of the format for our own output.
 */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, k, v]) => `${k}="${v}"`)
      .sort();
    samples.set(seriesKey(m[1]!, labels), Number(m[3] === '+Inf' ? Infinity : m[3]));
  }
  return samples;
}

const seriesKey = (name: string, labels: string[]) => (labels.length ? `${name}{${labels.join(',')}}` : name);

/** One sample's value (undefined when the series is absent); label values as written, unescaped here. */
export function sample(
  samples: Map<string, number>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return samples.get(
    seriesKey(
      name,
      Object.entries(labels)
        .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
        .sort(),
    ),
  );
}
