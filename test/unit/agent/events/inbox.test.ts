import { afterEach, describe, expect, it, vi } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openStore, type Store } from '../../../../agent/store/database.js';
import { createOutbox } from '../../../../agent/events/outbox.js';
import { createInbox, type EventHandler } from '../../../../agent/events/inbox.js';
import { MAX_EVENT_BYTES } from '../../../../agent/events/envelope.js';
import { pingHandler } from '../../../../agent/events/handlers/ping.js';
import { tempDir } from '../../../helpers/fort.js';

const log = pino({ level: 'silent' });
const FORT = 'fort-test-1';
const TOPIC = `forts/${FORT}/events`;
const dirs: string[] = [];
const stores: Store[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) if (s.db.open) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dbPath(): string {
  const dir = tempDir('inbox');
  dirs.push(dir);
  return join(dir, 'agent.db');
}

/** Writes an `effects` row: a stand-in for a handler's real effect (e.g. queueing a reload). */
const effect: EventHandler = (event, { db }) => {
  db.prepare('INSERT INTO effects (ts, type, event_id) VALUES (?, ?, ?)').run(event.ts, event.type, event.id);
};
const effectThenThrow: EventHandler = (event, tx) => {
  effect(event, tx);
  tx.outbox.enqueue('t', { from: event.id });
  throw new Error('connector exploded');
};

function setup(path = dbPath(), extra: [string, EventHandler][] = []) {
  const store = openStore({ path, log });
  store.db.exec('CREATE TABLE IF NOT EXISTS effects (ts TEXT, type TEXT, event_id TEXT)');
  stores.push(store);
  const outbox = createOutbox({ db: store.db, log, maxMessages: 100 });
  const handlers = new Map<string, EventHandler>([
    ['ping', pingHandler(FORT)],
    ['test.audit', effect],
    ['test.fail', effectThenThrow],
    ...extra,
  ]);
  const inbox = createInbox({ db: store.db, log, fortId: FORT, outbox, handlers });
  const count = (table: string) => store.db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get() as number;
  const deadLetters = () =>
    store.db
      .prepare(
        'SELECT topic, reason_code AS code, reason, event_id AS eventId, type, length(payload) AS stored, size FROM dead_letters ORDER BY seq',
      )
      .all() as {
      topic: string;
      code: string;
      reason: string;
      eventId: string | null;
      type: string | null;
      stored: number;
      size: number;
    }[];
  return { store, outbox, inbox, count, deadLetters };
}

let n = 0;
function event(overrides: Record<string, unknown> = {}) {
  n++;
  const id = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  return { v: 1, id, type: 'test.audit', fortId: FORT, ts: '2025-01-01T00:00:00.000Z', data: {}, ...overrides };
}
const bytes = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

