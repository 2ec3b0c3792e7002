import { existsSync, readFileSync } from 'node:fs';
import { StoreError } from '../../lib/errors.js';
import { writeFileAtomic } from '../../lib/files.js';
import { updateStateSchema, type UpdateState } from '../../lib/update-state.js';

// The schema is lib's (shared with the agent and fortctl); this module is the file it lives in.
export {
  UPDATE_STEPS,
  type DeploymentState,
  type PendingReport,
  type StateAt,
  type UpdateState,
  type UpdateStep,
} from '../../lib/update-state.js';

export function initialState(now: Date): UpdateState {
  return {
    schema: 2,
    step: 'idle',
    installed: null,
    installedArtifact: null,
    previous: null,
    previousArtifact: null,
    deployment: null,
    reports: [],
    lastError: null,
    transitions: 0,
    updatedAt: now.toISOString(),
  };
}

/** A state file of the first schema (before updates existed) is an idle installation. */
function upgrade(raw: unknown): unknown {
  const r = raw as {
    schema?: unknown;
    step?: unknown;
    installed?: string | null;
    previous?: string | null;
    transitions?: number;
    updatedAt?: string;
  };
  if (r && r.schema === 1 && r.step === 'idle')
    return {
      ...initialState(new Date(r.updatedAt ?? Date.now())),
      installed: r.installed ?? null,
      previous: r.previous ?? null,
      transitions: r.transitions ?? 0,
    };
  return raw;
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
        throw new StoreError(
          `state file ${path} is not valid JSON: ${(err as Error).message}`,
          'FORT_ERR_STATE_FILE',
          err,
        );
      }
      const parsed = updateStateSchema.safeParse(upgrade(raw));
      if (!parsed.success) {
        const first = parsed.error.issues[0];
        throw new StoreError(
          `state file ${path} is not a state this release understands: ${first?.path.join('.') || '(root)'}: ${first?.message}`,
          'FORT_ERR_STATE_FILE',
        );
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
