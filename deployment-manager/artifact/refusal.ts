import { FortError } from '../../lib/errors.js';

/** Every refusal of an artifact: FORT_ERR_ARTIFACT with the exact reason (part of the contract). */
export const refuse = (reason: string, cause?: unknown) =>
  new FortError('FORT_ERR_ARTIFACT', reason, cause === undefined ? {} : { cause });

export const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));
