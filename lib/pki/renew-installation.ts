import { X509Certificate } from 'node:crypto';
import { chownSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { assertPrivateFileMode, writeFileAtomic } from '../files.js';
import { loadCa, renewCert } from './certs.js';
import { renewalDueAt } from './renewal-due.js';

/** The leaves of an installation's two zones (scripts/install.sh, lib/pki/generate.ts), by role. */
const ZONES = [
  {
    zone: 'trust-zone',
    leaves: [
      ['agent', 'agent.pem'],
      ['deployment-manager', 'deployment-manager.pem'],
      ['fortctl', 'fortctl.pem'],
      ['engine', 'engine.pem'],
    ],
  },
  { zone: 'client-zone', leaves: [['client API', 'client-api.pem']] },
] as const;

export interface CertRenewal {
  zone: string;
  role: string;
  file: string;
  /** What was done: renewed, not due yet (and when it is), or left alone with why. */
  outcome: 'renewed' | 'not-due' | 'not-ours';
  notAfter: string;
  /** renewed: the new certificate's serial; not-due: when it falls due. */
  serialNumber?: string;
  dueAt?: string;
  reason?: string;
}

/**
 * Renews the certificates of an installation's trust and client zones that are past two thirds
 * of their life (all of them with `force`), each from its zone's CA, for the same key, written in
 * place with its owner and mode kept. A certificate the zone's CA did not issue (a customer's
 * client API certificate) is left alone and reported, with its expiry, for its owner to renew.
 * Needs the CA keys: root's, as installed.
 */
export async function renewInstallationCerts(
  pkiDir: string,
  o: { now?: Date; force?: boolean } = {},
): Promise<CertRenewal[]> {
  const now = o.now ?? new Date();
  const done: CertRenewal[] = [];
  for (const { zone, leaves } of ZONES) {
    const dir = join(pkiDir, zone);
    const caFile = join(dir, 'ca.pem');
    const caKeyFile = join(dir, 'ca.key');
    // Read once per zone, when a certificate of it is due.
    let caCert: X509Certificate | undefined;
    let ca: Awaited<ReturnType<typeof loadCa>> | undefined;
    for (const [role, name] of leaves) {
      const file = join(dir, name);
      if (!existsSync(file)) continue;
      const pem = readFileSync(file, 'utf8');
      const cert = new X509Certificate(pem);
      const base = { zone, role, file, notAfter: new Date(cert.validTo).toISOString() };
      const due = renewalDueAt(cert);
      if (!o.force && now.getTime() < due) {
        done.push({ ...base, outcome: 'not-due', dueAt: new Date(due).toISOString() });
        continue;
      }
      caCert ??= new X509Certificate(readFileSync(caFile));
      if (!existsSync(caKeyFile) || !cert.checkIssued(caCert)) {
        done.push({ ...base, outcome: 'not-ours', reason: `not issued by ${caFile}: renew it yourself` });
        continue;
      }
      if (!ca) {
        assertPrivateFileMode(caKeyFile);
        ca = await loadCa(readFileSync(caFile, 'utf8'), readFileSync(caKeyFile, 'utf8'));
      }
      const renewed = await renewCert(ca, pem, now);
      const { mode, uid, gid } = statSync(file);
      writeFileAtomic(file, renewed, mode & 0o777);
      chownSync(file, uid, gid);
      const next = new X509Certificate(renewed);
      done.push({
        ...base,
        outcome: 'renewed',
        notAfter: new Date(next.validTo).toISOString(),
        serialNumber: next.serialNumber,
      });
    }
  }
  return done;
}
