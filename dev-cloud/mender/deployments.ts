import { randomUUID } from 'node:crypto';
import type { ArtifactRecord, ArtifactStore } from './artifacts.js';
import { MenderOpError } from './errors.js';

/** What a device may report (`PUT .../deployments/<id>/status`). */
export const DEVICE_REPORTED_STATUSES = [
  'downloading',
  'pause_before_installing',
  'installing',
  'pause_before_rebooting',
  'rebooting',
  'pause_before_committing',
  'success',
  'failure',
  'already-installed',
] as const;
export type ReportedStatus = (typeof DEVICE_REPORTED_STATUSES)[number];
/** `pending` until the device reports; `noartifact` when no artifact of that name fits its device type; `aborted` by an operator. */
export type DeviceDeploymentStatus = ReportedStatus | 'pending' | 'noartifact' | 'aborted';

const FINISHED = new Set<DeviceDeploymentStatus>(['success', 'failure', 'already-installed', 'noartifact', 'aborted']);
export const isFinished = (s: DeviceDeploymentStatus) => FINISHED.has(s);

export interface LogMessage {
  timestamp: string;
  level: string;
  message: string;
}

/** One device's part of a deployment. */
export interface DeviceDeployment {
  deviceId: string;
  status: DeviceDeploymentStatus;
  substate: string | null;
  /** Every change, oldest first, from `pending` at creation. */
  history: { status: DeviceDeploymentStatus; substate: string | null; at: string }[];
  /** The artifact the device was sent (set at its first `next`). */
  artifactId: string | null;
  /** The last log the device uploaded. */
  log: LogMessage[];
  finishedAt: string | null;
}

export interface DeploymentRecord {
  id: string;
  artifactName: string;
  createdAt: string;
  /** pending: no device started; finished: every device finished; else inprogress. */
  status: 'pending' | 'inprogress' | 'finished';
  aborted: boolean;
  devices: DeviceDeployment[];
}

export interface DeploymentBook {
  create(artifactName: string, deviceIds: string[]): DeploymentRecord;
  abort(id: string): DeploymentRecord;
  list(): DeploymentRecord[];
  get(id: string): DeploymentRecord | undefined;
  /** The oldest unfinished deployment of this device that has an artifact for its device type. */
  next(deviceId: string, deviceType: string): { deployment: DeploymentRecord; artifact: ArtifactRecord } | undefined;
  /** A device's status report: 404 not its deployment, 409 aborted (or finished with another status). */
  report(id: string, deviceId: string, status: ReportedStatus, substate: string | null): void;
  storeLog(id: string, deviceId: string, messages: LogMessage[]): void;
}

function overall(d: DeploymentRecord): DeploymentRecord['status'] {
  if (d.devices.every((x) => isFinished(x.status))) return 'finished';
  return d.devices.every((x) => x.status === 'pending') ? 'pending' : 'inprogress';
}

export function createDeploymentBook(deps: {
  artifacts: ArtifactStore;
  now: () => Date;
  changed: () => void;
}): DeploymentBook {
  const deployments: DeploymentRecord[] = [];
  const at = () => deps.now().toISOString();

  function set(
    dep: DeploymentRecord,
    dd: DeviceDeployment,
    status: DeviceDeploymentStatus,
    substate: string | null = null,
  ) {
    const when = at();
    dd.status = status;
    dd.substate = substate;
    dd.history.push({ status, substate, at: when });
    if (isFinished(status)) dd.finishedAt = when;
    dep.status = overall(dep);
    deps.changed();
  }

  function mine(id: string, deviceId: string) {
    const dep = deployments.find((d) => d.id === id);
    const dd = dep?.devices.find((x) => x.deviceId === deviceId);
    if (!dep || !dd) throw new MenderOpError('not_found', `no deployment ${id} for this device`);
    return { dep, dd };
  }

  return {
    create(artifactName, deviceIds) {
      if (deps.artifacts.byName(artifactName).length === 0)
        throw new MenderOpError('not_found', `no artifact named ${artifactName}`);
      if (deviceIds.length === 0) throw new MenderOpError('bad_request', 'a deployment needs at least one device');
      const created = at();
      const dep: DeploymentRecord = {
        id: randomUUID(),
        artifactName,
        createdAt: created,
        status: 'pending',
        aborted: false,
        devices: [...new Set(deviceIds)].map((deviceId) => ({
          deviceId,
          status: 'pending',
          substate: null,
          history: [{ status: 'pending', substate: null, at: created }],
          artifactId: null,
          log: [],
          finishedAt: null,
        })),
      };
      deployments.push(dep);
      deps.changed();
      return dep;
    },
    abort(id) {
      const dep = deployments.find((d) => d.id === id);
      if (!dep) throw new MenderOpError('not_found', `no deployment ${id}`);
      if (dep.status === 'finished') throw new MenderOpError('conflict', `deployment ${id} has already finished`);
      dep.aborted = true;
      for (const dd of dep.devices) if (!isFinished(dd.status)) set(dep, dd, 'aborted');
      return dep;
    },
    list: () => [...deployments],
    get: (id) => deployments.find((d) => d.id === id),
    next(deviceId, deviceType) {
      for (const dep of deployments) {
        const dd = dep.devices.find((x) => x.deviceId === deviceId);
        if (!dd || isFinished(dd.status)) continue;
        const artifact =
          (dd.artifactId && deps.artifacts.get(dd.artifactId)) || deps.artifacts.findFor(dep.artifactName, deviceType);
        if (!artifact || !artifact.deviceTypes.includes(deviceType)) {
          set(dep, dd, 'noartifact');
          continue;
        }
        dd.artifactId = artifact.id;
        return { deployment: dep, artifact };
      }
      return undefined;
    },
    report(id, deviceId, status, substate) {
      const { dep, dd } = mine(id, deviceId);
      if (dd.status === 'aborted') throw new MenderOpError('conflict', `deployment ${id} was aborted`);
      if (isFinished(dd.status)) {
        if (dd.status === status) return; // a retried final report
        throw new MenderOpError('conflict', `deployment ${id} has already finished (${dd.status})`);
      }
      set(dep, dd, status, substate);
    },
    storeLog(id, deviceId, messages) {
      const { dd } = mine(id, deviceId);
      dd.log = messages;
      deps.changed();
    },
  };
}
