import { randomUUID } from 'node:crypto';
import type { AuthRequest } from './auth-request.js';
import { MenderOpError } from './errors.js';

export type AuthStatus = 'pending' | 'accepted' | 'rejected';

/** One (identity, public key) pair a device authenticated with; one at most is accepted. */
export interface AuthSet {
  id: string;
  pubkey: string;
  keyFingerprint: string;
  status: AuthStatus;
  createdAt: string;
}

/** An inventory attribute value as Mender allows it. */
export type InventoryValue = string | number | (string | number)[];

export interface DeviceRecord {
  /** Server-assigned id (the `sub` of its JWT). */
  id: string;
  /** Identity attributes (`id_data`), keys sorted. */
  identity: Record<string, unknown>;
  /** accepted if one auth set is, else pending if one is, else rejected. */
  status: AuthStatus;
  authSets: AuthSet[];
  inventory: Record<string, InventoryValue>;
  createdAt: string;
  lastAuthAt: string | null;
  /** What the device said it runs at its last `next` poll. */
  provides: Record<string, string> | null;
  lastPollAt: string | null;
}

/** Every auth request, accepted or not. */
export interface AuthAttempt {
  at: string;
  deviceId: string | null;
  identity: Record<string, unknown> | null;
  keyFingerprint: string | null;
  /** accepted → 200 with a JWT; pending/rejected/bad-signature → 401; bad-request → 400. */
  result: 'accepted' | 'pending' | 'rejected' | 'bad-signature' | 'bad-request';
  detail?: string;
}

/** A device by id, by the value of one identity attribute (e.g. the fort id), or by attributes that must all match. */
export type DeviceRef = string | Record<string, unknown>;

export interface DeviceRegistry {
  /** Records the request; creates the device / auth set (pending) the first time. */
  authenticate(req: AuthRequest): { device: DeviceRecord; authSet: AuthSet };
  recordFailure(attempt: Omit<AuthAttempt, 'at' | 'deviceId'>): void;
  attempts(): AuthAttempt[];
  list(): DeviceRecord[];
  get(id: string): DeviceRecord | undefined;
  /** Exactly one device, or 404 (none) / 409 (ambiguous). */
  find(ref: DeviceRef): DeviceRecord;
  /** Accepts the newest pending auth set (or else the newest one); any other accepted one is rejected. */
  accept(ref: DeviceRef): DeviceRecord;
  /** Rejects every auth set: its tokens stop working. */
  reject(ref: DeviceRef): DeviceRecord;
  /** Whether a token for this device and auth set may still be used. */
  isAccepted(deviceId: string, authSetId: string): boolean;
  setInventory(deviceId: string, attrs: { name: string; value: InventoryValue }[], mode: 'merge' | 'replace'): void;
  polled(deviceId: string, provides: Record<string, string>): void;
}

const deviceStatus = (sets: AuthSet[]): AuthStatus =>
  sets.some((s) => s.status === 'accepted')
    ? 'accepted'
    : sets.some((s) => s.status === 'pending')
      ? 'pending'
      : 'rejected';

export function createDeviceRegistry(deps: { now: () => Date; changed: () => void }): DeviceRegistry {
  const devices = new Map<string, DeviceRecord>();
  const byIdentity = new Map<string, DeviceRecord>();
  const attempts: AuthAttempt[] = [];
  const at = () => deps.now().toISOString();

  function find(ref: DeviceRef): DeviceRecord {
    const exact = typeof ref === 'string' ? devices.get(ref) : undefined;
    if (exact) return exact;
    const all = [...devices.values()];
    const matches =
      typeof ref === 'string'
        ? all.filter((d) => Object.values(d.identity).some((v) => v === ref))
        : all.filter((d) => Object.entries(ref).every(([k, v]) => JSON.stringify(d.identity[k]) === JSON.stringify(v)));
    const what = typeof ref === 'string' ? ref : JSON.stringify(ref);
    if (matches.length === 0)
      throw new MenderOpError('not_found', `no device ${what} (an id or an identity attribute value)`);
    if (matches.length > 1)
      throw new MenderOpError(
        'conflict',
        `${what} matches ${matches.length} devices (${matches.map((d) => d.id).join(', ')}): give the device id`,
      );
    return matches[0]!;
  }

  function update(d: DeviceRecord) {
    d.status = deviceStatus(d.authSets);
    deps.changed();
    return d;
  }

  return {
    authenticate(req) {
      let device = byIdentity.get(req.identityKey);
      if (!device) {
        device = {
          id: randomUUID(),
          identity: req.identity,
          status: 'pending',
          authSets: [],
          inventory: {},
          createdAt: at(),
          lastAuthAt: null,
          provides: null,
          lastPollAt: null,
        };
        devices.set(device.id, device);
        byIdentity.set(req.identityKey, device);
      }
      let authSet = device.authSets.find((s) => s.keyFingerprint === req.keyFingerprint);
      if (!authSet) {
        authSet = {
          id: randomUUID(),
          pubkey: req.pubkey,
          keyFingerprint: req.keyFingerprint,
          status: 'pending',
          createdAt: at(),
        };
        device.authSets.push(authSet);
      }
      device.lastAuthAt = at();
      attempts.push({
        at: at(),
        deviceId: device.id,
        identity: device.identity,
        keyFingerprint: req.keyFingerprint,
        result: authSet.status,
      });
      update(device);
      return { device, authSet };
    },
    recordFailure(a) {
      attempts.push({ at: at(), deviceId: null, ...a });
      deps.changed();
    },
    attempts: () => [...attempts],
    list: () => [...devices.values()],
    get: (id) => devices.get(id),
    find,
    accept(ref) {
      const d = find(ref);
      const newest = <T>(xs: T[]) => xs[xs.length - 1];
      const chosen = newest(d.authSets.filter((s) => s.status === 'pending')) ?? newest(d.authSets);
      if (!chosen) throw new MenderOpError('conflict', `device ${d.id} has no auth set`);
      for (const s of d.authSets) if (s !== chosen && s.status === 'accepted') s.status = 'rejected';
      chosen.status = 'accepted';
      return update(d);
    },
    reject(ref) {
      const d = find(ref);
      for (const s of d.authSets) s.status = 'rejected';
      return update(d);
    },
    isAccepted(deviceId, authSetId) {
      return devices.get(deviceId)?.authSets.find((s) => s.id === authSetId)?.status === 'accepted';
    },
    setInventory(deviceId, attrs, mode) {
      const d = devices.get(deviceId);
      if (!d) throw new MenderOpError('not_found', `no device ${deviceId}`);
      const next = mode === 'merge' ? { ...d.inventory } : {};
      for (const a of attrs) next[a.name] = a.value;
      d.inventory = next;
      deps.changed();
    },
    polled(deviceId, provides) {
      const d = devices.get(deviceId);
      if (!d) return;
      d.provides = provides;
      d.lastPollAt = at();
      deps.changed();
    },
  };
}
