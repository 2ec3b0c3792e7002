import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { identifier } from '../../lib/config/fields.js';
import { assertPrivateFileMode } from '../../lib/files.js';
import { issueDetail, sendBadRequest, sendRawProblem } from '../../lib/http-problem.js';
import type { Logger } from '../../lib/logger.js';
import { cloudApiIssuer, type DevCloudConfig } from '../config.js';
import { problemErrorHandler } from '../cloud-api/problems.js';
import type { DevCloudServer } from '../server.js';
import { createPairingCodes } from './codes.js';
import { verifiedCsrKey } from './csr.js';
import { issueDeviceCert, loadDeviceCa } from './device-ca.js';
import { PairingRequestRefused, type FortRegistry } from './registry.js';
import { deviceCertificateBody, registerPairingRoute, rotateBody, type PairingEndpoints } from './route.js';

const issueBody = z.strictObject({
  tenant: z.string().trim().min(1, { error: 'expected a tenant' }).max(128),
  ttl_seconds: z.int().min(60).max(604_800).optional(),
  fort_id: identifier().optional(),
});

type PairingConfig = NonNullable<DevCloudConfig['pairing']>;
const deviceCertMs = (p: PairingConfig) =>
  p.device_cert_seconds !== undefined ? p.device_cert_seconds * 1000 : p.device_cert_days * 86_400_000;

const hostOf = (h: string) => (h.includes(':') ? `[${h}]` : h);

/** What a paired fort is told about this dev cloud's endpoints. */
function endpointsOf(config: DevCloudConfig & { pairing: NonNullable<DevCloudConfig['pairing']> }): PairingEndpoints {
  const host = hostOf(config.server.host);
  const issuer = cloudApiIssuer(config);
  return {
    cloud: { url: issuer, token_endpoint: `${issuer}/oauth/token` },
    user_tokens: {
      issuer,
      jwks_url: `${issuer}/.well-known/jwks.json`,
    },
    iot:
      config.iot && config.credentials_provider
        ? {
            endpoint: `${host}:${config.iot.port}`,
            region: config.iot.region,
            role_alias: config.credentials_provider.role_alias,
            credentials_url: `https://${host}:${config.credentials_provider.port}`,
          }
        : null,
    update_server: config.mender ? { url: config.mender.public_url ?? `https://${host}:${config.mender.port}` } : null,
    server_ca: readFileSync(config.pairing.server_ca, 'utf8'),
    artifact_key: config.pairing.artifact_key ? readFileSync(config.pairing.artifact_key, 'utf8') : null,
    cors_origins: [new URL(issuer).origin],
  };
}

/**
 * Pairing on the dev cloud: `POST /api/v1/pairing` for forts, and developer routes to issue a
 * code (`POST /dev/v1/pairing-codes`), list paired forts and revoke one.
 */
export async function startPairing(
  api: DevCloudServer,
  config: DevCloudConfig,
  deps: { registry: FortRegistry; onRevoke: (fortId: string) => void; now: () => Date; log: Logger },
) {
  const { registry, now, log } = deps;
  const p = config.pairing;
  if (!p) throw new Error('startPairing without [pairing]');
  assertPrivateFileMode(p.device_ca_key);
  const deviceCaPem = readFileSync(p.device_ca, 'utf8');
  const deviceCa = await loadDeviceCa(deviceCaPem, readFileSync(p.device_ca_key, 'utf8'));
  const codes = createPairingCodes({ now });
  const endpoints = endpointsOf({ ...config, pairing: p });
  let held: { promise: Promise<void>; release: () => void } | undefined;
  let waiting = 0;
  await registerPairingRoute(api, {
    codes,
    registry,
    deviceCa,
    deviceCaPem,
    endpoints,
    perMinute: p.attempts_per_minute,
    deviceCertMs: deviceCertMs(p),
    beforeAnswer: async () => {
      if (!held) return;
      waiting++;
      await held.promise;
    },
  });
  await api.register(async (scope) => {
    scope.setErrorHandler(problemErrorHandler);
    scope.post('/dev/v1/pairing-codes', async (req, reply) => {
      const body = issueBody.safeParse(req.body ?? {});
      if (!body.success) return sendBadRequest(reply, body.error);
      const issued = codes.issue(body.data.tenant, body.data.ttl_seconds ?? p.code_seconds, body.data.fort_id);
      log.info({ tenant: issued.tenant, expiresAt: issued.expiresAt }, 'pairing code issued');
      return reply.code(201).header('cache-control', 'no-store').send(issued);
    });
    scope.get('/dev/v1/forts', async () => registry.list());
    scope.post<{ Params: { id: string } }>('/dev/v1/forts/:id/revoke', async (req, reply) => {
      const f = registry.revoke(req.params.id);
      if (!f) return sendRawProblem(reply, 404, 'FORT_ERR_NOT_FOUND', 'Not found', `no paired fort ${req.params.id}`);
      log.warn({ fortId: f.id }, 'fort revoked');
      deps.onRevoke(f.id);
      return f;
    });
  });
  return {
    codes,
    registry,
    /**
     * `POST /api/v1/device-certificates` for an authenticated fort: a certificate for the key of
     * another of its processes (the deployment manager, which keeps its own key), with what that
     * process needs to reach the update server. Revoked with the fort.
     */
    deviceCertificate: async (fortId: string, body: unknown) => {
      const b = deviceCertificateBody.safeParse(body);
      if (!b.success) throw new PairingRequestRefused(issueDetail(b.error));
      const cert = await issueDeviceCert(deviceCa, await verifiedCsrKey(b.data.csr), {
        commonName: fortId,
        validMs: deviceCertMs(p),
      });
      registry.addSerial(fortId, cert.serialNumber);
      log.info({ fortId }, 'device certificate issued for another process of the fort');
      return {
        fort_id: fortId,
        device_certificate: cert.toString('pem'),
        device_ca: deviceCaPem,
        server_ca: endpoints.server_ca,
        update_server: endpoints.update_server,
        artifact_key: endpoints.artifact_key,
      };
    },
    /**
     * `POST /api/v1/rotate` for an authenticated fort: its new JWT key and a certificate for its
     * new device key; the old ones stay valid for `pairing.key_overlap_seconds`.
     */
    rotate: async (
      fortId: string,
      body: unknown,
    ): Promise<{ device_certificate: string; previous_valid_until: string }> => {
      const b = rotateBody.safeParse(body);
      if (!b.success) throw new PairingRequestRefused(issueDetail(b.error));
      registry.checkJwtKey(b.data.jwt_public_key);
      const cert = await issueDeviceCert(deviceCa, await verifiedCsrKey(b.data.csr), {
        commonName: fortId,
        validMs: deviceCertMs(p),
      });
      const f = registry.rotate(
        fortId,
        { jwtPublicKey: b.data.jwt_public_key, deviceCertSerial: cert.serialNumber.toUpperCase() },
        p.key_overlap_seconds,
      );
      log.info({ fortId, previousValidUntil: f.previous?.until }, 'fort rotated its keys');
      return { device_certificate: cert.toString('pem'), previous_valid_until: f.previous!.until };
    },
    /** Test hook: answers of registered forts wait until `release` (a fort killed meanwhile never gets its identity). */
    hold(): void {
      let release = () => {};
      const promise = new Promise<void>((r) => (release = r));
      held = { promise, release };
      waiting = 0;
    },
    /** Pairings registered and waiting for their answer since `hold`. */
    waiting: () => waiting,
    release(): void {
      held?.release();
      held = undefined;
    },
  };
}
export type Pairing = Awaited<ReturnType<typeof startPairing>>;
