import type { TLSSocket } from 'node:tls';
import { EventEmitter } from 'node:events';
import { createReadStream } from 'node:fs';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { Logger } from '../../lib/logger.js';
import type { TlsMaterial } from '../../lib/tls.js';
import { openArtifactStore, type ArtifactRecord } from './artifacts.js';
import { createDeploymentBook, type DeploymentRecord } from './deployments.js';
import { registerDeviceRoutes } from './device-routes.js';
import { createMenderHttp, fail } from './http.js';
import { createDeviceRegistry, type AuthAttempt, type DeviceRecord, type DeviceRef } from './devices.js';
import { registerDownloadRoute, type ArmedCut, type DownloadRecord } from './download.js';
import { createDeviceTokens, createLinkSigner } from './tokens.js';
import { createRefusals, retryAfterHeader, type ArmedRefusal } from '../refusals.js';

/** The device routes a refusal can be armed for (`refuse`). */
export type MenderRoute = 'auth' | 'next' | 'status' | 'log' | 'inventory' | 'download';

/** Which device route a request path is (query string ignored), or undefined. */
export function menderRouteOf(url: string): MenderRoute | undefined {
  const path = url.split('?')[0]!;
  if (path === '/api/devices/v1/authentication/auth_requests') return 'auth';
  if (/^\/api\/devices\/v[12]\/deployments\/device\/deployments\/next$/.test(path)) return 'next';
  if (/^\/api\/devices\/v1\/deployments\/device\/deployments\/[^/]+\/status$/.test(path)) return 'status';
  if (/^\/api\/devices\/v1\/deployments\/device\/deployments\/[^/]+\/log$/.test(path)) return 'log';
  if (path === '/api/devices/v1/inventory/device/attributes') return 'inventory';
  if (path.startsWith('/download/')) return 'download';
  return undefined;
}

/** One device request (a route of `MenderRoute`) as the server saw it arrive, and its answer. */
export interface MenderRequestRecord {
  /** When it arrived (before anything else looked at it). */
  at: string;
  route: MenderRoute;
  method: string;
  /** The status it was answered with; null until the answer is sent (or if it never was). */
  status: number | null;
}

/** Request records kept: the newest, so a dev stack polled every second for days stays small. */
const KEPT_REQUESTS = 10_000;

export interface MenderServerOptions {
  host: string;
  port: number;
  /** The dev cloud's server certificate; `ca` = the device CA client certificates must chain to. */
  tls: TlsMaterial & { ca: Buffer };
  artifactsDir: string;
  /** Base URL of download links; default `https://<host>:<port>`. */
  publicUrl?: string;
  downloadLinkSeconds: number;
  tokenSeconds: number;
  retry: { pendingSeconds: number; unavailableSeconds: number };
  /** A revoked fort's device certificate (upper-case hex serial) is refused on every call. */
  isRevoked?: (serial: string) => boolean;
  log: Logger;
  now?: () => Date;
}

