import { isIP } from 'node:net';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  GeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  id_ce_nameConstraints,
  NameConstraints,
} from '@peculiar/asn1-x509';
import { x509, webcrypto, type CryptoKeyPair } from './x509.js';

/** ECDSA P-256 with SHA-256 everywhere. */
const KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface KeyAndCert {
  certPem: string;
  /** PKCS#8 PEM */
  keyPem: string;
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

export interface CaOptions {
  commonName: string;
  organization?: string;
  validDays?: number;
  notBefore?: Date;
  notAfter?: Date;
  /**
   * The only names and addresses this CA may certify (RFC 5280 name constraints, critical): a
   * stolen key of a CA that browsers trust for one fort cannot mint certificates for other sites.
   */
  permitted?: { dnsNames: string[]; ipAddresses: string[] };
}

/**
 * Name constraints permitting exactly `p` (each IP as a single address). A kind with no entry is
 * excluded whole, or it would be unconstrained: RFC 5280 constrains only the kinds listed.
 */
function nameConstraints(p: NonNullable<CaOptions['permitted']>): x509.Extension {
  const tree = (names: GeneralName[]) =>
    names.length ? new GeneralSubtrees(names.map((base) => new GeneralSubtree({ base }))) : undefined;
  const ip = (a: string) => new GeneralName({ iPAddress: isIP(a) === 4 ? `${a}/32` : `${a}/128` });
  const permitted = tree([...p.dnsNames.map((d) => new GeneralName({ dNSName: d })), ...p.ipAddresses.map(ip)]);
  const excluded = tree([
    ...(p.dnsNames.length ? [] : [new GeneralName({ dNSName: '' })]),
    ...(p.ipAddresses.length ? [] : ['0.0.0.0/0', '::/0'].map((c) => new GeneralName({ iPAddress: c }))),
  ]);
  const value = AsnConvert.serialize(
    new NameConstraints({
      ...(permitted ? { permittedSubtrees: permitted } : {}),
      ...(excluded ? { excludedSubtrees: excluded } : {}),
    }),
  );
  return new x509.Extension(id_ce_nameConstraints, true, value);
}

export type CertUsage = 'server' | 'client' | 'server+client';

export interface IssueOptions {
  commonName: string;
  organization?: string;
  usage: CertUsage;
  dnsNames?: string[];
  ipAddresses?: string[];
  validDays?: number;
  notBefore?: Date;
  notAfter?: Date;
}

function generateKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify']);
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return pem(x509.PemConverter.encode(der, 'PRIVATE KEY'));
}

function pem(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** Random 16-byte serial with the top bit cleared so the DER INTEGER stays positive. */
function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0]! & 0x7f) | 0x01; // non-zero first byte: no leading-zero trimming
  return Buffer.from(bytes).toString('hex');
}

function distinguishedName(commonName: string, organization?: string): x509.JsonName {
  const name: x509.JsonName = [{ CN: [commonName] }];
  if (organization) name.push({ O: [organization] });
  return name;
}

function validity(
  o: { validDays?: number; notBefore?: Date; notAfter?: Date },
  defaultDays: number,
): { notBefore: Date; notAfter: Date } {
  // Back-date a minute so a peer with slight clock skew accepts a fresh cert.
  const notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = o.notAfter ?? new Date(notBefore.getTime() + (o.validDays ?? defaultDays) * DAY_MS);
  return { notBefore, notAfter };
}

async function bundle(cert: x509.X509Certificate, keys: CryptoKeyPair): Promise<KeyAndCert> {
  return { certPem: pem(cert.toString('pem')), keyPem: await privateKeyPem(keys.privateKey), cert, keys };
}

export async function createCa(opts: CaOptions): Promise<KeyAndCert> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: distinguishedName(opts.commonName, opts.organization),
    ...validity(opts, 3650),
    keys,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...(opts.permitted ? [nameConstraints(opts.permitted)] : []),
    ],
  });
  return bundle(cert, keys);
}

export async function issueCert(ca: Pick<KeyAndCert, 'cert' | 'keys'>, opts: IssueOptions): Promise<KeyAndCert> {
  const keys = await generateKeys();
  return bundle(await signCert(ca, keys.publicKey, opts), keys);
}

/** The CA's certificate over `publicKey`. */
async function signCert(
  ca: Pick<KeyAndCert, 'cert' | 'keys'>,
  publicKey: webcrypto.CryptoKey,
  opts: IssueOptions,
): Promise<x509.X509Certificate> {
  const ekus: string[] = [];
  if (opts.usage !== 'client') ekus.push(x509.ExtendedKeyUsage.serverAuth);
  if (opts.usage !== 'server') ekus.push(x509.ExtendedKeyUsage.clientAuth);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(ekus, false),
    await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
  ];
  const sans: x509.JsonGeneralName[] = [
    ...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(opts.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans, false));
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: distinguishedName(opts.commonName, opts.organization),
    issuer: ca.cert.subjectName,
    ...validity(opts, 825),
    publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: SIGN_ALG,
    extensions,
  });
}

/**
 * The same certificate again from `ca`, for the same key: subject, names, usages and every other
 * extension copied, a new serial, as long a life starting now (back-dated a minute, or a tenth of
 * a short life), never past the CA's own. Refuses a certificate `ca` did not issue (a customer's).
 */
export async function renewCert(
  ca: Pick<KeyAndCert, 'cert' | 'keys'>,
  leafPem: string,
  now = new Date(),
): Promise<string> {
  const leaf = new x509.X509Certificate(leafPem);
  if (!(await leaf.verify({ publicKey: ca.cert.publicKey, signatureOnly: true })))
    throw new Error(`${leaf.subject} was not issued by ${ca.cert.subject}`);
  const life = leaf.notAfter.getTime() - leaf.notBefore.getTime();
  const notBefore = new Date(now.getTime() - Math.min(60_000, life / 10));
  const notAfter = new Date(Math.min(notBefore.getTime() + life, ca.cert.notAfter.getTime()));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: leaf.subjectName,
    issuer: ca.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: leaf.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: SIGN_ALG,
    extensions: leaf.extensions,
  });
  return pem(cert.toString('pem'));
}

/** A CA from its PEM certificate and PKCS#8 key (P-256), ready to sign. */
export async function loadCa(certPem: string, keyPem: string): Promise<Pick<KeyAndCert, 'cert' | 'keys'>> {
  const cert = new x509.X509Certificate(certPem);
  const privateKey: webcrypto.CryptoKey = await webcrypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(keyPem),
    KEY_ALG,
    false,
    ['sign'],
  );
  return {
    cert,
    keys: { publicKey: (await cert.publicKey.export(KEY_ALG, ['verify'])) as webcrypto.CryptoKey, privateKey },
  };
}

/** A P-256 key pair and a PKCS#10 request for it (the key never leaves the holder). */
export async function createCsr(commonName: string): Promise<{ keyPem: string; csrPem: string }> {
  const keys = await generateKeys();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: distinguishedName(commonName),
    keys,
    signingAlgorithm: SIGN_ALG,
  });
  return { keyPem: await privateKeyPem(keys.privateKey), csrPem: pem(csr.toString('pem')) };
}

/** ES256 key pair for JWT client assertions. */
export async function createSigningKeyPair(): Promise<{ privateKeyPem: string; publicKeyPem: string }> {
  const keys = await generateKeys();
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey);
  return {
    privateKeyPem: await privateKeyPem(keys.privateKey),
    publicKeyPem: pem(x509.PemConverter.encode(spki, 'PUBLIC KEY')),
  };
}
