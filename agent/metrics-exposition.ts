/**
 * Counters, gauges and histograms kept as plain numbers, written in the Prometheus text format
 * (0.0.4). The agent's own metrics live here rather than in prom-client objects: loading
 * prom-client at start costs ~5 MB of the agent's 80 MB idle budget, and a prom-client
 * histogram cannot take the counts kept before it was loaded (see metrics.ts).
 */

export type Labels = Readonly<Record<string, string>>;

export interface MetricFamily {
  /** The family in the text format, ending with a newline. */
  render(): string;
}

const escapeHelp = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const num = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));
const labelText = (labels: Labels) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};
const header = (name: string, help: string, type: string) =>
  `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;

/**
 * Series by their values of `labelNames`, in one nested map per label: no key string is built
 * per observation (route patterns and methods are the same strings every time, hashed once).
 */
function series<T>(labelNames: readonly string[], make: () => T) {
  type Node = Map<string, Node | T>;
  const root: Node = new Map();
  const all: { labels: Labels; value: T }[] = [];
  return {
    get(labels: Labels): T {
      if (labelNames.length === 0) {
        if (all.length === 0) all.push({ labels, value: make() });
        return all[0]!.value;
      }
      let node = root;
      for (let i = 0; i < labelNames.length - 1; i++) {
        const v = labels[labelNames[i]!]!;
        let next = node.get(v) as Node | undefined;
        if (!next) node.set(v, (next = new Map()));
        node = next;
      }
      const last = labels[labelNames[labelNames.length - 1]!]!;
      let value = node.get(last) as T | undefined;
      if (value === undefined) {
        value = make();
        node.set(last, value);
        all.push({ labels, value });
      }
      return value;
    },
    values: () => all,
  };
}

/** A counter; without labels it is shown (as 0) from the start, like prom-client's. */
export function counter(name: string, help: string, labelNames: readonly string[] = []) {
  const values = series(labelNames, () => ({ n: 0 }));
  if (labelNames.length === 0) values.get({});
  return {
    inc(labels: Labels = {}, n = 1): void {
      values.get(labels).n += n;
    },
    render(): string {
      const lines = values.values().map((s) => `${name}${labelText(s.labels)} ${num(s.value.n)}\n`);
      return header(name, help, 'counter') + lines.join('');
    },
  };
}

type Read = () => readonly { labels?: Labels; value: number }[];
const scraped = (type: 'gauge' | 'counter', name: string, help: string, read: Read): MetricFamily => ({
  render: () =>
    header(name, help, type) +
    read()
      .map((s) => `${name}${labelText(s.labels ?? {})} ${num(s.value)}\n`)
      .join(''),
});

/** A gauge read at scrape time: `read` returns its series (none when it has nothing to say). */
export const gauge = (name: string, help: string, read: Read): MetricFamily => scraped('gauge', name, help, read);

/** A counter another module already keeps, read at scrape time (rather than counted twice). */
export const counterOf = (name: string, help: string, read: Read): MetricFamily => scraped('counter', name, help, read);

/** A histogram with fixed upper bounds (seconds); `+Inf` is implied. */
export function histogram(name: string, help: string, labelNames: readonly string[], bounds: readonly number[]) {
  const values = series(labelNames, () => ({ counts: new Array<number>(bounds.length).fill(0), sum: 0, count: 0 }));
  return {
    observe(labels: Labels, v: number): void {
      const h = values.get(labels);
      h.sum += v;
      h.count += 1;
      for (let i = 0; i < bounds.length; i++) {
        if (v <= bounds[i]!) {
          h.counts[i]! += 1;
          break;
        }
      }
    },
    render(): string {
      let out = header(name, help, 'histogram');
      for (const { labels, value: h } of values.values()) {
        let cumulative = 0;
        bounds.forEach((le, i) => {
          cumulative += h.counts[i]!;
          out += `${name}_bucket${labelText({ ...labels, le: num(le) })} ${cumulative}\n`;
        });
        out += `${name}_bucket${labelText({ ...labels, le: '+Inf' })} ${h.count}\n`;
        out += `${name}_sum${labelText(labels)} ${num(h.sum)}\n${name}_count${labelText(labels)} ${h.count}\n`;
      }
      return out;
    },
  };
}
