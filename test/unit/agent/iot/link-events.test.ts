import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createMqttLink, type LinkState } from '../../../../agent/iot/link.js';

/** A link that is never started: nothing connects, only its event map is exercised. */
const idleLink = () =>
  createMqttLink({
    endpoint: 'iot.invalid',
    region: 'eu-west-1',
    fortId: 'fort-1',
    thingName: 'fort-1',
    keepaliveSeconds: 30,
    protocolVersion: 4,
    backoff: { baseMs: 1, capMs: 1 },
    credentials: { get: () => Promise.reject(new Error('unused')), invalidate: () => {}, clockSkewMs: () => 0 },
    onMessages: () => {},
    log: pino({ level: 'silent' }),
  });

describe('IoT link events', () => {
  it('are typed: listeners get their declared arguments, unknown names and wrong arguments fail tsc', () => {
    const { events } = idleLink();
    const seen: LinkState[] = [];
    let connected = 0;
    events.on('state', (s) => seen.push(s));
    events.on('connected', () => (connected += 1));
    events.emit('state', 'waiting');
    events.emit('connected');
    expect(seen).toEqual(['waiting']);
    expect(connected).toBe(1);

    // tsc (npm run build / lint compiles the tests) fails if any of these lines compiles.
    // @ts-expect-error a misspelt event name
    events.on('conected', () => {});
    // @ts-expect-error a listener expecting other arguments
    events.on('state', (_s: number) => {});
    // @ts-expect-error an argument the event does not carry
    events.emit('state', 'online');
    // @ts-expect-error a misspelt event name
    events.emit('disconnect');
  });
});