describe('event inbox', () => {
  it('handles a valid event once: inbox row and handler effect together', () => {
    const { inbox, count } = setup();
    expect(inbox.receive(TOPIC, bytes(event()))).toBe('handled');
    expect(count('inbox')).toBe(1);
    expect(count('effects')).toBe(1);
    expect(inbox.stats()).toEqual({ received: 1, handled: 1, duplicates: 0, deadLettered: 0 });
  });

  it.each([
    ['too_large', () => Buffer.alloc(MAX_EVENT_BYTES + 10, 0x7b), undefined],
    ['bad_json', () => bytes('{"v":1,'), undefined],
    ['bad_envelope', () => bytes(event({ ts: 'not a time' })), 'ts:'],
    ['unsupported_version', () => bytes(event({ v: 7 })), 'v:'],
    ['wrong_fort', () => bytes(event({ fortId: 'fort-elsewhere' })), 'fortId:'],
    ['unknown_type', () => bytes(event({ type: 'reload.requested' })), 'type:'],
    ['handler_failed', () => bytes(event({ type: 'test.fail' })), 'connector exploded'],
  ])('dead-letters %s with its code, nothing in inbox', (code, payload, reasonPart) => {
    const { inbox, count, deadLetters } = setup();
    const body = payload();
    expect(inbox.receive(TOPIC, body)).toBe('dead_lettered');
    const [row, ...rest] = deadLetters();
    expect(rest).toEqual([]);
    expect(row).toMatchObject({
      topic: TOPIC,
      code,
      size: body.length,
      stored: Math.min(body.length, MAX_EVENT_BYTES),
    });
    if (reasonPart) expect(row!.reason).toContain(reasonPart);
    expect(count('inbox')).toBe(0);
    expect(inbox.stats()).toMatchObject({ received: 1, handled: 0, deadLettered: 1 });
    expect(inbox.deadLetterCount()).toBe(1);
  });

  it('records id and type of an envelope that got far enough', () => {
    const { inbox, deadLetters } = setup();
    const e = event({ type: 'reload.requested' });
    inbox.receive(TOPIC, bytes(e));
    expect(deadLetters()[0]).toMatchObject({ eventId: e.id, type: 'reload.requested' });
  });

  it('rolls back everything a failing handler wrote, then dead-letters it', () => {
    const { inbox, count, outbox } = setup();
    expect(inbox.receive(TOPIC, bytes(event({ type: 'test.fail' })))).toBe('dead_lettered');
    expect(count('effects')).toBe(0);
    expect(outbox.size()).toBe(0);
    expect(count('inbox')).toBe(0);
  });

  it('treats an async handler as failed: its writes would escape the transaction', async () => {
    const late = vi.fn();
    const { inbox, count, deadLetters } = setup(dbPath(), [['test.async', async () => late()]]);
    expect(inbox.receive(TOPIC, bytes(event({ type: 'test.async' })))).toBe('dead_lettered');
    expect(deadLetters()[0]).toMatchObject({
      code: 'handler_failed',
      reason: expect.stringContaining('must be synchronous'),
    });
    expect(count('inbox')).toBe(0);
  });

  it('acks a redelivered id as duplicate without calling the handler again', () => {
    const handler = vi.fn(effect);
    const { inbox, count } = setup(dbPath(), [['test.spy', handler]]);
    const body = bytes(event({ type: 'test.spy' }));
    expect(inbox.receive(TOPIC, body)).toBe('handled');
    expect(inbox.receive(TOPIC, body)).toBe('duplicate');
    expect(handler).toHaveBeenCalledOnce();
    expect(count('effects')).toBe(1);
    expect(inbox.stats()).toEqual({ received: 2, handled: 1, duplicates: 1, deadLettered: 0 });
  });

  it('stays exactly-once across a restart', () => {
    const path = dbPath();
    const body = bytes(event());
    const first = setup(path);
    expect(first.inbox.receive(TOPIC, body)).toBe('handled');
    first.store.close();
    const second = setup(path);
    expect(second.inbox.receive(TOPIC, body)).toBe('duplicate');
    expect(second.count('effects')).toBe(1);
  });

  it('retries a failed handler on redelivery (nothing was recorded)', () => {
    let fail = true;
    const flaky: EventHandler = (e, tx) => {
      if (fail) throw new Error('transient');
      effect(e, tx);
    };
    const { inbox, count } = setup(dbPath(), [['test.flaky', flaky]]);
    const body = bytes(event({ type: 'test.flaky' }));
    expect(inbox.receive(TOPIC, body)).toBe('dead_lettered');
    fail = false;
    expect(inbox.receive(TOPIC, body)).toBe('handled');
    expect(count('effects')).toBe(1);
  });

  it('answers ping with one pong in the outbox', () => {
    const { inbox, outbox } = setup();
    const ping = event({ type: 'ping', data: { echo: 'hello' } });
    expect(inbox.receive(TOPIC, bytes(ping))).toBe('handled');
    expect(inbox.receive(TOPIC, bytes(ping))).toBe('duplicate');
    const rows = outbox.peek(10);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.topic).toBe(`forts/${FORT}/status`);
    const pong = JSON.parse(rows[0]!.payload);
    expect(pong).toMatchObject({ v: 1, type: 'pong', fortId: FORT, data: { pingId: ping.id, echo: 'hello' } });
    expect(pong.id).not.toBe(ping.id);
  });

  it('commits a batch in one transaction: a failing handler rolls back only its own writes', () => {
    const { inbox, count, outbox, deadLetters } = setup();
    const ok1 = event();
    const bad = event({ type: 'test.fail' });
    const ok2 = event({ type: 'ping' });
    const results = inbox.receiveMany([ok1, bad, ok1, ok2].map((e) => ({ topic: TOPIC, payload: bytes(e) })));
    expect(results).toEqual(['handled', 'dead_lettered', 'duplicate', 'handled']);
    expect(count('inbox')).toBe(2);
    expect(count('effects')).toBe(1); // ok1's; bad's effect row was rolled back with its savepoint
    expect(outbox.peek(10).map((r) => JSON.parse(r.payload).data.pingId)).toEqual([ok2.id]);
    expect(deadLetters()).toEqual([expect.objectContaining({ code: 'handler_failed', eventId: bad.id })]);
    expect(inbox.stats()).toEqual({ received: 4, handled: 2, duplicates: 1, deadLettered: 1 });
  });

  it('takes back the whole batch when the store fails midway, and counts none of it', () => {
    const { inbox, count, store } = setup();
    const first = event();
    // A handler that breaks the store (not a handler bug): the error is not a HandlerFailure.
    store.db.exec(
      "CREATE TRIGGER fail_second BEFORE INSERT ON inbox WHEN (SELECT COUNT(*) FROM inbox) >= 1 BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    );
    expect(() => inbox.receiveMany([first, event()].map((e) => ({ topic: TOPIC, payload: bytes(e) })))).toThrow(
      /disk full/,
    );
    expect(count('inbox')).toBe(0);
    expect(count('effects')).toBe(0);
    expect(inbox.stats()).toEqual({ received: 0, handled: 0, duplicates: 0, deadLettered: 0 });
  });

  it('counts committed deliveries and dead letters by reason (the metrics read them); a batch taken back counts nothing', () => {
    const { store, outbox } = setup();
    const inbox = createInbox({
      db: store.db,
      log,
      fortId: FORT,
      outbox,
      handlers: new Map([
        ['test.audit', effect],
        ['test.fail', effectThenThrow],
      ]),
    });
    const ok = event();
    inbox.receiveMany(
      [ok, event({ type: 'test.fail' }), ok]
        .map((e) => ({ topic: TOPIC, payload: bytes(e) }))
        .concat({ topic: TOPIC, payload: bytes('{"not json') }),
    );
    const counted = {
      stats: { received: 4, handled: 1, duplicates: 1, deadLettered: 2 },
      by: { handler_failed: 1, bad_json: 1 },
    };
    expect({ stats: inbox.stats(), by: inbox.deadLetteredBy() }).toEqual(counted);
    store.db.exec("CREATE TRIGGER fail_all BEFORE INSERT ON inbox BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    expect(() => inbox.receive(TOPIC, bytes(event()))).toThrow(/disk full/);
    expect({ stats: inbox.stats(), by: inbox.deadLetteredBy() }).toEqual(counted);
  });

  it('throws when the store itself fails, so the link does not ack', () => {
    const { inbox, store } = setup();
    store.close();
    expect(() => inbox.receive(TOPIC, bytes(event()))).toThrow(/not open/);
  });

  it('keeps only the newest dead letters', () => {
    const store = openStore({ path: dbPath(), log });
    stores.push(store);
    const outbox = createOutbox({ db: store.db, log, maxMessages: 10 });
    const inbox = createInbox({ db: store.db, log, fortId: FORT, outbox, maxDeadLetters: 3 });
    for (let i = 0; i < 5; i++) inbox.receive(`t/${i}`, bytes('junk'));
    expect(store.db.prepare('SELECT topic FROM dead_letters ORDER BY seq').pluck().all()).toEqual([
      't/2',
      't/3',
      't/4',
    ]);
    expect(inbox.stats().deadLettered).toBe(5);
  });

  it('prunes old event ids and refuses a second handler for a type', () => {
    let now = new Date('2025-01-01T00:00:00Z');
    const { store, outbox } = setup();
    const inbox = createInbox({ db: store.db, log, fortId: FORT, outbox, now: () => now });
    inbox.registerHandler('test.audit', effect);
    expect(() => inbox.registerHandler('test.audit', effect)).toThrow(/already registered/);
    inbox.receive(TOPIC, bytes(event()));
    now = new Date('2025-01-03T00:00:00Z');
    inbox.receive(TOPIC, bytes(event()));
    expect(inbox.pruneBefore(new Date('2025-01-02T00:00:00Z'))).toBe(1);
    expect(store.db.prepare('SELECT COUNT(*) FROM inbox').pluck().get()).toBe(1);
  });
});
