import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { StoreError } from '../../lib/errors.js';
import { writeFileAtomic } from '../../lib/files.js';
import { UPDATE_STEPS } from '../../lib/update-summary.js';

export { UPDATE_STEPS, type UpdateStep } from '../../lib/update-summary.js';

/** A status the server has not acknowledged yet: delivered in order, retried until it is. */
export const pendingReportSchema = z.object({
  deploymentId: z.string(),
  status: z.string(),
  /** Log lines to upload with a `failure`. */
  log: z
    .array(
      z.object({ timestamp: z.string(), level: z.enum(['debug', 'info', 'warning', 'error']), message: z.string() }),
    )
    .optional(),
});
export type PendingReport = z.infer<typeof pendingReportSchema>;

export const deploymentStateSchema = z.object({
  id: z.string(),
  artifactName: z.string(),
  /** `server`: polled from the update server (reports go there); `file`: `install FILE` on site; `operator`: `rollback`. */
  source: z.enum(['server', 'file', 'operator']),
  uri: z.string().nullable(),
  /** The artifact file being downloaded (or given); its size is the resume offset. */
  artifactFile: z.string(),
  /** Bytes on disk at the last persisted progress. */
  downloaded: z.int().nonnegative(),
  /** The verified release tarball taken out of the artifact. */
  payload: z.string().nullable().default(null),
  /** The release version inside, once unpacked. */
  target: z.string().nullable(),
  /** Until when the new (or restored) agent may take to report healthy. */
  deadline: z.string().nullable(),
  reason: z.string().nullable(),
  /** Starts of the current step's action (a crash there makes another): bounded, see updater.ts. */
  attempts: z.int().nonnegative().default(0),
  /** Steps this deployment has entered: bounded, so no deployment loops forever. */
  steps: z.int().nonnegative().default(0),
});
export type DeploymentState = z.infer<typeof deploymentStateSchema>;

/**
 * Persisted update state. Written before every action (Mender's "persist before acting"), so a
 * restart resumes from the last step, or rolls back from it.
 */
export const updateStateSchema = z.object({
  schema: z.literal(2),
  step: z.enum(UPDATE_STEPS),
  /** The committed release version, and the one before it (kept for rollback). */
  installed: z.string().nullable(),
  /** The artifact name of the installed release (what `deployments/next` is told). */
  installedArtifact: z.string().nullable(),
  previous: z.string().nullable(),
  /** The artifact name of the previous release (what a rollback makes installed again). */
  previousArtifact: z.string().nullable().default(null),
  deployment: deploymentStateSchema.nullable(),
  reports: z.array(pendingReportSchema),
  lastError: z.string().nullable(),
  /** Counts persisted transitions; bounds crash loops inside one deployment. */
  transitions: z.int().nonnegative(),
  updatedAt: z.string(),
});
export type UpdateState = z.infer<typeof updateStateSchema>;

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
