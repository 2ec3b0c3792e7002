import { FortError } from '../../lib/errors.js';
import type { DeploymentStatus, LogMessage } from '../mender/client.js';
import type { DeploymentState, PendingReport, StateAt, UpdateState, UpdateStep } from './state.js';
import type { UpdaterDeps } from './updater.js';

/** A state with a deployment under way (every step but idle). */
export type Active = Exclude<UpdateState, { step: 'idle' }>;
/** What a step's action returns: the next state, to persist before anything else acts; `undefined`: nothing changed (a wait). */
export type Next = UpdateState | undefined;

/** Steps after which the new release may already be running: an abort rolls back from here. */
export const SWITCHED: readonly UpdateStep[] = ['switching', 'health_checking', 'self_updating'];
export const BEFORE_SWITCH: readonly UpdateStep[] = ['downloading', 'verifying', 'installing'];

/** What the steps need of the updater's loop beyond its deps. */
export interface StepIo {
  deps: UpdaterDeps;
  now(): Date;
  sleep(ms: number): Promise<void>;
  stopped(): boolean;
  /** The state as persisted now (download progress persists while a step acts). */
  current(): UpdateState;
  /** Milliseconds on a monotonic clock: waits and cadences within this process, immune to clock jumps. */
  monotonicMs(): number;
  /** Persists download progress (shown by update-state; a restart resumes from the file's size). */
  progress(bytes: number): void;
  /** Whether the server said this deployment was aborted (a 409 to one of its reports). */
  aborted(deploymentId: string): boolean;
  markAborted(deploymentId: string): void;
}

/** Download progress is persisted at most this often. */
const PROGRESS_EVERY_MS = 1000;

const iso = (io: StepIo, inMs: number) => new Date(io.now().getTime() + inMs).toISOString();
const line = (io: StepIo, level: LogMessage['level'], message: string): LogMessage => ({
  timestamp: io.now().toISOString(),
  level,
  message,
});

/** The report queue with one more status for a server deployment (operator updates report nothing). */
export function report(s: UpdateState, status: DeploymentStatus, lines?: LogMessage[]): PendingReport[] {
  const d = s.deployment;
  return d && d.source === 'server'
    ? [...s.reports, { deploymentId: d.id, status, ...(lines ? { log: lines } : {}) }]
    : s.reports;
}

export function failed(
  io: StepIo,
  s: Active,
  reason: string,
  reports = report(s, 'failure', [line(io, 'error', reason)]),
) {
  return {
    ...s,
    step: 'failed',
    lastError: reason,
    deployment: { ...s.deployment, reason },
    reports,
  } satisfies StateAt<'failed'>;
}

export function rollingBack(io: StepIo, s: Active, reason: string) {
  return {
    ...s,
    step: 'rolling_back',
    lastError: reason === 'aborted' ? s.lastError : reason,
    deployment: { ...s.deployment, reason, deadline: iso(io, io.deps.healthDeadlineMs) },
  } satisfies StateAt<'rolling_back'>;
}

function committed(s: StateAt<'health_checking' | 'self_updating'>): StateAt<'committed'> {
  const d = s.deployment;
  const replaced = s.installed !== d.target;
  return {
    ...s,
    step: 'committed',
    installed: d.target,
    installedArtifact: d.artifactName,
    previous: replaced ? s.installed : s.previous,
    previousArtifact: replaced ? s.installedArtifact : s.previousArtifact,
    lastError: null,
    reports: report(s, 'success'),
  };
}

/**
 * The way out of a step that never completes (its budget spent, root said no): after the switch
 * the fort rolls back, before it the deployment fails; a rollback or clean-up that cannot end
 * stops where it is, with a report.
 */
export function giveUp(io: StepIo, s: Active, reason: string): UpdateState {
  if (SWITCHED.includes(s.step)) return rollingBack(io, s, reason);
  if (s.step === 'rolling_back' || s.step === 'committed') {
    io.deps.log.error({ step: s.step, reason }, 'update step abandoned');
    const reports = s.step === 'rolling_back' ? report(s, 'failure', [line(io, 'error', reason)]) : s.reports;
    return { ...s, step: 'idle', deployment: null, lastError: reason, reports };
  }
  if (s.step === 'failed') return { ...s, step: 'idle', deployment: null };
  return failed(io, s, reason);
}

async function waitRunning(io: StepIo, version: string, deadline: string): Promise<boolean> {
  // The deadline is persisted on the wall clock (a restart keeps it); within this process what is
  // left of it is measured on the monotonic clock: a host clock jumping a day forward must not
  // roll back a good release, nor one set back stretch the wait.
  const until = io.monotonicMs() + Math.max(0, Date.parse(deadline) - io.now().getTime());
  for (;;) {
    if (await io.deps.agent.runs(version).catch(() => false)) return true;
    if (io.monotonicMs() >= until || io.stopped()) return false;
    await io.sleep(io.deps.healthPollMs);
  }
}

