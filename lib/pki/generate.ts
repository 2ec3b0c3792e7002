import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { isIP } from 'node:net';
import { FortError } from '../errors.js';
import { writeFileAtomic, writeSecretFile } from '../files.js';
import { createCa, createSigningKeyPair, issueCert, type KeyAndCert } from './certs.js';
import { PKI_ZONES, pkiFiles, pkiPaths, type PkiPaths, type PkiZone } from './layout.js';

export interface GeneratePkiOptions {
  out: string;
  force?: boolean;
  fortId?: string;
  /** SANs of the client API server cert; IPv4/IPv6 literals become IP SANs, the rest DNS. */
  clientApiNames?: string[];
  /** SANs of the agent (admin server) and dev-cloud certs. */
  serverNames?: string[];
  /**
   * Only these zones (default: all). An installed fort needs only its own trust and client
   * zones; the cloud zones are stand-ins for the dev cloud.
   */
  zones?: readonly PkiZone[];
  /** Validity of the trust- and client-zone leaves (default 825 days from now): tests use certificates that live minutes. */
  leafValidity?: { notBefore: Date; notAfter: Date };
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
  const zones = opts.zones ?? PKI_ZONES;
  if (!force) {
    const existing = pkiFiles(paths, zones).find((f) => existsSync(f));
    if (existing) throw new FortError('FORT_ERR_FILE_EXISTS', `${existing} already exists (use --force to overwrite)`);
  }

  const fortId = opts.fortId ?? 'fort-dev-1';
  const server = sans(opts.serverNames ?? DEFAULT_NAMES);
  const clientApi = sans(opts.clientApiNames ?? DEFAULT_NAMES);
  const want = (z: PkiZone) => zones.includes(z);
  const leaf = opts.leafValidity ?? {};

  // Everything is made before anything is written.
  const writes: (() => void)[] = [];
  const pair = (kc: KeyAndCert, cert: string, key: string) =>
    writes.push(() => {
      writeSecretFile(key, kc.keyPem, force);
      writeFileAtomic(cert, kc.certPem, 0o644);
    });
  if (want('trustZone')) {
    const tz = paths.trustZone;
    const ca = await createCa({ commonName: `Fort trust-zone root CA ${fortId}` });
    pair(ca, tz.ca, tz.caKey);
    pair(
      await issueCert(ca, { commonName: 'agent', usage: 'server+client', ...server, ...leaf }),
      tz.agentCert,
      tz.agentKey,
    );
    pair(
      await issueCert(ca, { commonName: 'deployment-manager', usage: 'client', ...leaf }),
      tz.deploymentManagerCert,
      tz.deploymentManagerKey,
    );
    pair(await issueCert(ca, { commonName: 'fortctl', usage: 'client', ...leaf }), tz.fortctlCert, tz.fortctlKey);
    pair(
      await issueCert(ca, { commonName: 'engine', usage: 'server', ...server, ...leaf }),
      tz.engineCert,
      tz.engineKey,
    );
  }
  if (want('clientZone')) {
    const cz = paths.clientZone;
    // Constrained to the client API's own names: browsers trust this CA, so its key must not be able to vouch for any other site.
    const ca = await createCa({ commonName: `Fort client-zone CA ${fortId}`, permitted: clientApi });
    pair(ca, cz.ca, cz.caKey);
    pair(
      await issueCert(ca, { commonName: 'fort client api', usage: 'server', ...clientApi, ...leaf }),
      cz.clientApiCert,
      cz.clientApiKey,
    );
  }
  if (want('cloudServer')) {
    const cs = paths.cloudServer;
    const ca = await createCa({ commonName: 'Fort dev cloud server CA' });
    pair(ca, cs.ca, cs.caKey);
    pair(await issueCert(ca, { commonName: 'dev-cloud', usage: 'server', ...server }), cs.devCloudCert, cs.devCloudKey);
  }
  if (want('cloudDevice')) {
    const cd = paths.cloudDevice;
    const ca = await createCa({ commonName: 'Fort dev cloud device CA' });
    pair(ca, cd.ca, cd.caKey);
    pair(await issueCert(ca, { commonName: fortId, usage: 'client' }), cd.deviceCert, cd.deviceKey);
  }
  if (want('jwt')) {
    const jwt = await createSigningKeyPair();
    writes.push(() => {
      writeSecretFile(paths.jwt.privateKey, jwt.privateKeyPem, force);
      writeFileAtomic(paths.jwt.publicKey, jwt.publicKeyPem, 0o644);
    });
  }

  // Key directories are owner-only even if they pre-existed with a looser mode.
  mkdirSync(paths.root, { recursive: true, mode: 0o700 });
  for (const zone of zones) {
    mkdirSync(paths[zone].dir, { recursive: true, mode: 0o700 });
    chmodSync(paths[zone].dir, 0o700);
  }
  for (const write of writes) write();
  return paths;
}
