import { Agent, request } from 'node:https';

/**
 * A browser user's requests at a steady rate (one kept-alive connection, like a browser tab),
 * with the user's token of the moment, counted by outcome: `ok`, the HTTP status, or the socket
 * error while the agent is away.
 */
export function createRequestDriver(o: { url: string; ca: Buffer; token: () => string; perSecond: number }) {
  const agent = new Agent({ ca: o.ca, keepAlive: true, maxSockets: 1 });
  const outcomes = new Map<string, number>();
  const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
  let timer: NodeJS.Timeout | undefined;
  let inFlight = 0;
  const send = () => {
    // A user does not pile up requests against a server that is not answering.
    if (inFlight > 0) return count('skipped (previous still pending)');
    inFlight += 1;
    const req = request(o.url, { agent, headers: { authorization: `Bearer ${o.token()}` }, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => {
        inFlight -= 1;
        count(res.statusCode === 200 ? 'ok' : `HTTP ${res.statusCode}`);
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      inFlight -= 1;
      count(err.code ?? err.message);
    });
    req.end();
  };
  return {
    start() {
      timer = setInterval(send, 1000 / o.perSecond);
    },
    stop() {
      clearInterval(timer);
      agent.destroy();
    },
    counts() {
      const all = Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1]));
      const ok = outcomes.get('ok') ?? 0;
      const skipped = outcomes.get('skipped (previous still pending)') ?? 0;
      const total = [...outcomes.values()].reduce((a, b) => a + b, 0) - skipped;
      return { ok, failed: total - ok, byOutcome: all };
    },
  };
}
