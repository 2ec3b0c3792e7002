import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { CertificateReport } from '../lib/admin-client.js';
import { certificateReport } from '../lib/certificate-report.js';
import type { AgentConfig } from './config.js';

/** Every certificate in a PEM file (a chain or a CA bundle). */
function certificatesIn(file: string): X509Certificate[] {
  const text = readFileSync(file, 'utf8');
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (pem) => new X509Certificate(pem),
  );
}

/** The certificate files the agent's configuration uses, by what they are for. */
function certificateFiles(config: AgentConfig): [string, string | undefined][] {
  return [
    ['admin API (trust zone)', config.admin.tls.cert],
    ['trust-zone root CA', config.admin.tls.ca],
    ['client API (client zone)', config.api.tls.cert],
    ['cloud API CA', config.cloud?.ca],
    ['IoT endpoint CA', config.iot?.ca],
    [
      'IoT device certificate',
      config.iot?.credentials.source === 'provider' ? config.iot.credentials.tls.cert : undefined,
    ],
    [
      'IoT credentials provider CA',
      config.iot?.credentials.source === 'provider' ? config.iot.credentials.tls.ca : undefined,
    ],
    ['pairing endpoint CA', config.pairing.ca],
  ];
}

/**
 * The expiry of every certificate the agent uses (`fortctl certs check`). Read from disk on each
 * call, so a replaced file shows its new dates; a file shared by two roles is reported once.
 */
export function certificateInventory(config: AgentConfig, now = new Date()): CertificateReport[] {
  const seen = new Set<string>();
  const out: CertificateReport[] = [];
  for (const [role, file] of certificateFiles(config)) {
    if (!file || seen.has(file) || !existsSync(file)) continue;
    seen.add(file);
    certificatesIn(file).forEach((c, index) => out.push(certificateReport(role, file, c, index, now)));
  }
  return out;
}
