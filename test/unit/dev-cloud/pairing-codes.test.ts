import { describe, expect, it } from 'vitest';
import { createPairingCodes, PairingCodeRefused } from '../../../dev-cloud/pairing/codes.js';

const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    if (err instanceof PairingCodeRefused) return err.reason;
    throw err;
  }
  return 'accepted';
};

describe('pairing codes', () => {
  it('are 160-bit, distinct, single-use, and read back however they are typed', () => {
    let t = Date.parse('2026-11-23T12:00:00Z');
    const codes = createPairingCodes({ now: () => new Date(t) });
    const issued = Array.from({ length: 50 }, () => codes.issue('t1', 600).code);
    expect(new Set(issued).size).toBe(50);
    for (const c of issued) expect(c).toMatch(/^([A-Z2-7]{4}-){7}[A-Z2-7]{4}$/);
    const typed = ` ${issued[0]!.toLowerCase().replace(/-/g, ' ')} `;
    expect(codes.redeem(typed)).toEqual({ tenant: 't1' });
    expect(refusal(() => codes.redeem(issued[0]!))).toBe('used');
    t += 1000;
    expect(refusal(() => codes.redeem('ABCD'))).toBe('unknown');
  });

  it('expire, and say so for a day after; a code refused for its tenant is used up', () => {
    let t = Date.parse('2026-11-23T12:00:00Z');
    const codes = createPairingCodes({ now: () => new Date(t) });
    const { code, expiresAt } = codes.issue('t1', 60);
    expect(expiresAt).toBe('2026-11-23T12:01:00.000Z');
    t += 60_000;
    expect(refusal(() => codes.redeem(code))).toBe('expired');
    t += 86_400_000;
    codes.issue('t1', 60); // sweeps what expired over a day ago
    expect(refusal(() => codes.redeem(code))).toBe('unknown');

    const other = codes.issue('t2', 600).code;
    expect(refusal(() => codes.redeem(other, 't1'))).toBe('other_tenant');
    expect(refusal(() => codes.redeem(other, 't2'))).toBe('used');
  });
});
