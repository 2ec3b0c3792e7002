import { fortAudience } from '../cloud-api/signing-keys.js';
import rateLimit from '@fastify/rate-limit';
import { z } from 'zod';
import { sendBadRequest, sendRawProblem } from '../../lib/http-problem.js';
import { problemErrorHandler } from '../cloud-api/problems.js';
import type { DevCloudServer } from '../server.js';
import { PairingCodeRefused, type CodeRefusal, type PairingCodes } from './codes.js';
import { PairingRequestRefused, type FortRegistry } from './registry.js';
import { verifiedCsrKey } from './csr.js';
import { issueDeviceCert, type DeviceCa } from './device-ca.js';

/** What a paired fort is told, besides its id and certificate (CLOUD-API.md "Pairing"). */
export interface PairingEndpoints {
  cloud: { url: string; token_endpoint: string };
  /** The audience is the fort's own (fortAudience), filled in per pairing. */
  user_tokens: { issuer: string; jwks_url: string };
  iot: { endpoint: string; region: string; role_alias: string; credentials_url: string } | null;
  update_server: { url: string } | null;
  /** CA every cloud endpoint's server certificate chains to (PEM). */
  server_ca: string;
  /** Public key that signs update artifacts (PEM), when updates are served. */
  artifact_key: string | null;
  cors_origins: string[];
}

export interface PairingRouteOptions {
  codes: PairingCodes;
  registry: FortRegistry;
  deviceCa: DeviceCa;
  deviceCaPem: string;
  endpoints: PairingEndpoints;
  /** Pairing attempts per source address per minute. */
  perMinute: number;
  /** Validity of the device certificates it issues. */
  deviceCertMs: number;
  /** Test hook: awaited after the fort is registered, before it is answered. */
  beforeAnswer?: () => Promise<void>;
}

const pem = (label: string) =>
  z
    .string()
    .max(16_384)
    .refine((s) => s.includes(`-----BEGIN ${label}-----`), { error: `expected a PEM ${label}` });
/** `POST /api/v1/rotate` (a paired fort's new keys). */
export const rotateBody = z.strictObject({ jwt_public_key: pem('PUBLIC KEY'), csr: pem('CERTIFICATE REQUEST') });
/** `POST /api/v1/device-certificates` (a key of another process of the fort). */
export const deviceCertificateBody = z.strictObject({ csr: pem('CERTIFICATE REQUEST') });
const pairingBody = z.strictObject({
  code: z.string().min(1).max(128),
  tenant: z.string().min(1).max(128).optional(),
  jwt_public_key: pem('PUBLIC KEY'),
  csr: pem('CERTIFICATE REQUEST'),
});

const REFUSED: Record<CodeRefusal, string> = {
  unknown: 'FORT_ERR_PAIRING_CODE_UNKNOWN',
  used: 'FORT_ERR_PAIRING_CODE_USED',
  expired: 'FORT_ERR_PAIRING_CODE_EXPIRED',
  other_tenant: 'FORT_ERR_PAIRING_CODE_TENANT',
};

/**
 * `POST /api/v1/pairing`: a one-time code plus the fort's own public keys (a JWT key and a CSR
 * for its device certificate) → its identity. Private keys never travel. Rate-limited per source.
 */
export async function registerPairingRoute(app: DevCloudServer, opts: PairingRouteOptions) {
  await app.register(async (scope) => {
    scope.setErrorHandler(problemErrorHandler);
    await scope.register(rateLimit, {
      max: opts.perMinute,
      timeWindow: 60_000,
      errorResponseBuilder: (_req, ctx) => ({
        statusCode: 429,
        message: `too many pairing attempts; retry in ${Math.ceil(ctx.ttl / 1000)} s`,
      }),
    });
    scope.post('/api/v1/pairing', async (req, reply) => {
      const body = pairingBody.safeParse(req.body);
      if (!body.success) return sendBadRequest(reply, body.error);
      const b = body.data;
      try {
        // The keys are checked before the code is used up: a malformed request costs no code.
        opts.registry.checkJwtKey(b.jwt_public_key);
        const deviceKey = await verifiedCsrKey(b.csr);
        // The id is the one the operator chose for the code, or a new one.
        const { tenant, fortId } = opts.codes.redeem(b.code, b.tenant);
        if (fortId && opts.registry.get(fortId) && !opts.registry.get(fortId)!.revokedAt) {
          return sendRawProblem(
            reply,
            409,
            'FORT_ERR_CONFLICT',
            'Already paired',
            `${fortId} is paired already; revoke it before pairing it again`,
          );
        }
        const id = fortId ?? opts.registry.newId();
        const cert = await issueDeviceCert(opts.deviceCa, deviceKey, {
          commonName: id,
          validMs: opts.deviceCertMs,
        });
        opts.registry.add({
          id,
          tenant,
          jwtPublicKey: b.jwt_public_key,
          deviceCertSerial: cert.serialNumber.toUpperCase(),
        });
        req.log.info({ fortId: id, tenant }, 'fort paired');
        await opts.beforeAnswer?.();
        return reply
          .code(201)
          .header('cache-control', 'no-store')
          .send({
            fort_id: id,
            tenant,
            client_id: id,
            thing_name: id,
            device_certificate: cert.toString('pem'),
            device_ca: opts.deviceCaPem,
            ...opts.endpoints,
            user_tokens: { ...opts.endpoints.user_tokens, audience: fortAudience(id) },
          });
      } catch (err) {
        if (err instanceof PairingCodeRefused) {
          req.log.warn({ reason: err.reason }, 'pairing refused');
          return sendRawProblem(reply, 403, REFUSED[err.reason], 'Pairing refused', err.message);
        }
        if (err instanceof PairingRequestRefused)
          return sendRawProblem(reply, 400, 'FORT_ERR_BAD_REQUEST', 'Bad request', err.message);
        throw err;
      }
    });
  });
}
