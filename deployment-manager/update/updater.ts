import { basename } from 'node:path';
import { FortError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { RunHooks } from './hooks.js';
import type { Deployment, DeploymentStatus, LogMessage } from '../mender/client.js';
import type { DeploymentState, PendingReport, StateFile, UpdateState, UpdateStep } from './state.js';

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
  /** Streams the artifact into `d.artifactFile`, resuming from what is there. */
  download(d: DeploymentState, onProgress: (bytes: number) => void): Promise<void>;
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
  log: Logger;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

/** Steps after which the new release may already be running: an abort rolls back from here. */
const SWITCHED: readonly UpdateStep[] = ['switching', 'health_checking'];
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
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let state = deps.initial;
  /** The deployment the server said was aborted (a 409 to one of its reports). */
  let abortedId: string | null = null;

  const persist = (next: Partial<UpdateState>): UpdateState => {
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
    const d = state.deployment;
    if (d && state.step !== 'idle') await runHooks(d);
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
    switch (state.step) {
      case 'idle':
        return;
      case 'downloading': {
        let last = d!.downloaded;
        await deps.download(d!, (bytes) => {
          // Persisted now and then, so a restart knows where it was (the file size is the truth).
          if (bytes - last >= 1024 * 1024) {
            last = bytes;
            persist({ deployment: withDeployment({ downloaded: bytes }) });
          }
        });
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
        if (ok) {
          const replaced = state.installed !== d!.target;
          persist({
            step: 'committed',
            installed: d!.target,
            installedArtifact: d!.artifactName,
            previous: replaced ? state.installed : state.previous,
            previousArtifact: replaced ? state.installedArtifact : state.previousArtifact,
            lastError: null,
            reports: report('success'),
          });
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
          if (!(await waitRunning(back, d!.deadline!)))
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

  async function waitRunning(version: string, deadline: string): Promise<boolean> {
    const until = Date.parse(deadline);
    for (;;) {
      if (await deps.agent.runs(version).catch(() => false)) return true;
      if (now().getTime() >= until) return false;
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
      while (state.step !== 'idle') {
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
        },
      });
      return target;
    },
    deliverReports,
  };
}
export type Updater = ReturnType<typeof createUpdater>;
