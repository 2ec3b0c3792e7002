import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { extract, pack } from 'tar-stream';

/** Debian's real tool: artifacts in tests are built the way release engineering builds them. */
export const MENDER_ARTIFACT = '/usr/bin/mender-artifact';

export interface BuildArtifactOptions {
  dir: string;
  name: string;
  deviceType: string | string[];
  payloadFile: string | string[];
  payloadType?: string;
  /** What mender-artifact 3.9 supports: none, gzip, lzma (xz). No zstd. */
  compression?: 'gzip' | 'lzma' | 'none';
  /** Private key (PKCS#1 RSA or SEC1 EC PEM) to sign with `mender-artifact sign`. */
  sign?: { key: string };
  /** Output file; default `<dir>/<name>.mender`. */
  out?: string;
}

/** `mender-artifact write module-image …` then, if asked, `mender-artifact sign -k …`; returns the file. */
export function buildArtifact(o: BuildArtifactOptions): string {
  const out = o.out ?? join(o.dir, `${o.name}.mender`);
  const args = ['write', 'module-image', '-T', o.payloadType ?? 'fort-agent', '-n', o.name];
  for (const t of [o.deviceType].flat()) args.push('-t', t);
  for (const f of [o.payloadFile].flat()) args.push('-f', f);
  args.push('-o', out, '--compression', o.compression ?? 'gzip');
  execFileSync(MENDER_ARTIFACT, args, { cwd: o.dir, stdio: 'pipe' });
  if (o.sign) signArtifact(out, o.sign.key);
  return out;
}

export function signArtifact(file: string, key: string, out = file): string {
  execFileSync(MENDER_ARTIFACT, ['sign', '-k', key, '-o', out, file], { stdio: 'pipe' });
  return out;
}

/** The reference verifier: `mender-artifact validate [-k pub.pem] FILE`. */
export function menderValidate(file: string, publicKey?: string): { ok: boolean; output: string } {
  const r = spawnSync(MENDER_ARTIFACT, ['validate', ...(publicKey ? ['-k', publicKey] : []), file], {
    encoding: 'utf8',
  });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
}

export interface KeyPair {
  private: string;
  public: string;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

/** PKCS#1 RSA private key (what mender-artifact signs with) and its SPKI public key. */
export function rsaKeyPair(dir: string, name = 'rsa', bits = 2048): KeyPair {
  const k = { private: join(dir, `${name}.pem`), public: join(dir, `${name}.pub.pem`) };
  openssl(['genrsa', '-traditional', '-out', k.private, String(bits)]);
  openssl(['rsa', '-in', k.private, '-pubout', '-out', k.public]);
  return k;
}

/** SEC1 P-256 private key and its SPKI public key. */
export function ecKeyPair(dir: string, name = 'ec', curve = 'prime256v1'): KeyPair {
  const k = { private: join(dir, `${name}.pem`), public: join(dir, `${name}.pub.pem`) };
  openssl(['ecparam', '-name', curve, '-genkey', '-noout', '-out', k.private]);
  openssl(['ec', '-in', k.private, '-pubout', '-out', k.public]);
  return k;
}

export interface TarEntry {
  name: string;
  data: Buffer;
}

/** All entries of a (small, test) tar file, in order. */
export async function readTar(source: Buffer | string): Promise<TarEntry[]> {
  const ex = extract();
  ex.end(typeof source === 'string' ? readFileSync(source) : source);
  const entries: TarEntry[] = [];
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    entries.push({ name: entry.header.name, data: Buffer.concat(chunks) });
  }
  return entries;
}

/** A tar of `entries` (to a file, or returned when `file` is omitted). */
export async function writeTar(entries: TarEntry[], file?: string): Promise<Buffer> {
  const p = pack();
  for (const e of entries) p.entry({ name: e.name, size: e.data.length, mode: 0o600, mtime: new Date(0) }, e.data);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  const tar = Buffer.concat(chunks);
  if (file) writeFileSync(file, tar);
  return tar;
}

/** Rewrites an artifact's outer tar: `edit` gets the entries and returns the new ones. */
export async function rewriteArtifact(
  src: string,
  dst: string,
  edit: (entries: TarEntry[]) => TarEntry[] | Promise<TarEntry[]>,
): Promise<string> {
  const entries = await edit(await readTar(src));
  await writeTar(entries, dst);
  return dst;
}

export function entry(entries: TarEntry[], name: string): TarEntry {
  const e = entries.find((x) => x.name === name);
  if (!e) throw new Error(`no ${name} in the artifact (has ${entries.map((x) => x.name).join(', ')})`);
  return e;
}

/** Rewrites the payload files inside `data/0000.tar.gz` (gunzip → untar → edit → tar → gzip). */
export async function rewritePayload(
  entries: TarEntry[],
  edit: (files: TarEntry[]) => TarEntry[],
): Promise<TarEntry[]> {
  const data = entry(entries, 'data/0000.tar.gz');
  const files = edit(await readTar(gunzipSync(data.data)));
  const repacked = gzipSync(await writeTar(files));
  return entries.map((e) => (e === data ? { name: e.name, data: repacked } : e));
}

/** A copy of `buf` with byte `at` (negative: from the end) inverted. */
export function flipByte(buf: Buffer, at: number): Buffer {
  const copy = Buffer.from(buf);
  const i = at < 0 ? copy.length + at : at;
  copy[i] = (copy[i] ?? 0) ^ 0xff;
  return copy;
}

export function writeBytes(file: string, data: Buffer): string {
  writeFileSync(file, data);
  return file;
}
