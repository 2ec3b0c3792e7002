import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync, readFileSync, readdirSync, statSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issueCert } from '../../../lib/pki/certs.js';
import { generatePki } from '../../../lib/pki/generate.js';
import { PKI_ZONES, pkiFiles, type PkiPaths } from '../../../lib/pki/layout.js';
import { x509 } from '../../../lib/pki/x509.js';
import { FortError } from '../../../lib/errors.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

const tmpDirs: string[] = [];
function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fort-pki-'));
  tmpDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs the real `openssl verify`; returns true when the chain and purpose check out. */
function opensslVerify(caFile: string, leafFile: string, purpose: 'sslserver' | 'sslclient'): boolean {
  try {
    execFileSync('openssl', ['verify', '-CAfile', caFile, '-purpose', purpose, leafFile], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

const cert = (file: string) => new X509Certificate(readFileSync(file));
const mode = (file: string) => statSync(file).mode & 0o777;

describe('generatePki', () => {
  let out: string;
  let p: PkiPaths;

  beforeAll(async () => {
    out = tmp();
    p = await generatePki({ out, clientApiNames: ['fort.example.lan', '10.0.0.5', '::1'] });
  });

  it('writes every file with owner-only keys and key directories', () => {
    const files = pkiFiles(p);
    expect(files).toHaveLength(24);
    for (const f of files) expect(existsSync(f), f).toBe(true);
    const keys = files.filter((f) => f.endsWith('.key'));
    expect(keys).toHaveLength(12);
    for (const f of keys) expect(mode(f), f).toBe(0o600);
    for (const z of PKI_ZONES) expect(mode(p[z].dir), p[z].dir).toBe(0o700);
    // Nothing else (no leftover temp files).
    const listed = PKI_ZONES.flatMap((z) => readdirSync(p[z].dir).map((f) => join(p[z].dir, f)));
    expect(listed.sort()).toEqual([...files].sort());
    expect(mode(p.trustZone.ca)).toBe(0o644);
    // Leaf files hold only the leaf.
    expect(readFileSync(p.trustZone.agentCert, 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
  });

  it('leaves verify against their own CA with openssl and fail against other zones', () => {
    const { trustZone: tz, clientZone: cz, cloudServer: cs, cloudDevice: cd } = p;
    expect(opensslVerify(tz.ca, tz.agentCert, 'sslserver')).toBe(true);
    expect(opensslVerify(tz.ca, tz.agentCert, 'sslclient')).toBe(true);
    expect(opensslVerify(tz.ca, tz.deploymentManagerCert, 'sslclient')).toBe(true);
    expect(opensslVerify(tz.ca, tz.fortctlCert, 'sslclient')).toBe(true);
    expect(opensslVerify(cz.ca, cz.clientApiCert, 'sslserver')).toBe(true);
    expect(opensslVerify(cs.ca, cs.devCloudCert, 'sslserver')).toBe(true);
    expect(opensslVerify(cd.ca, cd.deviceCert, 'sslclient')).toBe(true);

    expect(opensslVerify(tz.ca, cz.clientApiCert, 'sslserver')).toBe(false);
    expect(opensslVerify(cz.ca, tz.agentCert, 'sslserver')).toBe(false);
    expect(opensslVerify(tz.ca, cs.devCloudCert, 'sslserver')).toBe(false);
    expect(opensslVerify(cs.ca, cd.deviceCert, 'sslclient')).toBe(false);
    expect(opensslVerify(cd.ca, tz.fortctlCert, 'sslclient')).toBe(false);
    // Purpose is enforced: client-only certs are not servers.
    expect(opensslVerify(tz.ca, tz.fortctlCert, 'sslserver')).toBe(false);
    expect(opensslVerify(cz.ca, cz.clientApiCert, 'sslclient')).toBe(false);
  });

  it('sets EKUs, key usage, SANs and CA flags', () => {
    const agent = cert(p.trustZone.agentCert);
    expect(agent.keyUsage.sort()).toEqual([SERVER_AUTH, CLIENT_AUTH].sort());
    expect(agent.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    expect(agent.subject).toBe('CN=agent');
    expect(cert(p.trustZone.deploymentManagerCert).keyUsage).toEqual([CLIENT_AUTH]);
    expect(cert(p.trustZone.fortctlCert).keyUsage).toEqual([CLIENT_AUTH]);
    expect(cert(p.trustZone.fortctlCert).subjectAltName).toBeUndefined();

    const api = cert(p.clientZone.clientApiCert);
    expect(api.keyUsage).toEqual([SERVER_AUTH]);
    expect(api.subjectAltName).toBe('DNS:fort.example.lan, IP Address:10.0.0.5, IP Address:0:0:0:0:0:0:0:1');
    expect(api.subject).toBe('CN=fort client api');

    const devCloud = cert(p.cloudServer.devCloudCert);
    expect(devCloud.keyUsage).toEqual([SERVER_AUTH]);
    expect(devCloud.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    const device = cert(p.cloudDevice.deviceCert);
    expect(device.keyUsage).toEqual([CLIENT_AUTH]);
    expect(device.subject).toBe('CN=fort-dev-1');

    const tzCa = cert(p.trustZone.ca);
    expect(tzCa.ca).toBe(true);
    expect(tzCa.subject).toBe('CN=Fort trust-zone root CA fort-dev-1');
    expect(agent.ca).toBe(false);
    expect(agent.checkIssued(tzCa)).toBe(true);
    expect(api.checkIssued(tzCa)).toBe(false);
    expect(api.checkIssued(cert(p.clientZone.ca))).toBe(true);

    const caKu = new x509.X509Certificate(readFileSync(p.trustZone.ca, 'utf8')).getExtension(x509.KeyUsagesExtension);
    expect(caKu?.critical).toBe(true);
    expect(caKu?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    const leafKu = new x509.X509Certificate(readFileSync(p.trustZone.agentCert, 'utf8')).getExtension(
      x509.KeyUsagesExtension,
    );
    expect(leafKu?.critical).toBe(true);
    expect(leafKu?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    const bc = new x509.X509Certificate(readFileSync(p.trustZone.ca, 'utf8')).getExtension(
      x509.BasicConstraintsExtension,
    );
    expect(bc?.ca).toBe(true);
    expect(bc?.critical).toBe(true);
  });

  it('creates four distinct CAs', () => {
    const keys = [p.trustZone.ca, p.clientZone.ca, p.cloudServer.ca, p.cloudDevice.ca].map((f) =>
      cert(f).publicKey.export({ format: 'der', type: 'spki' }).toString('hex'),
    );
    expect(new Set(keys).size).toBe(4);
  });

  it('refuses to overwrite without force, leaving files unchanged; force replaces the CA', async () => {
    const dir = tmp();
    const first = await generatePki({ out: dir });
    const before = pkiFiles(first).map((f) => readFileSync(f));
    const err = await generatePki({ out: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FortError);
    expect((err as FortError).code).toBe('FORT_ERR_FILE_EXISTS');
    expect((err as FortError).message).toMatch(/already exists \(use --force to overwrite\)/);
    pkiFiles(first).forEach((f, i) => expect(readFileSync(f).equals(before[i]!), f).toBe(true));

    const again = await generatePki({ out: dir, force: true });
    expect(readFileSync(again.trustZone.ca).equals(before[0]!)).toBe(false);
    for (const f of pkiFiles(again).filter((f) => f.endsWith('.key'))) expect(mode(f), f).toBe(0o600);
    expect(opensslVerify(again.trustZone.ca, again.trustZone.agentCert, 'sslserver')).toBe(true);
  });

  it('JWT key pair signs and verifies (ES256)', () => {
    const data = Buffer.from('client assertion');
    const sig = sign('sha256', data, createPrivateKey(readFileSync(p.jwt.privateKey)));
    expect(verify('sha256', data, createPublicKey(readFileSync(p.jwt.publicKey)), sig)).toBe(true);
    expect(createPrivateKey(readFileSync(p.jwt.privateKey)).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });
});

describe('issueCert / createCa', () => {
  it('issues expired certs on request', async () => {
    const ca = await createCa({ commonName: 'test CA' });
    const expired = await issueCert(ca, {
      commonName: 'old',
      usage: 'server',
      dnsNames: ['localhost'],
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const c = new X509Certificate(expired.certPem);
    expect(new Date(c.validTo).getTime()).toBeLessThan(Date.now());
    expect(c.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
  });

  it('a rogue CA with the same subject name does not validate genuine-looking leaves', async () => {
    const dir = tmp();
    const genuine = await createCa({ commonName: 'Fort trust-zone root CA x' });
    const rogue = await createCa({ commonName: 'Fort trust-zone root CA x' });
    expect(new X509Certificate(rogue.certPem).subject).toBe(new X509Certificate(genuine.certPem).subject);
    const leaf = await issueCert(rogue, { commonName: 'agent', usage: 'server+client', dnsNames: ['localhost'] });
    writeFileSync(join(dir, 'genuine.pem'), genuine.certPem);
    writeFileSync(join(dir, 'rogue.pem'), rogue.certPem);
    writeFileSync(join(dir, 'leaf.pem'), leaf.certPem);
    expect(opensslVerify(join(dir, 'rogue.pem'), join(dir, 'leaf.pem'), 'sslserver')).toBe(true);
    expect(opensslVerify(join(dir, 'genuine.pem'), join(dir, 'leaf.pem'), 'sslserver')).toBe(false);
    expect(new X509Certificate(leaf.certPem).verify(new X509Certificate(genuine.certPem).publicKey)).toBe(false);
  });

  it('uses positive 16-byte serials and PKCS#8 keys', async () => {
    const ca = await createCa({ commonName: 'serial CA', organization: 'Fort' });
    const c = new X509Certificate(ca.certPem);
    expect(c.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/);
    expect(c.subject).toBe('CN=serial CA\nO=Fort');
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });
});

describe('the client-zone CA is name-constrained to the fort', () => {
  /** A TLS handshake on loopback against `leaf`, trusting `caPem` for `servername`: the error, or 'ok'. */
  async function handshake(caPem: string, leaf: { certPem: string; keyPem: string }, servername: string) {
    const { createServer, connect } = await import('node:tls');
    const server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      return await new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port, ca: caPem, servername }, () => {
          s.destroy();
          resolve('ok');
        });
        s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      });
    } finally {
      server.close();
    }
  }

  it('its own names verify; a certificate its key mints for another site does not, in OpenSSL and in a handshake', async () => {
    const out = tmp();
    try {
      const p = await generatePki({ out, zones: ['clientZone'], clientApiNames: ['fort.example.lan', '10.0.0.5'] });
      const caPem = readFileSync(p.clientZone.ca, 'utf8');
      const ext = new x509.X509Certificate(caPem).getExtension('2.5.29.30');
      expect(ext?.critical).toBe(true);
      expect(
        execFileSync('openssl', ['x509', '-in', p.clientZone.ca, '-noout', '-ext', 'nameConstraints']).toString(),
      ).toMatch(/Permitted:\s+DNS:fort\.example\.lan\s+IP:10\.0\.0\.5\/255\.255\.255\.255/);
      // The CA's key, stolen: what it would sign for other names.
      const ca = { certPem: caPem, keyPem: readFileSync(p.clientZone.caKey, 'utf8') };
      const { loadCa } = await import('../../../lib/pki/certs.js');
      const stolen = await loadCa(ca.certPem, ca.keyPem);
      const own = await issueCert(stolen, { commonName: 'own', usage: 'server', dnsNames: ['fort.example.lan'] });
      const bank = await issueCert(stolen, { commonName: 'bank', usage: 'server', dnsNames: ['bank.example'] });
      const lan = await issueCert(stolen, { commonName: 'lan', usage: 'server', ipAddresses: ['10.0.0.6'] });
      expect(await handshake(caPem, own, 'fort.example.lan')).toBe('ok');
      // Node names OpenSSL's "permitted subtree violation" UNSPECIFIED; openssl verify below says which.
      expect(await handshake(caPem, bank, 'bank.example')).not.toBe('ok');
      for (const leaf of [bank, lan]) {
        const file = join(out, 'leaf.pem');
        writeFileSync(file, leaf.certPem);
        expect(() => execFileSync('openssl', ['verify', '-CAfile', p.clientZone.ca, file], { stdio: 'pipe' })).toThrow(
          /permitted subtree violation/,
        );
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('a kind of name it is given none of is excluded whole, not left open', async () => {
    const ca = await createCa({ commonName: 'dns only', permitted: { dnsNames: ['fort.lan'], ipAddresses: [] } });
    const byIp = await issueCert(ca, { commonName: 'ip', usage: 'server', ipAddresses: ['192.0.2.1'] });
    const out = tmp();
    try {
      writeFileSync(join(out, 'ca.pem'), ca.certPem);
      writeFileSync(join(out, 'leaf.pem'), byIp.certPem);
      expect(() =>
        execFileSync('openssl', ['verify', '-CAfile', join(out, 'ca.pem'), join(out, 'leaf.pem')], { stdio: 'pipe' }),
      ).toThrow(/excluded subtree violation/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
