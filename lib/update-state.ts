import { z } from 'zod';

/**
 * The deployment manager's update state, one schema for all who read it: the deployment
 * manager's state file (deployment-manager/update/state.ts), what it tells the agent
 * (`PUT /admin/v1/update-state`, the summary below) and fortctl. Here, not in
 * deployment-manager/, because the agent and fortctl must not load the deployment manager's code.
 *
 * A discriminated union on `step`, as the Mender client's states are types: each step carries
 * exactly what its action needs (installing has the verified payload, health_checking a target
 * and a deadline), so a state that could not be acted on does not parse.
 */

/** Steps of one update, in order; each names the action the deployment manager does next. */
export const UPDATE_STEPS = [
  'idle',
  'downloading',
  'verifying',
  'installing',
  'switching',
  'health_checking',
  'self_updating',
  'committed',
  'rolling_back',
  'failed',
] as const;
export type UpdateStep = (typeof UPDATE_STEPS)[number];

const text = (max: number) => z.string().max(max);
const version = text(128);
const when = text(64);
const why = text(2048);

/** A deployment under way. Fields after `downloaded` fill in as it goes; the steps below require them. */
export const deploymentSchema = z.object({
  id: text(256),
  artifactName: text(256),
  /** `server`: polled from the update server (reports go there); `file`: `install FILE` on site; `operator`: `rollback`. */
  source: z.enum(['server', 'file', 'operator']),
  uri: text(8192).nullable(),
  /** The artifact file being downloaded (or given); its size is the resume offset. */
  artifactFile: text(4096),
  /** Bytes on disk at the last persisted progress. */
  downloaded: z.int().nonnegative(),
  /** The verified release tarball taken out of the artifact. */
  payload: text(4096).nullable().default(null),
  /** The release version inside, once unpacked. */
  target: version.nullable(),
  /** Until when the new (or restored) release may take to report healthy. */
  deadline: when.nullable(),
  reason: why.nullable(),
  /** Starts of the current step's action (a crash there makes another): bounded by the updater. */
  attempts: z.int().nonnegative().default(0),
  /** Steps this deployment has entered: bounded, so no deployment loops forever. */
  steps: z.int().nonnegative().default(0),
});
export type DeploymentState = z.infer<typeof deploymentSchema>;

/** A status the server has not acknowledged yet: delivered in order, retried until it is. */
export const pendingReportSchema = z.object({
  deploymentId: text(256),
  status: text(64),
  /** Log lines to upload with a `failure`. */
  log: z
    .array(z.object({ timestamp: when, level: z.enum(['debug', 'info', 'warning', 'error']), message: why }))
    .optional(),
});
export type PendingReport = z.infer<typeof pendingReportSchema>;

/** What every step has: the releases, the report queue, the last error. */
const common = {
  schema: z.literal(2),
  /** The committed release version, and the one before it (kept for rollback). */
  installed: version.nullable(),
  /** The artifact name of the installed release (what `deployments/next` is told). */
  installedArtifact: text(256).nullable(),
  previous: version.nullable(),
  /** The artifact name of the previous release (what a rollback makes installed again). */
  previousArtifact: text(256).nullable().default(null),
  reports: z.array(pendingReportSchema),
  lastError: why.nullable(),
  /** Counts persisted transitions (all deployments). */
  transitions: z.int().nonnegative(),
  updatedAt: text(64),
};

const at = <S extends UpdateStep, D extends z.ZodType>(step: S, deployment: D) =>
  z.object({ ...common, step: z.literal(step), deployment });
const targeted = deploymentSchema.extend({ target: version });
const deadlined = targeted.extend({ deadline: when });

/** Persisted update state: written before every action (Mender's "persist before acting"). */
export const updateStateSchema = z.discriminatedUnion('step', [
  at('idle', z.null()),
  at('downloading', deploymentSchema),
  at('verifying', deploymentSchema),
  at('installing', deploymentSchema.extend({ payload: text(4096) })),
  at('switching', targeted),
  at('health_checking', deadlined),
  at('self_updating', deadlined),
  at('committed', targeted),
  at('rolling_back', deploymentSchema.extend({ deadline: when, reason: why })),
  at('failed', deploymentSchema),
]);
export type UpdateState = z.infer<typeof updateStateSchema>;
/** The state at one step, e.g. `StateAt<'installing'>` (its deployment has a payload). */
export type StateAt<S extends UpdateStep> = Extract<UpdateState, { step: S }>;

/**
 * What the agent is told (and fortctl shows): the state without the pending server reports and
 * file paths. Unknown fields are dropped, not refused: a newer deployment manager may send more.
 */
export const updateSummarySchema = z.object({
  step: z.enum(UPDATE_STEPS),
  installed: common.installed,
  installedArtifact: common.installedArtifact,
  previous: common.previous,
  deployment: deploymentSchema
    .pick({ id: true, artifactName: true, downloaded: true, target: true, deadline: true, reason: true })
    .extend({ source: text(32) })
    .nullable(),
  lastError: common.lastError,
  /** When the deployment manager persisted this state. */
  updatedAt: z.iso.datetime({ offset: true }),
});
export type UpdateSummary = z.infer<typeof updateSummarySchema>;

/** The summary of a state (deployment-manager → agent). */
export function summarize(s: UpdateState): UpdateSummary {
  const d = s.deployment;
  return {
    step: s.step,
    installed: s.installed,
    installedArtifact: s.installedArtifact,
    previous: s.previous,
    deployment: d && {
      id: d.id,
      artifactName: d.artifactName,
      source: d.source,
      downloaded: d.downloaded,
      target: d.target,
      deadline: d.deadline,
      reason: d.reason,
    },
    lastError: s.lastError,
    updatedAt: s.updatedAt,
  };
}

/** `GET /admin/v1/update-state`: the last summary the deployment manager reported, if any since the agent started. */
export interface UpdateStateView {
  state: UpdateSummary | null;
  reportedAt: string | null;
}
