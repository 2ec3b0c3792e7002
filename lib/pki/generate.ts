import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { isIP } from 'node:net';
import { FortError } from '../errors.js';
import { writeFileAtomic, writeSecretFile } from '../files.js';
import { createCa, createSigningKeyPair, issueCert, type KeyAndCert } from './certs.js';
import { PKI_ZONES, pkiFiles, pkiPaths, type PkiPaths } from './layout.js';

export interface GeneratePkiOptions {
  out: string;
  force?: boolean;
  fortId?: string;
  /** SANs of the client API server cert; IPv4/IPv6 literals become IP SANs, the rest DNS. */
  clientApiNames?: string[];
  /** SANs of the agent (admin server) and dev-cloud certs. */
  serverNames?: string[];
}

const DEFAULT_NAMES = ['localhost', '127.0.0.1'];

function sans(names: string[]): { dnsNames: string[]; ipAddresses: string[] } {
  return { dnsNames: names.filter((n) => isIP(n) === 0), ipAddresses: names.filter((n) => isIP(n) !== 0) };
}

/**
 * Generate the four dev/test CAs, their leaves and the JWT key pair. All material is
 * created in memory before anything is written, and existing files are refused up front
 * (unless `force`), so a refused run leaves the directory untouched.
 */
export async function generatePki(opts: GeneratePkiOptions): Promise<PkiPaths> {
  const paths = pkiPaths(opts.out);
  const force = opts.force ?? false;
  if (!force) {
    const existing = pkiFiles(paths).find((f) => existsSync(f));
    if (existing) throw new FortError('FORT_ERR_FILE_EXISTS', `${existing} already exists (use --force to overwrite)`);
  }

  const fortId = opts.fortId ?? 'fort-dev-1';
  const server = sans(opts.serverNames ?? DEFAULT_NAMES);
  const clientApi = sans(opts.clientApiNames ?? DEFAULT_NAMES);

  const tzCa = await createCa({ commonName: `Fort trust-zone root CA ${fortId}` });
  const agent = await issueCert(tzCa, { commonName: 'agent', usage: 'server+client', ...server });
  const dm = await issueCert(tzCa, { commonName: 'deployment-manager', usage: 'client' });
  const fortctl = await issueCert(tzCa, { commonName: 'fortctl', usage: 'client' });
  const czCa = await createCa({ commonName: `Fort client-zone CA ${fortId}` });
  const api = await issueCert(czCa, { commonName: 'fort client api', usage: 'server', ...clientApi });
  const csCa = await createCa({ commonName: 'Fort dev cloud server CA' });
  const devCloud = await issueCert(csCa, { commonName: 'dev-cloud', usage: 'server', ...server });
  const cdCa = await createCa({ commonName: 'Fort dev cloud device CA' });
  const device = await issueCert(cdCa, { commonName: fortId, usage: 'client' });
  const jwt = await createSigningKeyPair();

  // Key directories are owner-only even if they pre-existed with a looser mode.
  mkdirSync(paths.root, { recursive: true, mode: 0o700 });
  for (const zone of PKI_ZONES) {
    mkdirSync(paths[zone].dir, { recursive: true, mode: 0o700 });
    chmodSync(paths[zone].dir, 0o700);
  }

  const pair = (kc: KeyAndCert, cert: string, key: string) => {
    writeSecretFile(key, kc.keyPem, force);
    writeFileAtomic(cert, kc.certPem, 0o644);
  };
  const tz = paths.trustZone;
  pair(tzCa, tz.ca, tz.caKey);
  pair(agent, tz.agentCert, tz.agentKey);
  pair(dm, tz.deploymentManagerCert, tz.deploymentManagerKey);
  pair(fortctl, tz.fortctlCert, tz.fortctlKey);
  const cz = paths.clientZone;
  pair(czCa, cz.ca, cz.caKey);
  pair(api, cz.clientApiCert, cz.clientApiKey);
  const cs = paths.cloudServer;
  pair(csCa, cs.ca, cs.caKey);
  pair(devCloud, cs.devCloudCert, cs.devCloudKey);
  const cd = paths.cloudDevice;
  pair(cdCa, cd.ca, cd.caKey);
  pair(device, cd.deviceCert, cd.deviceKey);
  writeSecretFile(paths.jwt.privateKey, jwt.privateKeyPem, force);
  writeFileAtomic(paths.jwt.publicKey, jwt.publicKeyPem, 0o644);
  return paths;
}
