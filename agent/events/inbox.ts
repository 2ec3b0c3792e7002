import type Database from 'better-sqlite3';
import { isDiskFull } from '../../lib/disk-full.js';
import type { Logger } from '../../lib/logger.js';
import { EVENT_TYPE, MAX_EVENT_BYTES, parseEvent, type FortEvent, type ParseFailureCode } from './envelope.js';
import type { Outbox } from './outbox.js';

/** What a handler may touch: the same handle, inside the inbox's transaction. */
export interface HandlerContext {
  db: Database.Database;
  outbox: Outbox;
}

/**
 * Synchronous on purpose: it runs inside the SQLite transaction that records the event
 * id, so its writes and the dedupe row commit together or not at all.
 */
export type EventHandler = (event: FortEvent, tx: HandlerContext) => void;

export interface InboundMessage {
  topic: string;
  payload: Buffer;
}

export type ReceiveResult = 'handled' | 'duplicate' | 'dead_lettered';
export type DeadLetterCode = ParseFailureCode | 'unknown_type' | 'handler_failed';

export interface InboxStats {
  received: number;
  handled: number;
  duplicates: number;
  deadLettered: number;
}

export interface Inbox {
  /**
   * Process one delivery. The MQTT link acks (PUBACK) only after this returns; if it
   * throws (the store itself failed) the link must not ack, so the broker redelivers.
   */
  receive(topic: string, payload: Buffer): ReceiveResult;
  /**
   * Process several deliveries in one transaction (one fsync): results in the same order.
   * All or nothing: if it throws, none of them counts as received.
   */
  receiveMany(messages: readonly InboundMessage[]): ReceiveResult[];
  registerHandler(type: string, handler: EventHandler): void;
  /** Counters since start, for health. */
  stats(): InboxStats;
  /** Dead letters since start by reason code (the metrics' labels). */
  deadLetteredBy(): Readonly<Record<string, number>>;
  deadLetterCount(): number;
  /**
   * Forget event ids received before `cutoff`. The window must outlast the broker's
   * redelivery window (persistent session expiry), or a late redelivery runs twice.
   */
  pruneBefore(cutoff: Date): number;
}

export interface InboxOptions {
  db: Database.Database;
  log: Logger;
  /** Events addressed to any other fort are dead-lettered. */
  fortId: string;
  outbox: Outbox;
  handlers?: ReadonlyMap<string, EventHandler>;
  /** Oldest dead letters beyond this are deleted: a flood of junk must not fill the disk. */
  maxDeadLetters?: number;
  now?: () => Date;
}

/** Marks an error thrown by a handler, as opposed to one from the store. */
class HandlerFailure extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original));
  }
}

