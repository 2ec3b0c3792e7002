import type { Agent } from 'node:https';
import { z } from 'zod';
import { FortError } from '../../lib/errors.js';
import { createJsonClient, type JsonResponse } from '../../lib/https-json.js';
import type { Logger } from '../../lib/logger.js';
import { describeWait, retryAfterFrom } from '../../lib/retry-after.js';
import type { AuthKey } from './auth-key.js';

/** Mender's deployment status values (PROTOCOLS.md: Mender device API). */
export type DeploymentStatus =
  | 'downloading'
  | 'pause_before_installing'
  | 'installing'
  | 'pause_before_rebooting'
  | 'rebooting'
  | 'pause_before_committing'
  | 'success'
  | 'failure'
  | 'already-installed';

const deploymentSchema = z.object({
  id: z.string().min(1),
  artifact: z.object({
    artifact_name: z.string().min(1),
    source: z.object({ uri: z.url(), expire: z.string().optional() }),
    device_types_compatible: z.array(z.string()).default([]),
  }),
});
export type Deployment = z.output<typeof deploymentSchema>;

export interface LogMessage {
  timestamp: string;
  level: 'debug' | 'info' | 'warning' | 'error';
  message: string;
}

export interface MenderClientOptions {
  serverUrl: URL;
  /** Device certificate + key and the server CA (mutual TLS), tunnelled when a proxy is set. */
  agent: Agent;
  authKey: AuthKey;
  /** Identity attributes, e.g. `{ fort_id, mac }`; sent as a JSON string with sorted keys. */
  idData: Record<string, string>;
  tenantToken?: string;
  deviceType: string;
  timeoutMs: number;
  log: Logger;
  /**
   * Told when the server's answer to `auth_requests` changes: admitted (a JWT), or refused (401:
   * pending, rejected, or a revoked certificate). Changes only, not every retry.
   */
  onAdmission?: (admitted: boolean) => void;
}

const waitNote = (ms: number | undefined) => (ms === undefined ? '' : ` (retry after ${describeWait(ms)})`);

/** JSON text with keys sorted, as the Mender client writes `id_data`. */
export const sortedJson = (o: Record<string, string>) =>
  JSON.stringify(Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));

/**
 * The device side of the Mender API. The device JWT lives in memory only; a 401 on any call
 * authenticates again once and repeats the call. "Not accepted yet" surfaces as
 * FORT_ERR_NOT_ACCEPTED, which the caller retries after its retry interval. The client itself
 * never waits or retries: a 429 or 503 (and the 401 of a device awaiting acceptance) with a
 * `Retry-After` puts that wait, clamped to 1 s .. 1 h, on the thrown error's `retryAfterMs`.
 */
