import type { Logger } from '../../lib/logger.js';

/** AWS IoT's limit on a shadow document. */
export const MAX_SHADOW_BYTES = 8 * 1024;

export interface ShadowReporterOptions {
  thingName: string;
  /** The fort's state as it is now: names and counts, never customer data. */
  collect: () => Promise<Record<string, unknown>>;
  /** QoS 1 publish on the IoT link; rejects when the link is down. */
  publish: (topic: string, payload: string) => Promise<void>;
  log: Logger;
  /** How often the state is looked at for changes (default 10 s). */
  checkMs?: number;
  /** A change is sent this long after it is seen, so a burst is one update (default 5 s). */
  debounceMs?: number;
  /** Sent at least this often, changed or not (default 1 h). */
  maxIntervalMs?: number;
  now?: () => number;
}

/**
 * The fort's reported state in the shape of an AWS IoT named shadow
 * (`$aws/things/<thing>/shadow/name/fort/update`, `{state: {reported}, clientToken}`), sent on
 * change (debounced) and at least hourly, and again once the link is back. Not through the
 * outbox: only the latest state matters, so a fort offline for a week sends one update, not
 * thousands. A document over 8 KB sheds its longest lists first and says so (`truncated`).
 */
export function createShadowReporter(o: ShadowReporterOptions) {
  const now = o.now ?? Date.now;
  const topic = `$aws/things/${o.thingName}/shadow/name/fort/update`;
  const maxIntervalMs = o.maxIntervalMs ?? 3_600_000;
  let lastSent: string | undefined;
  let sentAt = -Infinity;
  let seq = 0;
  let timer: NodeJS.Timeout | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let sending = false;

  const send = async () => {
    debounce = undefined;
    if (sending) return;
    sending = true;
    try {
      const reported = fit(await o.collect());
      const text = JSON.stringify(reported);
      const doc = JSON.stringify({ state: { reported }, clientToken: `${o.thingName}-${++seq}` });
      await o.publish(topic, doc);
      lastSent = text;
      sentAt = now();
      o.log.debug({ bytes: Buffer.byteLength(doc) }, 'reported state sent');
    } catch (err) {
      // The link is down: sent again when it is back (linkUp) or at the next check.
      o.log.debug({ err: (err as Error).message }, 'reported state not sent');
    } finally {
      sending = false;
    }
  };

  const check = async () => {
    if (debounce || sending) return;
    try {
      const text = JSON.stringify(fit(await o.collect()));
      if (now() - sentAt >= maxIntervalMs) void send();
      else if (text !== lastSent) debounce = setTimeout(() => void send(), o.debounceMs ?? 5000).unref();
    } catch (err) {
      o.log.warn({ err: (err as Error).message }, 'reported state could not be collected');
    }
  };

  return {
    start() {
      timer = setInterval(() => void check(), o.checkMs ?? 10_000).unref();
      void check();
    },
    /** The link is up again: what the cloud saw last may be old. */
    linkUp() {
      sentAt = -Infinity;
      void check();
    },
    stop() {
      if (timer) clearInterval(timer);
      if (debounce) clearTimeout(debounce);
    },
  };
}

/** The state within MAX_SHADOW_BYTES: the longest list halved until it fits, marked `truncated`. */
export function fit(state: Record<string, unknown>): Record<string, unknown> {
  let s = state;
  for (
    let i = 0;
    i < 20 && Buffer.byteLength(JSON.stringify({ state: { reported: s } })) > MAX_SHADOW_BYTES - 256;
    i++
  ) {
    const longest = Object.entries(s)
      .filter((e): e is [string, unknown[]] => Array.isArray(e[1]) && e[1].length > 0)
      .sort((a, b) => b[1].length - a[1].length)[0];
    if (!longest) break;
    const [key, list] = longest;
    s = { ...s, [key]: list.slice(0, Math.floor(list.length / 2)), truncated: true };
  }
  return s;
}