/** The Mender-compatible update server: device API on its own mTLS port, operator side in-process. */
export interface MenderServer {
  /** `https://<host>:<port>` of the device API. */
  readonly url: string;
  readonly port: number;
  /** Stores an artifact file (parsed: name and device types); 409 for a name + device type already there. */
  upload(file: string): Promise<ArtifactRecord>;
  uploadStream(body: Readable): Promise<ArtifactRecord>;
  artifacts(): ArtifactRecord[];
  /** Deploys the artifact of that name to devices (ids or identity attribute values). */
  deploy(o: { artifactName: string; devices: DeviceRef | DeviceRef[] }): DeploymentRecord;
  /** Aborts every unfinished device of a deployment: their next status report gets 409. */
  abort(deploymentId: string): DeploymentRecord;
  deployments(filter?: { device?: DeviceRef }): DeploymentRecord[];
  deployment(id: string): DeploymentRecord | undefined;
  devices(): DeviceRecord[];
  device(ref: DeviceRef): DeviceRecord;
  accept(ref: DeviceRef): DeviceRecord;
  reject(ref: DeviceRef): DeviceRecord;
  authAttempts(): AuthAttempt[];
  downloads(filter?: { artifactId?: string }): DownloadRecord[];
  /**
   * The device requests that arrived (the newest 10 000), oldest first, refused ones included:
   * when each came and what it was answered (tests measure poll intervals on these).
   */
  requests(filter?: { route?: MenderRoute }): MenderRequestRecord[];
  /** A device JWT as `auth_requests` would give (for an accepted device), optionally expiring at `expiresAt`. */
  issueDeviceToken(ref: DeviceRef, expiresAt?: Date): Promise<string>;
  /** A presigned link, valid until `expiresAt` (default: now + download_link_seconds). */
  downloadLink(artifactId: string, expiresAt?: Date): { uri: string; expire: string };
  /** Fault injection: the next download (each call queues one more) sends `n` body bytes, then the connection is cut. */
  dropAfterBytes(n: number): void;
  /** Fault injection: the next download sends `n` body bytes, then nothing more (a stalled link) until `releaseStalls()` or the client leaves. */
  stallAfterBytes(n: number): void;
  /** Ends every stalled download (the connection is then cut). */
  releaseStalls(): void;
  /** Fault injection: false = every request gets 503 (with Retry-After) until set back. */
  setAvailable(available: boolean): void;
  /**
   * Fault injection: the next `times` (default 1) requests to `routes` (default any) get
   * `status` (429 or 503) with `retryAfter` as the `Retry-After` header (seconds, a Date sent as
   * an HTTP-date, or raw text; absent = none), before the device token is looked at, as a rate
   * limiting gateway in front of Mender answers. Armed refusals queue; each request takes the oldest that matches.
   */
  refuse(r: ArmedRefusal<MenderRoute>): void;
  /** Disarms every refusal not yet taken. */
  clearRefusals(): void;
  /**
   * Fault injection: the server vanishes from the network (new connections refused, open ones
   * destroyed) but keeps its devices, deployments and artifacts. Resolves once the port is closed.
   */
  goOffline(): Promise<void>;
  /** Listens on the same port again after `goOffline` (rejects if something else took the port meanwhile). */
  goOnline(): Promise<void>;
  /** The first truthy value of `probe`, checked now and after every change; rejects after `timeoutMs`. */
  waitFor<T>(probe: () => T | undefined | null | false, timeoutMs: number, what?: string): Promise<T>;
  close(): Promise<void>;
}

const clone = <T>(v: T): T => structuredClone(v);