/**
 * No room to download or unpack the artifact: the deployment waits for space instead of failing
 * (whoever fills the disk is rarely the update's fault), looking again every `diskRetryMs`,
 * until `diskWaitMs` after the first refusal (persisted: a restart keeps counting); then it fails
 * with the reason. Meanwhile `downloading` is reported again, so an abort at the server ends it.
 */
async function waitForDisk(io: StepIo, s: StateAt<'downloading' | 'verifying'>, err: FortError): Promise<Next> {
  const { deps } = io;
  const d = s.deployment;
  const deadline = d.deadline ?? iso(io, deps.diskWaitMs);
  if (io.now().getTime() >= Date.parse(deadline))
    throw new FortError('FORT_ERR_DISK_LOW', `${err.message}; no room after waiting ${deps.diskWaitMs / 60_000} min`, {
      fatal: false,
    });
  if (!d.deadline)
    deps.log.warn(
      { deploymentId: d.id, reason: err.message, until: deadline },
      'update waits for disk space; it goes on by itself once there is room',
    );
  if (deps.server && d.source === 'server')
    await deps.server.reportStatus(d.id, 'downloading').catch((e: unknown) => {
      if (e instanceof FortError && e.code === 'FORT_ERR_DEPLOYMENT_ABORTED') io.markAborted(d.id);
    });
  if (!io.aborted(d.id)) await io.sleep(deps.diskRetryMs);
  const now = io.current() as typeof s;
  return { ...now, lastError: `waiting for disk space: ${err.message}`, deployment: { ...now.deployment, deadline } };
}

const isDiskLow = (err: unknown): err is FortError => err instanceof FortError && err.code === 'FORT_ERR_DISK_LOW';

/** While downloading: reports `downloading` again now and then; a 409 (aborted at the server) stops the download. */
function watchForAbort(io: StepIo, d: DeploymentState, stop: AbortController): { stop(): void } {
  const { server, abortCheckMs } = io.deps;
  if (!server || d.source !== 'server' || !abortCheckMs) return { stop: () => undefined };
  const timer = setInterval(() => {
    server.reportStatus(d.id, 'downloading').catch((err: unknown) => {
      if (err instanceof FortError && err.code === 'FORT_ERR_DEPLOYMENT_ABORTED') {
        io.markAborted(d.id);
        stop.abort();
      }
    });
  }, abortCheckMs);
  return { stop: () => clearInterval(timer) };
}

/**
 * One action per step, `step(state, io) → next state`, after the Mender client's states: each
 * takes the state of its step (typed: installing has a payload, health_checking a deadline), acts,
 * and returns the state to persist before the next action. Every action is safe to repeat: a
 * crash leaves the step persisted, and running it again resumes or rolls back.
 */
