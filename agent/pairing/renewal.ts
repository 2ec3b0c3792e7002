import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from '../../lib/logger.js';
import { renewalDueAt } from '../../lib/pki/renewal-due.js';
/** Looked at again within this even when renewal is far off: a clock jump or a suspended host is noticed. */
const MAX_WAIT_MS = 3_600_000;
/** After a failed renewal: a tenth of what is left, between 10 s and an hour. */
const retryAfterMs = (leftMs: number) => Math.min(MAX_WAIT_MS, Math.max(10_000, leftMs / 10));

export interface KeyRenewalOptions {
  /** The paired fort's device certificate (pairing/device.pem). */
  deviceCertFile: string;
  /** New JWT key and device key, registered with the cloud and moved into place (rotateKeys). */
  rotate(): Promise<{ previousValidUntil: string }>;
  /** The new keys are read at start: the process restarts (systemd brings it back). */
  restart(reason: string): void;
  log: Logger;
  now?: () => number;
}

/**
 * Renews a paired fort's cloud identity by itself: past two thirds of the device certificate's
 * life, the JWT key and the device key are rotated through the cloud (the route `fortctl
 * rotate-keys` uses; the old ones stay valid for the cloud's overlap) and the agent restarts with
 * them. A refused or unreachable cloud is tried again, more often as expiry nears, with an error
 * log naming the expiry each time: an operator sees it long before the certificate runs out.
 */
export function startKeyRenewal(o: KeyRenewalOptions) {
  const now = o.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const wait = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => void look(), Math.min(Math.max(0, ms), MAX_WAIT_MS));
    timer.unref();
  };
  const look = async (): Promise<void> => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(readFileSync(o.deviceCertFile));
    } catch (err) {
      o.log.error({ file: o.deviceCertFile, reason: (err as Error).message }, 'device certificate unreadable');
      return wait(MAX_WAIT_MS);
    }
    const to = Date.parse(cert.validTo);
    const due = renewalDueAt(cert);
    const t = now();
    if (t < due) return wait(due - t);
    try {
      const done = await o.rotate();
      if (stopped) return;
      o.log.warn(
        { notAfter: cert.validTo, previousValidUntil: done.previousValidUntil },
        'device certificate and JWT key renewed (two thirds of the certificate life had passed)',
      );
      o.restart('device certificate renewed');
    } catch (err) {
      const retryMs = retryAfterMs(to - t);
      o.log.error(
        { notAfter: new Date(to).toISOString(), reason: (err as Error).message, retryMs },
        'device certificate renewal failed; the current one stays in use, trying again',
      );
      wait(retryMs);
    }
  };
  wait(0);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
