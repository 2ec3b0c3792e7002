import type { Logger } from '../../lib/logger.js';
import type { Outbox, OutboxRow } from './outbox.js';

/** Time source and timer, injected so tests can step time instead of sleeping. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface PublisherOptions {
  outbox: Outbox;
  /** Resolves on PUBACK, rejects when the message did not get through. Must settle eventually. */
  publish: (topic: string, payload: Buffer) => Promise<void>;
  /** Unacked publishes at once (AWS IoT allows 100 per connection). Default 10. */
  maxInFlight?: number;
  /** Publishes per second (AWS IoT throttles at ~100 per connection). Default 50. */
  ratePerSecond?: number;
  log: Logger;
  clock?: Clock;
}

export interface PublisherStats {
  running: boolean;
  inFlight: number;
  published: number;
  failures: number;
}

export interface OutboxPublisher {
  /** On connect: resumes from the oldest unacked row once earlier publishes have settled. */
  start(): void;
  /** On disconnect or shutdown: no new publishes; resolves when in-flight ones settled. */
  stop(): Promise<void>;
  /** New rows or a fresh connection; safe to call anywhere, even inside a transaction. */
  kick(): void;
  stats(): PublisherStats;
}

/**
 * Drains the outbox in seq order. A row is deleted only after its publish resolved. On a
 * failure it stops dispatching; the next kick or start, once every in-flight publish has
 * settled, restarts from the oldest row still stored, so retries keep the original order.
 * (With maxInFlight > 1 a later row may already have been acked before an earlier one is
 * retried, as with any pipelined QoS 1 stream; consumers dedupe on the envelope id.)
 */
export function createOutboxPublisher(opts: PublisherOptions): OutboxPublisher {
  const { outbox, publish, log } = opts;
  const clock = opts.clock ?? systemClock;
  const maxInFlight = opts.maxInFlight ?? 10;
  const ratePerSecond = opts.ratePerSecond ?? 50;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
    throw new RangeError(`maxInFlight must be a positive integer, got ${maxInFlight}`);
  if (!(ratePerSecond > 0 && Number.isFinite(ratePerSecond)))
    throw new RangeError(`ratePerSecond must be a positive number, got ${ratePerSecond}`);
  // Even spacing rather than a bucket with burst: never above the rate, at most one interval of delay.
  const interval = 1000 / ratePerSecond;

  let running = false;
  let halted = false; // a publish failed (or we just connected): resync before dispatching again
  let kicked = false; // asked to resume while halted
  let cursor = 0; // highest seq dispatched in this pass
  let inFlight = 0;
  let nextAt = -Infinity;
  let timer: unknown;
  let pumpQueued = false;
  let published = 0;
  let failures = 0;
  let idleWaiters: (() => void)[] = [];

  // Deferred to a microtask: better-sqlite3 transactions are synchronous, so a kick from
  // inside one never reads rows that might still roll back (and free their seq for reuse).
  function schedule(): void {
    if (pumpQueued) return;
    pumpQueued = true;
    queueMicrotask(() => {
      pumpQueued = false;
      pump();
    });
  }

  function pump(): void {
    if (!running) return;
    if (halted) {
      if (inFlight > 0 || !kicked) return;
      halted = false;
      kicked = false;
      cursor = 0;
    }
    while (running && !halted && inFlight < maxInFlight) {
      const t = clock.now();
      if (t < nextAt) {
        arm(nextAt - t);
        return;
      }
      const row = outbox.peek(1, cursor)[0];
      if (!row) return;
      cursor = row.seq;
      nextAt = t + interval;
      dispatch(row);
    }
  }

  function arm(ms: number): void {
    if (timer !== undefined) return;
    timer = clock.setTimeout(() => {
      timer = undefined;
      pump();
    }, ms);
  }

  function dispatch(row: OutboxRow): void {
    inFlight++;
    let pending: Promise<void>;
    try {
      pending = publish(row.topic, Buffer.from(row.payload, 'utf8'));
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      () => settled(row, undefined),
      (err: unknown) => settled(row, err ?? new Error('publish rejected')),
    );
  }

  function settled(row: OutboxRow, err: unknown): void {
    inFlight--;
    try {
      if (err === undefined) {
        outbox.ack(row.seq);
        published++;
      } else {
        failures++;
        outbox.recordFailure(row.seq);
        if (!halted) {
          log.warn(
            { err, seq: row.seq, topic: row.topic, attempts: row.attempts + 1 },
            'publish failed; outbox paused until the next kick',
          );
          halted = true;
          kicked = false; // only kicks after this failure count (a reconnect may already be in)
        }
      }
    } catch (storeErr) {
      // The row stays (or its count is off by one): it is published again, never lost.
      log.error({ err: storeErr, seq: row.seq }, 'outbox update after publish failed');
    }
    if (inFlight === 0) {
      for (const w of idleWaiters) w();
      idleWaiters = [];
    }
    schedule();
  }

  function kick(): void {
    if (!running) return;
    kicked = true;
    schedule();
  }

  return {
    start() {
      running = true;
      halted = true; // resync: rows in flight from an earlier connection settle first
      kick();
    },
    stop() {
      running = false;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      if (inFlight === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    kick,
    stats: () => ({ running, inFlight, published, failures }),
  };
}
