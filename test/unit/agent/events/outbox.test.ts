import { afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openStore, type Store } from '../../../../agent/store/database.js';
import { createOutbox } from '../../../../agent/events/outbox.js';
import { MAX_EVENT_BYTES } from '../../../../agent/events/envelope.js';
import { tempDir } from '../../../helpers/fort.js';

const silent = pino({ level: 'silent' });
let store: Store | undefined;
const dirs: string[] = [];
afterEach(() => {
  if (store?.db.open) store.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dbPath(): string {
  const dir = tempDir('outbox');
  dirs.push(dir);
  return join(dir, 'agent.db');
}

function open(): Store {
  store = openStore({ path: dbPath(), log: silent });
  return store;
}

/** A pino logger whose lines land in an array. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

describe('outbox', () => {
  it('keeps messages in seq order and deletes only on ack', () => {
    const { db } = open();
    const outbox = createOutbox({ db, log: silent, maxMessages: 10 });
    const a = outbox.enqueue('t/1', { n: 1 });
    const b = outbox.enqueue('t/2', { n: 2 });
    expect(b).toBeGreaterThan(a);
    expect(outbox.peek(10).map((r) => [r.topic, JSON.parse(r.payload)])).toEqual([
      ['t/1', { n: 1 }],
      ['t/2', { n: 2 }],
    ]);
    expect(outbox.peek(10, a).map((r) => r.seq)).toEqual([b]);
    expect(outbox.ack(a)).toBe(true);
    expect(outbox.ack(a)).toBe(false);
    expect(outbox.size()).toBe(1);
    outbox.recordFailure(b);
    expect(outbox.peek(1)[0]).toMatchObject({ seq: b, attempts: 1 });
  });

  it('bounds the table: drops the oldest, counts them and warns', () => {
    const { db } = open();
    const { log, lines } = capturingLogger();
    const outbox = createOutbox({ db, log, maxMessages: 5 });
    for (let n = 1; n <= 8; n++) outbox.enqueue('t', { n });
    expect(outbox.size()).toBe(5);
    expect(outbox.peek(10).map((r) => JSON.parse(r.payload).n)).toEqual([4, 5, 6, 7, 8]);
    expect(outbox.stats()).toEqual({ size: 5, dropped: 3 });
    const warnings = lines.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(3);
    expect(warnings.at(-1)).toMatchObject({ droppedNow: 1, droppedTotal: 3, maxMessages: 5 });
  });

  it('refuses a message the bridge would reject, keeping the queue unblocked', () => {
    const { db } = open();
    const outbox = createOutbox({ db, log: silent, maxMessages: 5 });
    expect(() => outbox.enqueue('t', { pad: 'x'.repeat(MAX_EVENT_BYTES) })).toThrow(/limit is 131072/);
    expect(outbox.size()).toBe(0);
  });

  it('joins the caller transaction: a rollback leaves nothing behind', () => {
    const { db } = open();
    const outbox = createOutbox({ db, log: silent, maxMessages: 5 });
    const fail = db.transaction(() => {
      outbox.enqueue('t', { n: 1 });
      throw new Error('boom');
    });
    expect(() => fail()).toThrow('boom');
    expect(outbox.size()).toBe(0);
  });

  it('survives a restart and tells listeners about new rows', () => {
    const path = dbPath();
    let s = openStore({ path, log: silent });
    createOutbox({ db: s.db, log: silent, maxMessages: 5 }).enqueue('t', { n: 1 });
    s.close();
    s = store = openStore({ path, log: silent });
    const outbox = createOutbox({ db: s.db, log: silent, maxMessages: 5 });
    expect(outbox.peek(5).map((r) => JSON.parse(r.payload))).toEqual([{ n: 1 }]);
    let calls = 0;
    const off = outbox.onEnqueue(() => calls++);
    outbox.enqueue('t', { n: 2 });
    off();
    outbox.enqueue('t', { n: 3 });
    expect(calls).toBe(1);
  });
});
