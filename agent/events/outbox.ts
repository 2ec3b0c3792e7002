import type Database from 'better-sqlite3';
import type { Logger } from '../../lib/logger.js';
import { MAX_EVENT_BYTES } from './envelope.js';

export interface OutboxRow {
  seq: number;
  topic: string;
  payload: string;
  createdAt: string;
  attempts: number;
}

export interface OutboxStats {
  size: number;
  dropped: number;
}

/**
 * Durable queue of messages to publish, in `seq` order. Every method is synchronous
 * on the shared handle, so an event handler's enqueue commits or rolls back with it.
 */
export interface Outbox {
  /** Appends a message (serialised as JSON); drops the oldest rows when full. Returns its seq. */
  enqueue(topic: string, message: object): number;
  /** Oldest rows first, optionally only those after `afterSeq`. */
  peek(limit: number, afterSeq?: number): OutboxRow[];
  /** Deletes a row once the broker acknowledged it; false if it was already gone. */
  ack(seq: number): boolean;
  /** Counts a failed publish of a row (kept for retry). */
  recordFailure(seq: number): void;
  size(): number;
  stats(): OutboxStats;
  /** Called after every enqueue (e.g. the publisher's kick); returns an unsubscribe. */
  onEnqueue(listener: () => void): () => void;
}

export interface OutboxOptions {
  db: Database.Database;
  log: Logger;
  /** Upper bound on stored rows: a fort offline for weeks must not fill its disk. */
  maxMessages: number;
  now?: () => Date;
}

export function createOutbox(opts: OutboxOptions): Outbox {
  const { db, log, maxMessages } = opts;
  const now = opts.now ?? (() => new Date());
  if (!Number.isInteger(maxMessages) || maxMessages < 1)
    throw new RangeError(`outbox maxMessages must be a positive integer, got ${maxMessages}`);
  const count = db.prepare('SELECT COUNT(*) AS n FROM outbox').pluck();
  const dropOldest = db.prepare('DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)');
  const insert = db.prepare('INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)');
  const select = db.prepare(
    'SELECT seq, topic, payload, created_at AS createdAt, attempts FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?',
  );
  const remove = db.prepare('DELETE FROM outbox WHERE seq = ?');
  const fail = db.prepare('UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?');
  const listeners = new Set<() => void>();
  // In memory, like the inbox counters: a health gauge since start, not an audit record.
  let dropped = 0;

  // A nested db.transaction becomes a savepoint, so this is atomic inside a handler's transaction too.
  const enqueueTx = db.transaction((topic: string, payload: string): number => {
    const excess = (count.get() as number) - maxMessages + 1;
    if (excess > 0) {
      const n = dropOldest.run(excess).changes;
      dropped += n;
      log.warn({ droppedNow: n, droppedTotal: dropped, maxMessages }, 'outbox full: dropped the oldest messages');
    }
    return Number(insert.run(topic, payload, now().toISOString()).lastInsertRowid);
  });

  return {
    enqueue(topic, message) {
      const payload = JSON.stringify(message);
      // The bridge rejects it anyway; refusing here keeps it from blocking the queue forever.
      const bytes = Buffer.byteLength(payload);
      if (bytes > MAX_EVENT_BYTES)
        throw new RangeError(`outbox message for ${topic} is ${bytes} bytes, limit is ${MAX_EVENT_BYTES}`);
      const seq = enqueueTx(topic, payload);
      for (const l of listeners) {
        try {
          l();
        } catch (err) {
          log.error({ err }, 'outbox enqueue listener failed');
        }
      }
      return seq;
    },
    peek: (limit, afterSeq = 0) => select.all(afterSeq, limit) as OutboxRow[],
    ack: (seq) => remove.run(seq).changes > 0,
    recordFailure: (seq) => void fail.run(seq),
    size: () => count.get() as number,
    stats: () => ({ size: count.get() as number, dropped }),
    onEnqueue(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