export function createSteps(io: StepIo) {
  const { deps } = io;
  /** The new deployment manager proved itself to root (once per process and deployment). */
  let proved: string | null = null;
  return {
    async downloading(s: StateAt<'downloading'>): Promise<Next> {
      const d = s.deployment;
      let last = d.downloaded;
      let lastAt = io.monotonicMs();
      const stop = new AbortController();
      const watching = watchForAbort(io, d, stop);
      const signal = deps.stopSignal ? AbortSignal.any([stop.signal, deps.stopSignal]) : stop.signal;
      try {
        await deps.download(
          d,
          (bytes) => {
            // Persisting is a synchronous fsync, rename and directory fsync on the event loop the
            // download runs on: once a second at most (every MiB, it was 200 of them in the
            // critical path of a 200 MB update). Only what update-state shows: a restart resumes
            // from the file's size.
            if (bytes - last < 1024 * 1024) return;
            const at = io.monotonicMs();
            if (at - lastAt < PROGRESS_EVERY_MS) return;
            last = bytes;
            lastAt = at;
            io.progress(bytes);
          },
          signal,
        );
      } catch (err) {
        // Aborted at the server while downloading: the loop fails it before the next action.
        if (io.aborted(d.id) || io.stopped()) return undefined;
        if (isDiskLow(err)) return waitForDisk(io, io.current() as StateAt<'downloading'>, err);
        throw err;
      } finally {
        watching.stop();
      }
      if (io.aborted(d.id) || io.stopped()) return undefined;
      const done = io.current() as StateAt<'downloading'>;
      return { ...done, step: 'verifying', lastError: null, deployment: { ...done.deployment, deadline: null } };
    },

    async verifying(s: StateAt<'verifying'>): Promise<Next> {
      const d = s.deployment;
      let v: Awaited<ReturnType<typeof deps.verify>>;
      try {
        v = await deps.verify(d);
      } catch (err) {
        if (isDiskLow(err)) return waitForDisk(io, s, err);
        throw err;
      }
      // An operator's file is whatever artifact it is; a deployment names the one it is for.
      if (d.source === 'server' && v.artifactName !== d.artifactName)
        throw new FortError(
          'FORT_ERR_ARTIFACT',
          `artifact is named ${v.artifactName}, the deployment is for ${d.artifactName}`,
          { fatal: false },
        );
      return {
        ...s,
        step: 'installing',
        lastError: null,
        deployment: { ...d, payload: v.payload, artifactName: v.artifactName, deadline: null },
        reports: report(s, 'installing'),
      };
    },

    async installing(s: StateAt<'installing'>): Promise<Next> {
      const { version } = await deps.install(s.deployment);
      return { ...s, step: 'switching', deployment: { ...s.deployment, target: version } };
    },

    async switching(s: StateAt<'switching'>): Promise<Next> {
      deps.switchTo(s.deployment.target);
      await deps.agent.restart();
      // Reported once the switch is done: a 409 to it (aborted meanwhile) rolls back.
      return {
        ...s,
        step: 'health_checking',
        deployment: { ...s.deployment, deadline: iso(io, deps.healthDeadlineMs) },
        reports: report(s, 'rebooting'),
      };
    },

    async health_checking(s: StateAt<'health_checking'>): Promise<Next> {
      const d = s.deployment;
      const ok = await waitRunning(io, d.target, d.deadline);
      if (io.stopped()) return undefined;
      if (!ok)
        return rollingBack(
          io,
          s,
          `the agent did not report healthy on ${d.target} within ${deps.healthDeadlineMs / 1000} s`,
        );
      const self = deps.selfUpdate;
      // The agent runs the new release; now the deployment manager (root installs it).
      if (self && self.ownVersion !== d.target)
        return { ...s, step: 'self_updating', deployment: { ...d, deadline: iso(io, self.answerMs) } };
      return committed(s);
    },

    /**
     * The old deployment manager asks root and waits for its answer (root restarts the unit on
     * the new version); the new one proves itself and commits once root has. Waiting persists
     * nothing: a restart simply comes back here.
     */
    async self_updating(s: StateAt<'self_updating'>): Promise<Next> {
      const d = s.deployment;
      const self = deps.selfUpdate;
      if (!self)
        return giveUp(
          io,
          s,
          'the deployment manager cannot update itself here ([updates.self_update] is not configured)',
        );
      const st = self.status(d.id);
      if (self.ownVersion === d.target) {
        // No word from root about it: this release was put in place otherwise; both run it.
        if (!st || st.step === 'committed') return committed(s);
        if (st.step === 'proving' && proved !== d.id) {
          await self.prove(d);
          proved = d.id;
        }
        // rolled_back: root restarts the unit on the previous version, which rolls the agent back.
        await io.sleep(deps.healthPollMs);
        return undefined;
      }
      if (st?.step === 'refused' || st?.step === 'rolled_back')
        return giveUp(
          io,
          s,
          `the deployment manager ${d.target} ${st.step === 'refused' ? 'was refused' : 'was rolled back'} by root: ${st.reason ?? 'no reason given'}`,
        );
      if (!st) {
        if (io.now().getTime() >= Date.parse(d.deadline))
          return giveUp(
            io,
            s,
            `root's self-update service did not answer within ${self.answerMs / 1000} s (is fort-dm-self-update.path enabled?)`,
          );
        self.request(d, d.target);
      }
      await io.sleep(deps.healthPollMs);
      return undefined;
    },

    async committed(s: StateAt<'committed'>): Promise<Next> {
      deps.discard(s.deployment);
      deps.keepReleases([s.installed, s.previous].filter((v): v is string => v !== null));
      return { ...s, step: 'idle', deployment: null };
    },

    async rolling_back(s: StateAt<'rolling_back'>): Promise<Next> {
      const d = s.deployment;
      const back = s.installed;
      if (back) {
        deps.switchTo(back);
        await deps.agent.restart();
        const ok = await waitRunning(io, back, d.deadline);
        if (io.stopped()) return undefined;
        if (!ok)
          deps.log.error({ release: back }, 'the previous release did not report healthy either; leaving it in place');
      }
      const reports =
        d.reason === 'aborted'
          ? s.reports
          : report(s, 'failure', [
              line(io, 'error', d.reason),
              line(io, 'info', `rolled back to ${back ?? 'nothing'}`),
            ]);
      return { ...s, step: 'failed', lastError: d.reason, reports };
    },

    async failed(s: StateAt<'failed'>): Promise<Next> {
      deps.discard(s.deployment);
      return { ...s, step: 'idle', deployment: null };
    },
  };
}
export type Steps = ReturnType<typeof createSteps>;

/** Runs the action of the state's step. */
export function act(steps: Steps, s: Active): Promise<Next> {
  switch (s.step) {
    case 'downloading':
      return steps.downloading(s);
    case 'verifying':
      return steps.verifying(s);
    case 'installing':
      return steps.installing(s);
    case 'switching':
      return steps.switching(s);
    case 'health_checking':
      return steps.health_checking(s);
    case 'self_updating':
      return steps.self_updating(s);
    case 'committed':
      return steps.committed(s);
    case 'rolling_back':
      return steps.rolling_back(s);
    case 'failed':
      return steps.failed(s);
  }
}
