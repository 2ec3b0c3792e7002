import { basename } from 'node:path';
import { FortError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { RunHooks } from './hooks.js';
import type { Deployment, DeploymentStatus, LogMessage } from '../mender/client.js';
import type { DeploymentState, PendingReport, StateFile, UpdateState, UpdateStep } from './state.js';
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
  /** Verifies the whole artifact; resolves with the verified payload (release tarball) file. */
  verify(d: DeploymentState): Promise<{ artifactName: string; payload: string }>;
  /** Unpacks a verified release tarball under releases/<version>. */
  unpack(payload: string): Promise<{ version: string }>;
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
  /** While downloading, `downloading` is reported again this often: a 409 (aborted) stops the download. */
  abortCheckMs?: number;
  budget?: UpdateBudget;
  selfUpdate?: SelfUpdateLink | undefined;
  /** Aborted when the process stops: waits end, no further step starts. */
  stopSignal?: AbortSignal;
  log: Logger;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

/** Steps after which the new release may already be running: an abort rolls back from here. */
const SWITCHED: readonly UpdateStep[] = ['switching', 'health_checking', 'self_updating'];
const BEFORE_SWITCH: readonly UpdateStep[] = ['downloading', 'verifying', 'installing'];

/**
 * The update state machine. The persisted `step` names the action to do next; each action is
 * safe to repeat, so whatever step a crash (kill -9) left, running it again resumes the update
 * or rolls it back: the fort always ends on the old release or the new one, never between.
 * Status reports are queued in the same persisted state and delivered in order until the
 * server takes them: a committed release is never rolled back because a report failed.
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
  /** This process proved itself to root for this deployment. */
  let proved: string | null = null;
  /** The deployment the server said was aborted (a 409 to one of its reports). */
  let abortedId: string | null = null;

  const persist = (next: Partial<UpdateState>): UpdateState => {
    const d = next.deployment === undefined ? state.deployment : next.deployment;
    if (d && next.step !== undefined && next.step !== state.step)
      next = { ...next, deployment: { ...d, attempts: 0, steps: d.steps + 1 } };
    state = deps.state.save({ ...state, ...next });
    log.info({ step: state.step, deploymentId: state.deployment?.id, target: state.deployment?.target }, 'update step');
    return state;
  };
  const report = (status: DeploymentStatus, logLines?: LogMessage[]): PendingReport[] =>
    state.deployment && state.deployment.source === 'server'
      ? [...state.reports, { deploymentId: state.deployment.id, status, ...(logLines ? { log: logLines } : {}) }]
      : state.reports;
  const line = (level: LogMessage['level'], message: string): LogMessage => ({
    timestamp: now().toISOString(),
    level,
    message,
  });
  const withDeployment = (d: Partial<DeploymentState>) => ({ ...state.deployment!, ...d });

  function fail(reason: string): void {
    log.error({ deploymentId: state.deployment?.id, reason }, 'update failed');
    persist({
      step: 'failed',
      lastError: reason,
      deployment: withDeployment({ reason }),
      reports: report('failure', [line('error', reason)]),
    });
  }

  /** Hooks of the step about to act: before the switch they can stop the update; after it they are only logged. */
  async function runHooks(d: DeploymentState): Promise<void> {
    if (!deps.hooks) return;
    try {
      await deps.hooks(state.step, {
        deploymentId: d.id,
        artifactName: d.artifactName,
        target: d.target,
        installed: state.installed,
      });
    } catch (err) {
      if (BEFORE_SWITCH.includes(state.step)) throw err;
      log.error(
        { step: state.step, reason: (err as Error).message },
        'update hook failed; the step goes on (the switch is already under way)',
      );
    }
  }

  /** The action of the current step; persists the next step before returning. */
  async function act(): Promise<void> {
    if (state.deployment && state.step !== 'idle' && !withinBudget(state.deployment)) return;
    const d = state.deployment;
    const aborted = d !== null && abortedId === d.id;
    if (aborted && BEFORE_SWITCH.includes(state.step)) {
      abortedId = null;
      persist({
        step: 'failed',
        lastError: `deployment ${d.id} was aborted on the update server`,
        deployment: withDeployment({ reason: 'aborted' }),
      });
      return;
    }
    if (aborted && SWITCHED.includes(state.step)) {
      abortedId = null;
      persist({
        step: 'rolling_back',
        deployment: withDeployment({
          reason: 'aborted',
          deadline: new Date(now().getTime() + deps.healthDeadlineMs).toISOString(),
        }),
      });
      return;
    }
    // Once per step start: a step that waits (self_updating) comes back here without starting again.
    if (d && state.step !== 'idle' && hooked !== `${d.id}:${state.step}`) {
      await runHooks(d);
      hooked = `${d.id}:${state.step}`;
    }
    switch (state.step) {
      case 'idle':
        return;
      case 'downloading': {
        let last = d!.downloaded;
        const stop = new AbortController();
        const watching = watchForAbort(d!, stop);
        try {
          await deps.download(
            d!,
            (bytes) => {
              // Persisted now and then, so a restart knows where it was (the file size is the truth).
              if (bytes - last >= 1024 * 1024) {
                last = bytes;
                persist({ deployment: withDeployment({ downloaded: bytes }) });
              }
            },
            stopSignal ? AbortSignal.any([stop.signal, stopSignal]) : stop.signal,
          );
        } catch (err) {
          // Aborted at the server while downloading: the next step start fails it (above).
          if (abortedId === d!.id || stopSignal?.aborted) return;
          throw err;
        } finally {
          watching.stop();
        }
        if (abortedId === d!.id || stopSignal?.aborted) return;
        persist({ step: 'verifying' });
        return;
      }
      case 'verifying': {
        const v = await deps.verify(d!);
        // An operator's file is whatever artifact it is; a deployment names the one it is for.
        if (d!.source === 'server' && v.artifactName !== d!.artifactName)
          throw new FortError(
            'FORT_ERR_ARTIFACT',
            `artifact is named ${v.artifactName}, the deployment is for ${d!.artifactName}`,
            { fatal: false },
          );
        persist({
          step: 'installing',
          deployment: withDeployment({ payload: v.payload, artifactName: v.artifactName }),
          reports: report('installing'),
        });
        return;
      }
      case 'installing': {
        const { version } = await deps.unpack(d!.payload!);
        persist({ step: 'switching', deployment: withDeployment({ target: version }) });
        return;
      }
      case 'switching':
        deps.switchTo(d!.target!);
        await deps.agent.restart();
        // Reported once the switch is done: a 409 to it (aborted meanwhile) rolls back.
        persist({
          step: 'health_checking',
          deployment: withDeployment({ deadline: new Date(now().getTime() + deps.healthDeadlineMs).toISOString() }),
          reports: report('rebooting'),
        });
        return;
      case 'health_checking': {
        const ok = await waitRunning(d!.target!, d!.deadline!);
        if (stopSignal?.aborted) return;
        const self = deps.selfUpdate;
        if (ok && self && self.ownVersion !== d!.target) {
          // The agent runs the new release; now the deployment manager (root installs it).
          persist({
            step: 'self_updating',
            deployment: withDeployment({ deadline: new Date(now().getTime() + self.answerMs).toISOString() }),
          });
        } else if (ok) {
          commit(d!);
        } else {
          const reason = `the agent did not report healthy on ${d!.target} within ${deps.healthDeadlineMs / 1000} s`;
          persist({
            step: 'rolling_back',
            lastError: reason,
            deployment: withDeployment({
              reason,
              deadline: new Date(now().getTime() + deps.healthDeadlineMs).toISOString(),
            }),
          });
        }
        return;
      }
      case 'self_updating':
        await selfUpdating(d!, deps.selfUpdate);
        return;
      case 'committed':
        deps.discard(d!);
        deps.keepReleases([state.installed, state.previous].filter((v): v is string => v !== null));
        persist({ step: 'idle', deployment: null });
        return;
      case 'rolling_back': {
        const back = state.installed;
        if (back) {
          deps.switchTo(back);
          await deps.agent.restart();
          const ok = await waitRunning(back, d!.deadline!);
          if (stopSignal?.aborted) return;
          if (!ok)
            log.error({ release: back }, 'the previous release did not report healthy either; leaving it in place');
        }
        const reason = d!.reason ?? 'rolled back';
        persist({
          step: 'failed',
          lastError: reason,
          reports:
            d!.reason === 'aborted'
              ? state.reports
              : report('failure', [line('error', reason), line('info', `rolled back to ${back ?? 'nothing'}`)]),
        });
        return;
      }
      case 'failed':
        if (d) deps.discard(d);
        persist({ step: 'idle', deployment: null });
        return;
    }
  }

  function commit(d: DeploymentState): void {
    const replaced = state.installed !== d.target;
    persist({
      step: 'committed',
      installed: d.target,
      installedArtifact: d.artifactName,
      previous: replaced ? state.installed : state.previous,
      previousArtifact: replaced ? state.installedArtifact : state.previousArtifact,
      lastError: null,
      reports: report('success'),
    });
  }

  /** Rolls back (after the switch) or fails (before it), saying why; the way out of a step that never completes. */
  function giveUp(reason: string): void {
    if (SWITCHED.includes(state.step))
      persist({
        step: 'rolling_back',
        lastError: reason,
        deployment: withDeployment({
          reason,
          deadline: new Date(now().getTime() + deps.healthDeadlineMs).toISOString(),
        }),
      });
    else if (state.step === 'rolling_back' || state.step === 'committed') {
      // The release it ends on is already there (or nothing better can be done): stop here.
      log.error({ step: state.step, reason }, 'update step abandoned');
      persist({
        step: 'idle',
        deployment: null,
        lastError: reason,
        reports: state.step === 'rolling_back' ? report('failure', [line('error', reason)]) : state.reports,
      });
    } else if (state.step === 'failed') persist({ step: 'idle', deployment: null });
    else fail(reason);
  }

  /**
   * One more start of the current step's action, counted (persisted) once per process, so a
   * step that kills the process (out of memory while unpacking, a hook, a crash of the new
   * release) cannot repeat forever. False when the budget is spent: the deployment was ended.
   */
  function withinBudget(d: DeploymentState): boolean {
    const key = `${d.id}:${state.step}`;
    if (counted !== key) {
      counted = key;
      persist({ deployment: { ...d, attempts: d.attempts + 1 } });
    }
    const now = state.deployment!;
    const over =
      now.attempts > budget.stepAttempts
        ? `step ${state.step} started ${now.attempts} times without completing (budget ${budget.stepAttempts})`
        : now.steps > budget.steps
          ? `deployment went through ${now.steps} steps (budget ${budget.steps})`
          : null;
    if (!over) return true;
    giveUp(`${over}; the deployment manager stopped it`);
    counted = null;
    return false;
  }

  /**
   * `self_updating`: the old deployment manager asks root and waits for its answer (root
   * restarts the unit on the new version); the new one proves itself and commits once root has.
   * Waiting persists nothing: a restart simply comes back here.
   */
  async function selfUpdating(d: DeploymentState, self: SelfUpdateLink | undefined): Promise<void> {
    const st = self?.status(d.id);
    if (!self) {
      giveUp('the deployment manager cannot update itself here ([updates.self_update] is not configured)');
      return;
    }
    if (self.ownVersion === d.target) {
      // No word from root about it: this release was put in place otherwise; both run it.
      if (!st || st.step === 'committed') return commit(d);
      if (st?.step === 'proving' && proved !== d.id) {
        await self.prove(d);
        proved = d.id;
      }
      // rolled_back: root restarts the unit on the previous version, which rolls the agent back.
      await sleep(deps.healthPollMs);
      return;
    }
    if (st?.step === 'refused' || st?.step === 'rolled_back') {
      giveUp(
        `the deployment manager ${d.target} ${st.step === 'refused' ? 'was refused' : 'was rolled back'} by root: ${st.reason ?? 'no reason given'}`,
      );
      return;
    }
    if (!st) {
      if (now().getTime() >= Date.parse(d.deadline!)) {
        giveUp(
          `root's self-update service did not answer within ${self.answerMs / 1000} s (is fort-dm-self-update.path enabled?)`,
        );
        return;
      }
      self.request(d, d.target!);
    }
    await sleep(deps.healthPollMs);
  }

  /** While downloading: reports `downloading` again now and then; a 409 (aborted at the server) stops the download. */
  function watchForAbort(d: DeploymentState, stop: AbortController): { stop(): void } {
    const server = deps.server;
    if (!server || d.source !== 'server' || !deps.abortCheckMs) return { stop: () => undefined };
    const timer = setInterval(() => {
      server.reportStatus(d.id, 'downloading').catch((err: unknown) => {
        if (err instanceof FortError && err.code === 'FORT_ERR_DEPLOYMENT_ABORTED') {
          abortedId = d.id;
          stop.abort();
        }
      });
    }, deps.abortCheckMs);
    return { stop: () => clearInterval(timer) };
  }

  async function waitRunning(version: string, deadline: string): Promise<boolean> {
    const until = Date.parse(deadline);
    for (;;) {
      if (await deps.agent.runs(version).catch(() => false)) return true;
      if (now().getTime() >= until || stopSignal?.aborted) return false;
      await sleep(deps.healthPollMs);
    }
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
      persist({ reports: state.reports.slice(1) });
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
     * Runs steps until the update is idle again (or a step throws a non-update error). Reports
     * go out after every step, so an abort (409) is seen while it can still roll back.
     */
    async runToIdle(): Promise<void> {
      while (state.step !== 'idle' && !stopSignal?.aborted) {
        try {
          await act();
        } catch (err) {
          if (
            !(err instanceof FortError) ||
            !['FORT_ERR_ARTIFACT', 'FORT_ERR_UPDATE_SERVER', 'FORT_ERR_UPDATE_HOOK'].includes(err.code) ||
            !BEFORE_SWITCH.includes(state.step)
          )
            throw err;
          fail(err.message);
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
        persist({ reports: [...state.reports, { deploymentId: next.id, status: 'already-installed' }] });
        return 'already-installed';
      }
      persist({
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
