import { readFileSync } from 'node:fs';
import { FortError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { ProxySettings } from '../../lib/proxy.js';
import type { AdminPairingDeps } from '../admin/pairing-routes.js';
import type { AgentConfig } from '../config.js';
import type { DeviceCertificateAnswer } from '../cloud/client.js';
import { removeIdentity } from './identity.js';

/** What pairing needs of the cloud link of a paired fort (its access token authenticates these). */
export interface PairedCloudLink {
  unpair(): Promise<void>;
  rotate(body: {
    jwt_public_key: string;
    csr: string;
  }): Promise<{ device_certificate: string; previous_valid_until: string }>;
  deviceCertificate(csr: string): Promise<DeviceCertificateAnswer>;
}

// Loaded when used: key and CSR making (@peculiar/x509) would cost every agent ~4 MB of idle RSS.
const loadPairing = () => import('./pair.js');

const notPaired = (what = 'this fort is not paired') => new FortError('FORT_ERR_CONFLICT', what, { fatal: false });

/** The admin API's pairing operations (fortctl pair, unpair, rotate-keys; the DM's update identity). */
export function createPairingOperations(deps: {
  config: Pick<AgentConfig, 'identity' | 'pairing'>;
  /** Present when the cloud link runs (always for a paired fort). */
  cloud: PairedCloudLink | undefined;
  proxy: ProxySettings | undefined;
  log: Logger;
  /** systemd (Restart=always) starts the agent again, which loads (or no longer finds) the identity. */
  shutdown: (reason: string) => void;
}): AdminPairingDeps {
  const { config, log } = deps;
  const paired = config.identity ? deps.cloud : undefined;
  return {
    pair: async (req, by) => {
      log.info({ cloud: req.cloud, tenant: req.tenant, by }, 'pairing');
      const ca = config.pairing.ca ? readFileSync(config.pairing.ca) : undefined;
      const { pairFort } = await loadPairing();
      return pairFort(req, {
        dir: config.pairing.dir,
        ...(ca ? { ca } : {}),
        proxy: deps.proxy,
        timeoutMs: config.pairing.timeout_seconds * 1000,
        now: () => new Date(),
      });
    },
    unpair: async ({ force }, by) => {
      const identity = config.identity;
      if (!identity) throw notPaired();
      let cloudTold = false;
      try {
        if (!deps.cloud) throw new FortError('FORT_ERR_UPSTREAM', 'the cloud link is not configured', { fatal: false });
        await deps.cloud.unpair();
        cloudTold = true;
      } catch (err) {
        if (!force) throw err;
        log.warn(
          { err: (err as Error).message, by },
          'the cloud could not be told; forgetting the identity anyway (--force)',
        );
      }
      removeIdentity(config.pairing.dir);
      log.warn({ fortId: identity.fort_id, cloudTold, by }, 'unpaired: identity and keys removed, data kept');
      return { fortId: identity.fort_id, cloudTold };
    },
    updateIdentity: async (csr) => {
      if (!paired) throw notPaired('this fort is not paired yet');
      // Not the cloud's artifact key: the deployment manager trusts only its root-owned config.
      const { fort_id, device_certificate, device_ca, server_ca, update_server } = await paired.deviceCertificate(csr);
      return { fort_id, device_certificate, device_ca, server_ca, update_server };
    },
    rotateKeys: async (by) => {
      if (!paired) throw notPaired();
      const { rotateKeys } = await loadPairing();
      const done = await rotateKeys(config.pairing.dir, paired);
      log.warn(
        { fortId: done.fortId, previousValidUntil: done.previousValidUntil, by },
        'keys rotated: new JWT key and device certificate in place',
      );
      return done;
    },
    restart: (reason) => {
      log.info({ reason }, 'restarting to apply the new identity');
      deps.shutdown(reason);
    },
  };
}
