import type { X509Certificate } from 'node:crypto';

/** Renewed once this share of a certificate's life has passed (as ACME clients and cert-manager do). */
export const RENEW_AT_FRACTION = 2 / 3;

/** When `cert` is due for renewal (ms since the epoch): two thirds into its validity. */
export function renewalDueAt(cert: Pick<X509Certificate, 'validFrom' | 'validTo'>): number {
  const from = Date.parse(cert.validFrom);
  return from + (Date.parse(cert.validTo) - from) * RENEW_AT_FRACTION;
}