export function createMenderClient(opts: MenderClientOptions) {
  const http = createJsonClient({
    agent: opts.agent,
    timeoutMs: opts.timeoutMs,
    peer: `update server ${opts.serverUrl.host}`,
    errorCode: 'FORT_ERR_UPDATE_SERVER',
  });
  const url = (path: string) =>
    new URL(
      path.replace(/^\//, ''),
      opts.serverUrl.href.endsWith('/') ? opts.serverUrl : new URL(`${opts.serverUrl.href}/`),
    );
  let jwt: string | undefined;
  let authenticating: Promise<string> | undefined;
  let admitted: boolean | undefined;
  const admission = (now: boolean) => {
    if (admitted !== now) opts.onAdmission?.(now);
    admitted = now;
  };

  async function authenticate(): Promise<string> {
    const body = Buffer.from(
      JSON.stringify({
        id_data: sortedJson(opts.idData),
        pubkey: opts.authKey.publicPem,
        tenant_token: opts.tenantToken ?? '',
      }),
    );
    const res = await http.send(url('/api/devices/v1/authentication/auth_requests'), {
      method: 'POST',
      // The signature covers these exact bytes, so they are sent as they are.
      body: body.toString('utf8'),
      headers: { 'content-type': 'application/json', 'x-men-signature': opts.authKey.sign(body) },
    });
    if (res.statusCode === 401) {
      admission(false);
      const retryAfterMs = retryAfterFrom(res, { statuses: [401] });
      throw new FortError(
        'FORT_ERR_NOT_ACCEPTED',
        `update server ${opts.serverUrl.host}: this device (${sortedJson(opts.idData)}) is not accepted yet${waitNote(retryAfterMs)}`,
        { fatal: false, retryAfterMs },
      );
    }
    if (res.statusCode !== 200 || res.text.trim() === '') throw unexpected('authentication', res);
    opts.log.info({ server: opts.serverUrl.host }, 'authenticated with the update server');
    admission(true);
    return res.text.trim();
  }

  const token = async (fresh = false): Promise<string> => {
    if (jwt && !fresh) return jwt;
    authenticating ??= authenticate().finally(() => (authenticating = undefined));
    jwt = await authenticating;
    return jwt;
  };

  async function call(method: 'GET' | 'POST' | 'PUT' | 'PATCH', path: string, body?: unknown): Promise<JsonResponse> {
    const send = async (bearer: string) =>
      http.send(url(path), {
        method,
        headers: { authorization: `Bearer ${bearer}` },
        ...(body === undefined ? {} : { body }),
      });
    let res = await send(await token());
    if (res.statusCode === 401) {
      jwt = undefined;
      res = await send(await token(true));
    }
    return res;
  }

  /** Any other answer; a 429 or 503 carries the server's Retry-After, if any. */
  function unexpected(what: string, res: JsonResponse) {
    const retryAfterMs = retryAfterFrom(res);
    return new FortError(
      'FORT_ERR_UPDATE_SERVER',
      `update server ${opts.serverUrl.host}: ${what} answered ${res.statusCode}${waitNote(retryAfterMs)}`,
      { fatal: false, retryAfterMs },
    );
  }

  return {
    authenticate: () => token(true).then(() => undefined),
    /** The deployment waiting for this device, or undefined (204). v2 POST first, v1 GET on 404 (older servers). */
    async nextDeployment(installedArtifact: string): Promise<Deployment | undefined> {
      let res = await call('POST', '/api/devices/v2/deployments/device/deployments/next', {
        device_provides: { artifact_name: installedArtifact, device_type: opts.deviceType },
      });
      if (res.statusCode === 404 || res.statusCode === 405) {
        const q = new URLSearchParams({ artifact_name: installedArtifact, device_type: opts.deviceType });
        res = await call('GET', `/api/devices/v1/deployments/device/deployments/next?${q.toString()}`);
      }
      if (res.statusCode === 204) return undefined;
      if (res.statusCode !== 200) throw unexpected('deployments/next', res);
      const parsed = deploymentSchema.safeParse(http.json(res));
      if (!parsed.success)
        throw new FortError(
          'FORT_ERR_UPDATE_SERVER',
          `update server ${opts.serverUrl.host}: deployments/next: ${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message}`,
          { fatal: false },
        );
      return parsed.data;
    },
    /** 409 → FORT_ERR_DEPLOYMENT_ABORTED: stop and roll back. */
    async reportStatus(deploymentId: string, status: DeploymentStatus): Promise<void> {
      const res = await call(
        'PUT',
        `/api/devices/v1/deployments/device/deployments/${encodeURIComponent(deploymentId)}/status`,
        { status },
      );
      if (res.statusCode === 409)
        throw new FortError(
          'FORT_ERR_DEPLOYMENT_ABORTED',
          `deployment ${deploymentId} was aborted on the update server`,
          { fatal: false },
        );
      if (res.statusCode !== 204 && res.statusCode !== 200) throw unexpected(`status ${status}`, res);
    },
    async uploadLog(deploymentId: string, messages: LogMessage[]): Promise<void> {
      const res = await call(
        'PUT',
        `/api/devices/v1/deployments/device/deployments/${encodeURIComponent(deploymentId)}/log`,
        { messages },
      );
      if (res.statusCode !== 204 && res.statusCode !== 200) throw unexpected('log', res);
    },
    async sendInventory(attributes: { name: string; value: string | number | string[] }[]): Promise<void> {
      const res = await call('PATCH', '/api/devices/v1/inventory/device/attributes', attributes);
      if (res.statusCode !== 200 && res.statusCode !== 204) throw unexpected('inventory', res);
    },
  };
}
export type MenderClient = ReturnType<typeof createMenderClient>;
