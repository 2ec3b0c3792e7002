import { expect } from 'vitest';
import { FortError } from '../../lib/errors.js';

/** The FortError `p` rejects with; fails the test if it resolves or rejects with anything else. */
export async function fortFailure(p: Promise<unknown>): Promise<FortError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FortError);
    return err as FortError;
  }
  throw new Error('expected a FortError, nothing was thrown');
}
