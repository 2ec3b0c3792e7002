import { Agent } from 'node:https';
import { FortError } from '../../lib/errors.js';
import { createJsonClient } from '../../lib/https-json.js';
import { createCsr, createSigningKeyPair } from '../../lib/pki/certs.js';
import { proxyAgentFor, type ProxySettings } from '../../lib/proxy.js';
import {
  applyPendingRotation,
  pairingAnswerSchema,
  readIdentity,
  stageRotation,
  writeIdentity,
  type FortIdentity,
} from './identity.js';

export interface PairRequest {
  /** The cloud's base URL; the pairing endpoint is <cloud>/api/v1/pairing. */
  cloud: string;
  code: string;
  /** The tenant the operator expects: a code of another tenant is refused by the cloud. */
  tenant?: string;
}

export interface PairDeps {
  /** Where the identity goes (the agent's data dir). */
  dir: string;
  /** CA bundle the pairing endpoint's certificate must chain to; absent = the system roots. */
  ca?: Buffer;
  proxy: ProxySettings | undefined;
  timeoutMs: number;
  now: () => Date;
}

const fail = (message: string, cause?: unknown) => new FortError('FORT_ERR_PAIRING', message, { fatal: false, cause });

/**
 * Pairs this fort: creates its JWT key and device key here (they never leave the host), sends
 * the public halves with the one-time code, and writes the identity the cloud answers in one
 * atomic step. Nothing is written unless the cloud accepted the code.
 */
export async function pairFort(req: PairRequest, deps: PairDeps): Promise<FortIdentity> {
  if (readIdentity(deps.dir))
    throw new FortError('FORT_ERR_CONFLICT', 'this fort is already paired (fortctl unpair first)', { fatal: false });
  let url: URL;
  try {
    url = new URL('api/v1/pairing', req.cloud.endsWith('/') ? req.cloud : `${req.cloud}/`);
  } catch {
    throw fail(`${req.cloud} is not a URL`);
  }
  if (url.protocol !== 'https:') throw fail(`the cloud URL must be https, got ${url.protocol}`);
  const jwt = await createSigningKeyPair();
  const device = await createCsr('fort');
  const tls = deps.ca ? { ca: deps.ca } : {};
  const agent = proxyAgentFor(url, deps.proxy, tls) ?? new Agent(tls);
  const http = createJsonClient({
    agent,
    timeoutMs: deps.timeoutMs,
    peer: `pairing endpoint ${url.origin}`,
    errorCode: 'FORT_ERR_PAIRING',
  });
  try {
    const res = await http.send(url, {
      method: 'POST',
      body: {
        code: req.code,
        ...(req.tenant ? { tenant: req.tenant } : {}),
        jwt_public_key: jwt.publicKeyPem,
        csr: device.csrPem,
      },
    });
    if (res.statusCode !== 201) {
      let problem: { code?: string; detail?: string } = {};
      try {
        problem = JSON.parse(res.text) as typeof problem;
      } catch {
        // not problem+json: the status says enough
      }
      throw fail(
        `the cloud refused pairing (${res.statusCode}${problem.code ? ` ${problem.code}` : ''})${problem.detail ? `: ${problem.detail}` : ''}`,
      );
    }
    const answer = pairingAnswerSchema.safeParse(JSON.parse(res.text));
    if (!answer.success)
      throw fail(
        `the cloud's pairing answer is not what it should be: ${answer.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    return writeIdentity(
      deps.dir,
      answer.data,
      { jwtKeyPem: jwt.privateKeyPem, deviceKeyPem: device.keyPem },
      url.origin,
      deps.now(),
    );
  } finally {
    agent.destroy();
  }
}

/**
 * New keys for a paired fort: a JWT key and a device key made here, the public halves
 * registered with the cloud (which signs the new device certificate and keeps the old keys
 * valid for an overlap), then committed in one step (`stageRotation`) and moved into place.
 */
export async function rotateKeys(
  dir: string,
  cloud: {
    rotate(body: {
      jwt_public_key: string;
      csr: string;
    }): Promise<{ device_certificate: string; previous_valid_until: string }>;
  },
) {
  const identity = readIdentity(dir);
  if (!identity) throw new FortError('FORT_ERR_CONFLICT', 'this fort is not paired', { fatal: false });
  const jwt = await createSigningKeyPair();
  const device = await createCsr(identity.fort_id);
  const answer = await cloud.rotate({ jwt_public_key: jwt.publicKeyPem, csr: device.csrPem });
  stageRotation(dir, {
    jwtKeyPem: jwt.privateKeyPem,
    deviceKeyPem: device.keyPem,
    deviceCertPem: answer.device_certificate,
  });
  applyPendingRotation(dir);
  return { fortId: identity.fort_id, previousValidUntil: answer.previous_valid_until };
}
