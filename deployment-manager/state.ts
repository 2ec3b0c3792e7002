import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { StoreError } from '../lib/errors.js';
import { writeFileAtomic } from '../lib/files.js';

/**
 * Persisted update state. Written before every action (Mender's "persist before acting"),
 * so a restart resumes from the last step. Update steps join `idle` as the update flow lands.
 */
export const updateStateSchema = z.object({
  schema: z.literal(1),
  step: z.enum(['idle']),
  installed: z.string().nullable(),
  previous: z.string().nullable(),
  deploymentId: z.string().nullable(),
  /** Counts persisted transitions; bounds crash loops inside one deployment. */
  transitions: z.int().nonnegative(),
  updatedAt: z.string(),
});
export type UpdateState = z.infer<typeof updateStateSchema>;

export function initialState(now: Date): UpdateState {
  return { schema: 1, step: 'idle', installed: null, previous: null, deploymentId: null, transitions: 0, updatedAt: now.toISOString() };
}

export function createStateFile(path: string, now: () => Date = () => new Date()) {
  return {
    load(): UpdateState {
      if (!existsSync(path)) {
        const state = initialState(now());
        writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`);
        return state;
      }
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(path, 'utf8'));
      } catch (err) {
        throw new StoreError(`state file ${path} is not valid JSON: ${(err as Error).message}`, 'FORT_ERR_STATE_FILE', err);
      }
      const parsed = updateStateSchema.safeParse(raw);
      if (!parsed.success) {
        const first = parsed.error.issues[0];
        throw new StoreError(`state file ${path} is not a state this release understands: ${first?.path.join('.') || '(root)'}: ${first?.message}`, 'FORT_ERR_STATE_FILE');
      }
      return parsed.data;
    },
    save(state: UpdateState): UpdateState {
      const next = { ...state, transitions: state.transitions + 1, updatedAt: now().toISOString() };
      writeFileAtomic(path, `${JSON.stringify(next, null, 2)}\n`);
      return next;
    },
  };
}
export type StateFile = ReturnType<typeof createStateFile>;
