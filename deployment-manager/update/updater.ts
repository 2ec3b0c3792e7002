import { basename } from 'node:path';
import { FortError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { RunHooks } from './hooks.js';
import type { Deployment, DeploymentStatus, LogMessage } from '../mender/client.js';
import type { DeploymentState, StateFile, UpdateState, UpdateStep } from './state.js';
import { act, BEFORE_SWITCH, createSteps, failed, giveUp, rollingBack, SWITCHED, type Active } from './steps.js';
import type { SelfUpdateStatus } from '../self-update/contract.js';

/** How the deployment manager updates itself through root (self-update/): see the `self_updating` step. */
export interface SelfUpdateLink {
  /** The release this process runs. */
  ownVersion: string;
  /** Asks root for `version` of the deployment manager from the deployment's artifact. */
  request(d: DeploymentState, version: string): void;
  /** Root's status, if it is about this deployment. */
  status(deploymentId: string): SelfUpdateStatus | undefined;
  /** Ready, the update server reached: says so to root (the new deployment manager only). */
  prove(d: DeploymentState): Promise<void>;
  /** How long root may take to answer a request. */
  answerMs: number;
}

/** Per deployment: past these the deployment fails (or rolls back) instead of looping. */
export interface UpdateBudget {
  /** Starts of one step's action (each crash during it is one more). */
  stepAttempts: number;
  /** Steps entered. */
  steps: number;
}
export const DEFAULT_BUDGET: UpdateBudget = { stepAttempts: 5, steps: 40 };

/** The update server as the updater uses it (deployment-manager/mender/client.ts). */
export interface UpdateServer {
  nextDeployment(installedArtifact: string): Promise<Deployment | undefined>;
  reportStatus(deploymentId: string, status: DeploymentStatus): Promise<void>;
  uploadLog(deploymentId: string, messages: LogMessage[]): Promise<void>;
}

export interface UpdaterDeps {
  state: StateFile;
  initial: UpdateState;
  /** Absent on a fort without an update server (air-gapped: `install FILE` only). */
  server?: UpdateServer | undefined;
  /** Streams the artifact into `d.artifactFile`, resuming from what is there; stops when `signal` aborts. */
  download(d: DeploymentState, onProgress: (bytes: number) => void, signal: AbortSignal): Promise<void>;
  /** Verifies the whole artifact; resolves with the verified payload (the release, unpacked under a staging name). */
  verify(d: DeploymentState): Promise<{ artifactName: string; payload: string }>;
  /** Installs a verified payload as releases/<version>. */
  install(d: DeploymentState & { payload: string }): Promise<{ version: string }>;
  /** Points `current` at a release (atomic). */
  switchTo(version: string): void;
  agent: {
    /** Asks the agent to exit so systemd starts the release `current` points at. */
    restart(): Promise<void>;
    /** Healthy and running `version`? */
    runs(version: string): Promise<boolean>;
  };
  /** Operator hooks run before each step's action (deployment-manager/update/hooks.ts). */
  hooks?: RunHooks | undefined;
  /** Deletes what a finished deployment left in staging (a downloaded artifact, the verified payload). */
  discard(d: DeploymentState): void;
  /** Deletes release directories other than these. */
  keepReleases(versions: string[]): void;
  healthDeadlineMs: number;
  healthPollMs: number;
  /** No room to download or unpack: look again this often, for at most diskWaitMs (then the deployment fails). */
  diskRetryMs: number;
  diskWaitMs: number;
  /** While downloading, `downloading` is reported again this often: a 409 (aborted) stops the download. */
  abortCheckMs?: number;
  budget?: UpdateBudget;
  selfUpdate?: SelfUpdateLink | undefined;
  /** Aborted when the process stops: waits end, no further step starts. */
  stopSignal?: AbortSignal;
  log: Logger;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
  /** A monotonic clock in ms (performance.now): the health check's deadline, the download progress's cadence. */
  monotonicMs?: () => number;
}

/**
 * The update state machine: one loop that runs the current step's action (steps.ts) and
 * persists the state it returns before anything else acts. The persisted `step` names the action
 * to do next; each action is safe to repeat, so whatever step a crash (kill -9) left, running it
 * again resumes the update or rolls it back: the fort always ends on the old release or the new
 * one, never between. Status reports are queued in the same persisted state and delivered in
 * order until the server takes them: a committed release is never rolled back because a report
 * failed. Each deployment has a budget of step starts, so no step repeats forever.
 */
export function createUpdater(deps: UpdaterDeps) {
  const { log } = deps;
  const now = deps.now ?? (() => new Date());
  const stopSignal = deps.stopSignal;
  const sleep =
    deps.sleep ??
    ((ms: number) =>
      new Promise<void>((r) => {
        const t = setTimeout(done, ms);
        stopSignal?.addEventListener('abort', done, { once: true });
        function done() {
          clearTimeout(t);
          stopSignal?.removeEventListener('abort', done);
          r();
        }
      }));
  const budget = deps.budget ?? DEFAULT_BUDGET;
  let state = deps.initial;
  /** `<deployment>:<step>` whose start this process has counted (once per process: a restart counts again). */
  let counted: string | null = null;
  /** `<deployment>:<step>` whose hooks this process ran. */
  let hooked: string | null = null;
  /** The deployment the server said was aborted (a 409 to one of its reports). */
  let abortedId: string | null = null;

  /** The one place state is written; entering a step counts it and starts its attempts again. */
  const persist = (next: UpdateState): UpdateState => {
    const d = next.deployment;
    const entered =
      d && next.step !== state.step
        ? ({ ...next, deployment: { ...d, attempts: 0, steps: d.steps + 1 } } as UpdateState)
        : next;
    state = deps.state.save(entered);
    log.info({ step: state.step, deploymentId: state.deployment?.id, target: state.deployment?.target }, 'update step');
    return state;
  };
  const io = {
    deps,
    now,
    sleep,
    stopped: () => stopSignal?.aborted === true,
    current: () => state,
    monotonicMs: deps.monotonicMs ?? (() => performance.now()),
    progress: (bytes: number) => {
      if (state.deployment)
        persist({ ...state, deployment: { ...state.deployment, downloaded: bytes } } as UpdateState);
    },
    aborted: (id: string) => abortedId === id,
    markAborted: (id: string) => void (abortedId = id),
  };
  const steps = createSteps(io);

  /** Hooks of the step about to act: before the switch they can stop the update; after it they are only logged. */
  async function runHooks(s: Active): Promise<void> {
    if (!deps.hooks) return;
    const d = s.deployment;
    try {
      await deps.hooks(s.step, {
        deploymentId: d.id,
        artifactName: d.artifactName,
        target: d.target,
        installed: s.installed,
      });
    } catch (err) {
      if (BEFORE_SWITCH.includes(s.step)) throw err;
      log.error(
        { step: s.step, reason: (err as Error).message },
        'update hook failed; the step goes on (the switch is already under way)',
      );
    }
  }

  /**
   * One more start of the current step's action, counted (persisted) once per process, so a
   * step that kills the process (out of memory while unpacking, a hook, a crash of the new
   * release) cannot repeat forever. False when the budget is spent: the deployment was ended.
   */
  function withinBudget(s: Active): boolean {
    const key = `${s.deployment.id}:${s.step}`;
    let d = s.deployment;
    if (counted !== key) {
      counted = key;
      d = persist({ ...s, deployment: { ...d, attempts: d.attempts + 1 } } as UpdateState).deployment!;
    }
    const over =
      d.attempts > budget.stepAttempts
        ? `step ${s.step} started ${d.attempts} times without completing (budget ${budget.stepAttempts})`
        : d.steps > budget.steps
          ? `deployment went through ${d.steps} steps (budget ${budget.steps})`
          : null;
    if (!over) return true;
    persist(giveUp(io, state as Active, `${over}; the deployment manager stopped it`));
    counted = null;
    return false;
  }

  /** The current step's action, then its next state persisted. */
  async function step(): Promise<void> {
    if (state.step === 'idle' || !withinBudget(state)) return;
    const s = state;
    const d = s.deployment;
    if (abortedId === d.id && (BEFORE_SWITCH.includes(s.step) || SWITCHED.includes(s.step))) {
      abortedId = null;
      persist(
        BEFORE_SWITCH.includes(s.step)
          ? { ...failed(io, s, 'aborted', s.reports), lastError: `deployment ${d.id} was aborted on the update server` }
          : rollingBack(io, s, 'aborted'),
      );
      return;
    }
    // Once per step start: a step that waits (self_updating) comes back here without starting again.
    if (hooked !== `${d.id}:${s.step}`) {
      await runHooks(s);
      hooked = `${d.id}:${s.step}`;
    }
    const next = await act(steps, s);
    if (next) persist(next);
  }

  /** Delivers queued reports in order; stops at the first the server does not take. */
  async function deliverReports(): Promise<void> {
    if (!deps.server) return;
    while (state.reports.length > 0) {
      const r = state.reports[0]!;
      try {
        if (r.log) await deps.server.uploadLog(r.deploymentId, r.log);
        await deps.server.reportStatus(r.deploymentId, r.status as DeploymentStatus);
      } catch (err) {
        if (err instanceof FortError && err.code === 'FORT_ERR_DEPLOYMENT_ABORTED') {
          // Only an update not yet committed is rolled back; the report itself is done with.
          if (state.deployment?.id === r.deploymentId && !['committed', 'idle'].includes(state.step))
            abortedId = r.deploymentId;
        } else {
          log.warn(
            { deploymentId: r.deploymentId, status: r.status, reason: (err as Error).message },
            'status report not delivered; retrying later',
          );
          return;
        }
      }
      persist({ ...state, reports: state.reports.slice(1) });
    }
  }

  return {
    get state(): UpdateState {
      return state;
    },
    /** Re-reads the state file: another process (an operator's `install FILE`) may have moved it on. */
    reload(): UpdateState {
      state = deps.state.load();
      return state;
    },
    /**
     * Runs steps until the update is idle again (or a step throws a non-update error, or it
     * reaches a step of `leaveAt`: left for the daemon). Reports go out after every step, so an
     * abort (409) is seen while it can still roll back.
     */
    async runToIdle(o: { leaveAt?: readonly UpdateStep[] } = {}): Promise<void> {
      // What was queued before the first step (the poll's `downloading`) goes out before it acts:
      // the server sees the download under way, and an abort before it starts stops it at once.
      if (state.step !== 'idle') await deliverReports();
      while (state.step !== 'idle' && !stopSignal?.aborted && !o.leaveAt?.includes(state.step)) {
        try {
          await step();
        } catch (err) {
          if (
            !(err instanceof FortError) ||
            !['FORT_ERR_ARTIFACT', 'FORT_ERR_UPDATE_SERVER', 'FORT_ERR_UPDATE_HOOK', 'FORT_ERR_DISK_LOW'].includes(
              err.code,
            ) ||
            !BEFORE_SWITCH.includes(state.step)
          )
            throw err;
          log.error({ deploymentId: state.deployment?.id, reason: err.message }, 'update failed');
          persist(failed(io, state, err.message));
        }
        await deliverReports();
      }
    },
    /** Asks the server for a deployment when idle; starts it (persisted) when there is one. */
    async poll(
      artifactFileFor: (deploymentId: string) => string,
    ): Promise<'started' | 'nothing' | 'already-installed' | 'busy'> {
      if (state.step !== 'idle') return 'busy';
      if (!deps.server) return 'nothing';
      const next = await deps.server.nextDeployment(state.installedArtifact ?? 'unknown');
      if (!next) return 'nothing';
      const deployment: DeploymentState = {
        id: next.id,
        artifactName: next.artifact.artifact_name,
        source: 'server',
        uri: next.artifact.source.uri,
        artifactFile: artifactFileFor(next.id),
        downloaded: 0,
        payload: null,
        target: null,
        deadline: null,
        reason: null,
        attempts: 0,
        steps: 0,
      };
      if (next.artifact.artifact_name === state.installedArtifact) {
        persist({ ...state, reports: [...state.reports, { deploymentId: next.id, status: 'already-installed' }] });
        return 'already-installed';
      }
      persist({
        ...state,
        step: 'downloading',
        deployment,
        lastError: null,
        reports: [...state.reports, { deploymentId: next.id, status: 'downloading' }],
      });
      return 'started';
    },
    /** `install FILE`: the same verification and install path, for a site without a server. */
    startFromFile(file: string): void {
      if (state.step !== 'idle') throw new FortError('FORT_ERR_BUSY', `an update is in progress (${state.step})`);
      persist({
        ...state,
        step: 'verifying',
        lastError: null,
        deployment: {
          id: `file:${now().toISOString()}`,
          artifactName: basename(file),
          source: 'file',
          uri: null,
          artifactFile: file,
          downloaded: 0,
          payload: null,
          target: null,
          deadline: null,
          reason: null,
          attempts: 0,
          steps: 0,
        },
      });
    },
    /**
     * `rollback`: back to the previous release through the same switch and health check as an
     * update (a previous release that does not come up is itself rolled back).
     */
    startRollback(): string {
      if (state.step !== 'idle') throw new FortError('FORT_ERR_BUSY', `an update is in progress (${state.step})`);
      if (!state.previous)
        throw new FortError('FORT_ERR_NOT_FOUND', 'there is no previous release to roll back to', { fatal: false });
      const target = state.previous;
      persist({
        ...state,
        step: 'switching',
        lastError: null,
        deployment: {
          id: `rollback:${now().toISOString()}`,
          artifactName: state.previousArtifact ?? `fort-${target}`,
          source: 'operator',
          uri: null,
          artifactFile: '',
          downloaded: 0,
          payload: null,
          target,
          deadline: null,
          reason: null,
          attempts: 0,
          steps: 0,
        },
      });
      return target;
    },
    deliverReports,
  };
}
export type Updater = ReturnType<typeof createUpdater>;
