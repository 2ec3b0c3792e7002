import type { X509Certificate } from 'node:crypto';
import type { CertificateReport } from './admin-client.js';

/**
 * The report of one certificate of `file` (the `index`-th of a bundle): the agent's
 * `GET /admin/v1/certs` and fortctl's own certificate (`certs check`, `doctor`) say it alike.
 */
export function certificateReport(
  role: string,
  file: string,
  c: X509Certificate,
  index: number,
  now = new Date(),
): CertificateReport {
  const notAfter = new Date(c.validTo);
  return {
    role,
    file,
    subject: c.subject.replace(/\n/g, ', '),
    issuer: c.issuer.replace(/\n/g, ', '),
    notAfter: notAfter.toISOString(),
    daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / 86_400_000),
    index,
  };
}