export function createInbox(opts: InboxOptions): Inbox {
  const { db, log, fortId, outbox } = opts;
  const now = opts.now ?? (() => new Date());
  const maxDeadLetters = opts.maxDeadLetters ?? 1000;
  if (!Number.isInteger(maxDeadLetters) || maxDeadLetters < 1)
    throw new RangeError(`inbox maxDeadLetters must be a positive integer, got ${maxDeadLetters}`);
  const handlers = new Map<string, EventHandler>();
  const counts: InboxStats = { received: 0, handled: 0, duplicates: 0, deadLettered: 0 };
  const deadBy: Partial<Record<DeadLetterCode, number>> = {};
  const ctx: HandlerContext = { db, outbox };

  const insertEvent = db.prepare(
    'INSERT INTO inbox (id, type, received_at, payload) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
  );
  const insertDead = db.prepare(
    'INSERT INTO dead_letters (received_at, topic, reason_code, reason, event_id, type, payload, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const trimDead = db.prepare(
    'DELETE FROM dead_letters WHERE seq < (SELECT seq FROM dead_letters ORDER BY seq DESC LIMIT 1 OFFSET ?)',
  );
  const countDead = db.prepare('SELECT COUNT(*) AS n FROM dead_letters').pluck();
  const prune = db.prepare('DELETE FROM inbox WHERE received_at < ?');

  const handleOnce = db.transaction((event: FortEvent, text: string, handler: EventHandler): boolean => {
    if (insertEvent.run(event.id, event.type, now().toISOString(), text).changes === 0) return false;
    let result: unknown;
    try {
      result = handler(event, ctx);
    } catch (err) {
      throw new HandlerFailure(err);
    }
    if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
      // TypeScript lets an async function pass as `=> void`; its writes would land outside the transaction.
      Promise.resolve(result).catch((err: unknown) =>
        log.error({ err, type: event.type }, 'async event handler rejected'),
      );
      throw new HandlerFailure(
        new Error(`handler for "${event.type}" returned a promise; handlers must be synchronous`),
      );
    }
    return true;
  });

  const deadLetter = db.transaction(
    (topic: string, payload: Buffer, code: DeadLetterCode, reason: string, id?: string, type?: string) => {
      insertDead.run(
        now().toISOString(),
        topic,
        code,
        reason,
        id ?? null,
        type ?? null,
        payload.subarray(0, MAX_EVENT_BYTES),
        payload.length,
      );
      trimDead.run(maxDeadLetters - 1);
    },
  );

  function registerHandler(type: string, handler: EventHandler): void {
    if (!EVENT_TYPE.test(type)) throw new TypeError(`invalid event type "${type}"`);
    if (handlers.has(type)) throw new Error(`a handler for "${type}" is already registered`);
    handlers.set(type, handler);
  }
  for (const [type, handler] of opts.handlers ?? []) registerHandler(type, handler);

  type Outcome = { result: ReceiveResult; code?: DeadLetterCode; report?: () => void };

  const rejected = (
    topic: string,
    payload: Buffer,
    code: DeadLetterCode,
    reason: string,
    id?: string,
    type?: string,
  ): Outcome => {
    deadLetter(topic, payload, code, reason, id, type);
    return {
      result: 'dead_lettered',
      code,
      report: () => log.warn({ topic, code, reason, eventId: id, type, size: payload.length }, 'event dead-lettered'),
    };
  };

  /** Runs inside the batch transaction; logging waits for the commit, so nothing rolled back is reported. */
  function receiveOne({ topic, payload }: InboundMessage): Outcome {
    const parsed = parseEvent(payload, fortId);
    if (!parsed.ok) return rejected(topic, payload, parsed.code, parsed.reason, parsed.id, parsed.type);
    const { event } = parsed;
    const handler = handlers.get(event.type);
    if (!handler)
      return rejected(topic, payload, 'unknown_type', `type: no handler for "${event.type}"`, event.id, event.type);
    try {
      if (!handleOnce(event, payload.toString('utf8'), handler)) {
        return {
          result: 'duplicate',
          report: () => log.debug({ eventId: event.id, type: event.type }, 'duplicate event ignored'),
        };
      }
    } catch (err) {
      // Store errors propagate: the link must not ack, the broker redelivers later. A handler
      // that met a full disk is the store failing too, not a bug to dead-letter.
      if (!(err instanceof HandlerFailure)) throw err;
      if (isDiskFull(err.original)) throw err.original;
      // A handler failure is dead-lettered (and so acked) rather than redelivered: a
      // deterministic bug would otherwise come back on every reconnect, forever. Its
      // writes were rolled back to the savepoint of handleOnce; the others in the batch stay.
      log.error({ err: err.original, eventId: event.id, type: event.type }, 'event handler failed; rolled back');
      return rejected(topic, payload, 'handler_failed', err.message.slice(0, 500), event.id, event.type);
    }
    return { result: 'handled', report: () => log.debug({ eventId: event.id, type: event.type }, 'event handled') };
  }

  const receiveAll = db.transaction((messages: readonly InboundMessage[]) => messages.map(receiveOne));
  const tally: Record<ReceiveResult, keyof InboxStats> = {
    handled: 'handled',
    duplicate: 'duplicates',
    dead_lettered: 'deadLettered',
  };

  function receiveMany(messages: readonly InboundMessage[]): ReceiveResult[] {
    const outcomes = receiveAll(messages);
    counts.received += messages.length;
    return outcomes.map(({ result, code, report }) => {
      counts[tally[result]]++;
      if (code) deadBy[code] = (deadBy[code] ?? 0) + 1;
      report?.();
      return result;
    });
  }

  return {
    receive: (topic, payload) => receiveMany([{ topic, payload }])[0]!,
    receiveMany,
    registerHandler,
    stats: () => ({ ...counts }),
    deadLetteredBy: () => ({ ...deadBy }),
    deadLetterCount: () => countDead.get() as number,
    pruneBefore: (cutoff) => prune.run(cutoff.toISOString()).changes,
  };
}
