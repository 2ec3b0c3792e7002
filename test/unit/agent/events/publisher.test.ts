import { afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openStore, type Store } from '../../../../agent/store/database.js';
import { createOutbox, type Outbox } from '../../../../agent/events/outbox.js';
import { createOutboxPublisher, type Clock, type PublisherOptions } from '../../../../agent/events/publisher.js';
import { tempDir } from '../../../helpers/fort.js';

const log = pino({ level: 'silent' });
const cleanups: (() => void)[] = [];
afterEach(() =>
  cleanups
    .splice(0)
    .reverse()
    .forEach((f) => f()),
);

/** Time moves only when the test says so; timers fire in order as it passes. */
class ManualClock implements Clock {
  private t = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  private nextId = 1;
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (id: unknown) => void this.timers.delete(id as number);
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    await settle(); // work queued before time moves happens at the current instant
    for (;;) {
      const due = [...this.timers].filter(([, x]) => x.at <= target).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await settle();
    }
    this.t = target;
    await settle();
  }
}

/** Let promise callbacks and queued microtasks run. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

/** A transport whose publishes stay pending until the test resolves or rejects them. */
function manualTransport(clock: ManualClock) {
  const calls: { n: number; at: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  let pending = 0;
  let maxPending = 0;
  const publish = (_topic: string, payload: Buffer) =>
    new Promise<void>((resolve, reject) => {
      pending++;
      maxPending = Math.max(maxPending, pending);
      const done = () => void pending--;
      calls.push({
        n: JSON.parse(payload.toString()).n,
        at: clock.now(),
        resolve: () => (done(), resolve()),
        reject: (e) => (done(), reject(e)),
      });
    });
  return { publish, calls, maxPending: () => maxPending };
}

function setup(count: number, opts: Partial<PublisherOptions> = {}) {
  const dir = tempDir('publisher');
  const store: Store = openStore({ path: join(dir, 'agent.db'), log });
  cleanups.push(
    () => rmSync(dir, { recursive: true, force: true }),
    () => store.close(),
  );
  const outbox: Outbox = createOutbox({ db: store.db, log, maxMessages: 1000 });
  for (let n = 1; n <= count; n++) outbox.enqueue('forts/f/status', { n });
  const clock = new ManualClock();
  const transport = manualTransport(clock);
  const publisher = createOutboxPublisher({
    outbox,
    publish: transport.publish,
    log,
    clock,
    ratePerSecond: 1000,
    ...opts,
  });
  cleanups.unshift(() => void publisher.stop());
  const remaining = () => outbox.peek(1000).map((r) => JSON.parse(r.payload).n as number);
  return { outbox, clock, publisher, remaining, ...transport };
}

describe('outbox publisher', () => {
  it('publishes in seq order and deletes a row only after its publish resolved', async () => {
    const t = setup(3, { maxInFlight: 1 });
    t.publisher.start();
    await t.clock.advance(0);
    expect(t.calls.map((c) => c.n)).toEqual([1]);
    expect(t.remaining()).toEqual([1, 2, 3]);
    t.calls[0]!.resolve();
    await t.clock.advance(10);
    expect(t.remaining()).toEqual([2, 3]);
    t.calls[1]!.resolve();
    await t.clock.advance(10);
    t.calls[2]!.resolve();
    await t.clock.advance(10);
    expect(t.calls.map((c) => c.n)).toEqual([1, 2, 3]);
    expect(t.remaining()).toEqual([]);
    expect(t.publisher.stats()).toMatchObject({ published: 3, failures: 0, inFlight: 0 });
  });

  it('on a failed publish keeps the rest and retries from the oldest, in order, after a kick', async () => {
    const t = setup(5, { maxInFlight: 1 });
    t.publisher.start();
    await t.clock.advance(0);
    t.calls[0]!.resolve();
    await t.clock.advance(10);
    t.calls[1]!.reject(new Error('connection lost'));
    await t.clock.advance(100);
    expect(t.calls.map((c) => c.n)).toEqual([1, 2]); // paused: nothing more goes out
    expect(t.remaining()).toEqual([2, 3, 4, 5]);
    expect(t.outbox.peek(1)[0]!.attempts).toBe(1);
    t.publisher.kick(); // reconnected
    for (let i = 2; i < 6; i++) {
      await t.clock.advance(10);
      t.calls[i]!.resolve();
    }
    await t.clock.advance(10);
    expect(t.calls.map((c) => c.n)).toEqual([1, 2, 2, 3, 4, 5]);
    expect(t.remaining()).toEqual([]);
  });

  it('with several in flight, waits for all of them before retrying from the oldest', async () => {
    const t = setup(4, { maxInFlight: 3 });
    t.publisher.start();
    await t.clock.advance(10);
    expect(t.calls.map((c) => c.n)).toEqual([1, 2, 3]);
    t.calls[0]!.reject(new Error('gone'));
    await t.clock.advance(0);
    t.publisher.kick(); // reconnect arrives while 2 and 3 are still pending
    await t.clock.advance(10);
    expect(t.calls).toHaveLength(3); // no duplicate of an in-flight row
    t.calls[1]!.reject(new Error('gone'));
    t.calls[2]!.resolve(); // acked late, on the old connection
    await t.clock.advance(10);
    expect(t.calls.slice(3).map((c) => c.n)).toEqual([1, 2, 4]);
  });

  it('honours the rate limit', async () => {
    const t = setup(5, { ratePerSecond: 10, maxInFlight: 100 });
    t.publisher.start();
    await t.clock.advance(0);
    expect(t.calls).toHaveLength(1);
    await t.clock.advance(99);
    expect(t.calls).toHaveLength(1);
    await t.clock.advance(1);
    expect(t.calls).toHaveLength(2);
    await t.clock.advance(1000);
    expect(t.calls.map((c) => c.at)).toEqual([0, 100, 200, 300, 400]);
  });

  it('never exceeds maxInFlight', async () => {
    const t = setup(20, { maxInFlight: 3 });
    t.publisher.start();
    for (let i = 0; i < 40; i++) {
      await t.clock.advance(5);
      const open = t.calls.filter((c) => !('done' in c));
      if (i % 2 === 0 && open.length) Object.assign(open[0]!, { done: true }).resolve();
    }
    expect(t.maxPending()).toBe(3);
    expect(t.calls.map((c) => c.n)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('does nothing while stopped; start resumes; stop waits for in-flight publishes', async () => {
    const t = setup(2, { maxInFlight: 1 });
    t.publisher.kick();
    await t.clock.advance(10);
    expect(t.calls).toHaveLength(0);
    t.publisher.start();
    await t.clock.advance(10);
    let stopped = false;
    const stopping = t.publisher.stop().then(() => (stopped = true));
    await t.clock.advance(10);
    expect(stopped).toBe(false);
    t.calls[0]!.resolve();
    await stopping;
    await t.clock.advance(10);
    expect(t.calls).toHaveLength(1);
    expect(t.remaining()).toEqual([2]);
  });

  it('publishes rows enqueued later when kicked from the outbox', async () => {
    const t = setup(0);
    t.outbox.onEnqueue(() => t.publisher.kick());
    t.publisher.start();
    await t.clock.advance(10);
    t.outbox.enqueue('forts/f/status', { n: 7 });
    await t.clock.advance(10);
    expect(t.calls.map((c) => c.n)).toEqual([7]);
  });
});
