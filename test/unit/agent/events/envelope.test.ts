import { describe, expect, it } from 'vitest';
import { MAX_EVENT_BYTES, createEvent, parseEvent, statusTopic } from '../../../../agent/events/envelope.js';

const FORT = 'fort-test-1';
const ID = '3b241101-e2bb-4255-8caf-4136c566a962';
const valid = {
  v: 1,
  id: ID,
  type: 'reload.requested',
  fortId: FORT,
  ts: '2025-01-02T03:04:05.678Z',
  data: { appId: 'a1' },
};
const parse = (value: unknown) =>
  parseEvent(Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), FORT);

describe('event envelope', () => {
  it('accepts a v1 envelope and defaults data to {}', () => {
    expect(parse(valid)).toEqual({ ok: true, event: valid });
    const { data: _data, ...noData } = valid;
    expect(parse(noData)).toEqual({ ok: true, event: { ...noData, data: {} } });
    expect(parse({ ...valid, ts: '2025-01-02T05:04:05+02:00' }).ok).toBe(true);
  });

  it('drops unknown top-level keys (additive v1 changes stay compatible)', () => {
    const result = parse({ ...valid, traceId: 'abc' });
    expect(result).toEqual({ ok: true, event: valid });
  });

  it('rejects a payload over 128 KiB without parsing it', () => {
    const result = parseEvent(Buffer.alloc(MAX_EVENT_BYTES + 1, 0x20), FORT);
    expect(result).toMatchObject({ ok: false, code: 'too_large' });
    expect(
      parseEvent(Buffer.from(JSON.stringify({ ...valid, data: { pad: 'x'.repeat(MAX_EVENT_BYTES - 200) } })), FORT).ok,
    ).toBe(true);
  });

  it('rejects invalid JSON and invalid UTF-8 without quoting the input', () => {
    const result = parse('{"secret-value": ');
    expect(result).toMatchObject({ ok: false, code: 'bad_json' });
    expect(JSON.stringify(result)).not.toContain('secret-value');
    expect(parseEvent(Buffer.from([0x7b, 0xff, 0x7d]), FORT)).toMatchObject({ ok: false, code: 'bad_json' });
  });

  it.each([
    ['an array', [1, 2], '(root)'],
    ['a missing v', { ...valid, v: undefined }, 'v:'],
    ['a string v', { ...valid, v: '1' }, 'v:'],
    ['a bad id', { ...valid, id: 'not-a-uuid' }, 'id:'],
    ['a bad type', { ...valid, type: 'Reload Requested' }, 'type:'],
    ['a missing fortId', { ...valid, fortId: undefined }, 'fortId:'],
    ['a bad ts', { ...valid, ts: 'yesterday' }, 'ts:'],
    ['data that is not an object', { ...valid, data: ['x'] }, 'data:'],
  ])('rejects %s as bad_envelope naming the field', (_name, value, field) => {
    const result = parse(value);
    expect(result).toMatchObject({ ok: false, code: 'bad_envelope' });
    expect(result.ok === false && result.reason).toContain(field);
  });

  it('reports id and type of a rejected envelope when they are readable', () => {
    expect(parse({ ...valid, ts: 5 })).toMatchObject({
      ok: false,
      code: 'bad_envelope',
      id: ID,
      type: 'reload.requested',
    });
  });

  it('never echoes field values into the reason', () => {
    const secret = 'TOP-SECRET-' + 'y'.repeat(5000);
    const result = parse({ ...valid, type: secret, ts: secret });
    expect(result.ok).toBe(false);
    expect(JSON.stringify(result)).not.toContain('TOP-SECRET');
  });

  it('refuses other versions with unsupported_version', () => {
    expect(parse({ ...valid, v: 2, somethingNew: true })).toMatchObject({
      ok: false,
      code: 'unsupported_version',
      id: ID,
      reason: expect.stringContaining('version 2'),
    });
  });

  it('refuses an event addressed to another fort', () => {
    expect(parse({ ...valid, fortId: 'fort-other' })).toMatchObject({
      ok: false,
      code: 'wrong_fort',
      id: ID,
      reason: expect.stringContaining('fort-other'),
    });
  });

  it('builds outgoing envelopes that parse back', () => {
    const event = createEvent(FORT, 'reload.succeeded', { appId: 'a1' }, new Date('2025-01-01T00:00:00Z'));
    expect(parseEvent(Buffer.from(JSON.stringify(event)), FORT)).toEqual({ ok: true, event });
    expect(statusTopic(FORT)).toBe('forts/fort-test-1/status');
  });
});