export async function startMenderServer(opts: MenderServerOptions): Promise<MenderServer> {
  const now = opts.now ?? (() => new Date());
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const changed = () => events.emit('change');
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;

  const artifacts = await openArtifactStore({ dir: opts.artifactsDir, now, log: opts.log });
  const devices = createDeviceRegistry({ now, changed });
  const deployments = createDeploymentBook({ artifacts, now, changed });
  const tokens = createDeviceTokens({ now, ttlSeconds: opts.tokenSeconds });
  const downloads: DownloadRecord[] = [];
  const requests: MenderRequestRecord[] = [];
  const answered = new WeakMap<FastifyRequest, MenderRequestRecord>();
  let available = true;
  const refusals = createRefusals<MenderRoute>(changed);
  /** Cuts queued for the next downloads, one each. */
  const drops: ArmedCut[] = [];
  /** Releases of the stalls armed and not yet released. */
  const stallReleases = new Set<() => void>();
  const releaseStalls = () => {
    for (const release of stallReleases) release();
    stallReleases.clear();
  };

  const app = createMenderHttp(opts.tls, opts.log);
  // Known after listen (port 0 = any free port); links are only made by then.
  let url = '';
  const signer = createLinkSigner({ baseUrl: () => opts.publicUrl ?? url, now });
  app.addHook('onRequest', async (req, reply) => {
    const route = menderRouteOf(req.url);
    if (route) {
      const r: MenderRequestRecord = { at: now().toISOString(), route, method: req.method, status: null };
      if (requests.push(r) > KEPT_REQUESTS) requests.shift();
      answered.set(req, r);
      changed();
    }
    if (opts.isRevoked?.((req.raw.socket as TLSSocket).getPeerCertificate().serialNumber))
      return fail(reply, 401, 'device certificate revoked');
    const refusal = refusals.take(route);
    if (refusal) {
      const retryAfter = retryAfterHeader(refusal);
      if (retryAfter !== undefined) reply.header('retry-after', retryAfter);
      return fail(
        reply,
        refusal.status,
        refusal.status === 429
          ? 'too many requests (dev cloud fault injection)'
          : 'service unavailable (dev cloud fault injection)',
      );
    }
    if (available) return;
    return fail(
      reply.header('retry-after', String(opts.retry.unavailableSeconds)),
      503,
      'service unavailable (dev cloud fault injection)',
    );
  });
  app.addHook('onResponse', async (req, reply) => {
    const r = answered.get(req);
    if (!r) return;
    r.status = reply.statusCode;
    changed();
  });
  registerDeviceRoutes(app, {
    devices,
    deployments,
    tokens,
    signer,
    now,
    downloadLinkSeconds: opts.downloadLinkSeconds,
    pendingRetrySeconds: opts.retry.pendingSeconds,
  });
  registerDownloadRoute(app, {
    artifacts,
    signer,
    now,
    record: (r) => {
      downloads.push(r);
      changed();
    },
    changed,
    takeDrop: () => drops.shift(),
  });
  // Every open TCP connection (TLS handshake or not), so going offline can cut them all.
  const sockets = new Set<Socket>();
  app.server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  url = `https://${host}:${port}`;
  let offline = false;

  return {
    url,
    port,
    upload: async (file) => clone(await artifacts.add(createReadStream(file))),
    uploadStream: async (body) => clone(await artifacts.add(body)),
    artifacts: () => clone(artifacts.list()),
    deploy(o) {
      const refs = Array.isArray(o.devices) ? o.devices : [o.devices];
      return clone(
        deployments.create(
          o.artifactName,
          refs.map((r) => devices.find(r).id),
        ),
      );
    },
    abort: (id) => clone(deployments.abort(id)),
    deployments(filter) {
      const id = filter?.device === undefined ? undefined : devices.find(filter.device).id;
      return clone(deployments.list().filter((d) => id === undefined || d.devices.some((x) => x.deviceId === id)));
    },
    deployment: (id) => clone(deployments.get(id)),
    devices: () => clone(devices.list()),
    device: (ref) => clone(devices.find(ref)),
    accept: (ref) => clone(devices.accept(ref)),
    reject: (ref) => clone(devices.reject(ref)),
    authAttempts: () => clone(devices.attempts()),
    downloads: (filter) => clone(downloads.filter((d) => !filter?.artifactId || d.artifactId === filter.artifactId)),
    requests: (filter) => clone(requests.filter((r) => !filter?.route || r.route === filter.route)),
    async issueDeviceToken(ref, expiresAt) {
      const d = devices.find(ref);
      const set = d.authSets.find((s) => s.status === 'accepted');
      if (!set) throw new Error(`device ${d.id} is not accepted`);
      return tokens.issue({ deviceId: d.id, authSetId: set.id }, expiresAt);
    },
    downloadLink: (artifactId, expiresAt) =>
      signer.link(artifactId, expiresAt ?? new Date(now().getTime() + opts.downloadLinkSeconds * 1000)),
    dropAfterBytes(n) {
      if (!Number.isInteger(n) || n < 0)
        throw new RangeError(`dropAfterBytes: expected a non-negative integer, got ${n}`);
      drops.push({ bytes: n });
    },
    stallAfterBytes(n) {
      if (!Number.isInteger(n) || n < 0)
        throw new RangeError(`stallAfterBytes: expected a non-negative integer, got ${n}`);
      drops.push({ bytes: n, stall: new Promise<void>((r) => stallReleases.add(r)) });
    },
    releaseStalls,
    setAvailable(v) {
      available = v;
    },
    refuse: (r) => refusals.arm(r),
    clearRefusals: () => refusals.clear(),
    async goOffline() {
      if (offline) return;
      offline = true;
      // Not app.close(): Fastify cannot listen again after that. The bare server can.
      const closed = new Promise<void>((resolve) => app.server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
    async goOnline() {
      if (!offline) return;
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        app.server.once('error', onError);
        app.server.listen({ host: opts.host, port }, () => {
          app.server.off('error', onError);
          resolve();
        });
      });
      offline = false;
    },
    waitFor(probe, timeoutMs, what = 'condition') {
      return new Promise((resolve, reject) => {
        const check = () => {
          const v = probe();
          if (!v) return false;
          cleanup();
          resolve(v);
          return true;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`mender: ${what} not reached within ${timeoutMs} ms`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          events.off('change', check);
        };
        if (!check()) events.on('change', check);
      });
    },
    close: () => {
      releaseStalls();
      return app.close();
    },
  };
}
