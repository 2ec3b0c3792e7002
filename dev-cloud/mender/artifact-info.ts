import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';

/** What the update server needs from an artifact's headers (Mender artifact format v3). */
export interface ArtifactInfo {
  /** `artifact_provides.artifact_name` of `header-info`. */
  name: string;
  /** `artifact_depends.device_type` of `header-info`. */
  deviceTypes: string[];
  /** `payloads[].type` of `header-info`, in order. */
  payloadTypes: string[];
  /** Whether the artifact carries a `manifest.sig` (not verified here: devices verify). */
  signed: boolean;
}

export class ArtifactFormatError extends Error {}

const MAX_HEADER_BYTES = 1 << 20;

async function readAll(stream: AsyncIterable<unknown>, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const c = chunk as Buffer;
    size += c.length;
    if (size > limit) throw new ArtifactFormatError(`${what} is larger than ${limit} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The header tar's name for each `--compression` of mender-artifact. */
const HEADER = /^header\.tar(\.gz|\.xz|\.zst)?$/;

/** xz and zstd through the system tools (Node 20 has neither); headers are small. */
function decompressWith(tool: 'xz' | 'zstd', input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(tool, ['-dc'], { encoding: 'buffer', maxBuffer: MAX_HEADER_BYTES }, (err, stdout) => {
      if (err)
        reject(new ArtifactFormatError(`cannot decompress the header with ${tool}: ${err.message.split('\n')[0]}`));
      else resolve(stdout);
    });
    child.stdin?.on('error', () => {}); // the tool's exit status tells what went wrong
    child.stdin?.end(input);
  });
}

async function headerTar(name: string, bytes: Buffer): Promise<Buffer> {
  if (name.endsWith('.xz')) return decompressWith('xz', bytes);
  if (name.endsWith('.zst')) return decompressWith('zstd', bytes);
  return bytes;
}

/** `header-info` from the bytes of `header.tar[.gz|.xz|.zst]`. */
async function headerInfo(name: string, compressed: Buffer): Promise<unknown> {
  const extract = tar.extract();
  const bytes = await headerTar(name, compressed);
  const done = name.endsWith('.gz')
    ? pipeline(Readable.from([bytes]), createGunzip(), extract)
    : pipeline(Readable.from([bytes]), extract);
  done.catch(() => {}); // awaited below; an early failure also ends the loop
  let info: Buffer | undefined;
  for await (const entry of extract) {
    if (entry.header.name === 'header-info') info = await readAll(entry, MAX_HEADER_BYTES, 'header-info');
    else entry.resume();
  }
  await done;
  if (!info) throw new ArtifactFormatError(`${name} has no header-info`);
  try {
    return JSON.parse(info.toString('utf8'));
  } catch {
    throw new ArtifactFormatError('header-info is not JSON');
  }
}

function describe(raw: unknown, signed: boolean): ArtifactInfo {
  if (!isObject(raw)) throw new ArtifactFormatError('header-info is not a JSON object');
  const provides = raw['artifact_provides'];
  const depends = raw['artifact_depends'];
  const name = isObject(provides) ? provides['artifact_name'] : undefined;
  if (typeof name !== 'string' || name === '')
    throw new ArtifactFormatError('header-info has no artifact_provides.artifact_name');
  const types = isObject(depends) ? depends['device_type'] : undefined;
  const deviceTypes = Array.isArray(types) ? types : typeof types === 'string' ? [types] : [];
  if (deviceTypes.length === 0 || !deviceTypes.every((t): t is string => typeof t === 'string' && t !== '')) {
    throw new ArtifactFormatError('header-info has no artifact_depends.device_type');
  }
  const payloads = Array.isArray(raw['payloads']) ? raw['payloads'] : [];
  const payloadTypes = payloads.map((p) => (isObject(p) && typeof p['type'] === 'string' ? p['type'] : ''));
  return { name, deviceTypes, payloadTypes, signed };
}

/**
 * Reads name, device types and payload types of a Mender v3 artifact: the outer (plain) tar's
 * `version` must say `{"format":"mender","version":3}`; `header.tar.gz` (or `.tar`, `.tar.xz`,
 * `.tar.zst`, by `--compression`) holds `header-info`. Payloads are skipped unread.
 */
export async function readArtifactInfo(file: string): Promise<ArtifactInfo> {
  const extract = tar.extract();
  const done = pipeline(createReadStream(file), extract);
  done.catch(() => {}); // awaited below; an early failure also ends the loop
  let version: unknown;
  let header: unknown;
  let signed = false;
  let first = true;
  try {
    for await (const entry of extract) {
      const name = entry.header.name;
      if (first && name !== 'version')
        throw new ArtifactFormatError(`the first entry is ${JSON.stringify(name)}, not "version"`);
      first = false;
      if (name === 'version') {
        try {
          version = JSON.parse((await readAll(entry, 4096, 'version')).toString('utf8'));
        } catch (err) {
          if (err instanceof ArtifactFormatError) throw err;
          throw new ArtifactFormatError('version is not JSON');
        }
      } else if (HEADER.test(name)) {
        header = await headerInfo(name, await readAll(entry, MAX_HEADER_BYTES, name));
      } else {
        if (name === 'manifest.sig') signed = true;
        entry.resume();
      }
    }
    await done;
  } catch (err) {
    extract.destroy();
    await done.catch(() => {});
    if (err instanceof ArtifactFormatError) throw err;
    throw new ArtifactFormatError(`not a Mender artifact: ${(err as Error).message}`);
  }
  if (first) throw new ArtifactFormatError('not a Mender artifact: empty tar');
  if (!isObject(version) || version['format'] !== 'mender' || version['version'] !== 3) {
    throw new ArtifactFormatError(
      `unsupported artifact version ${JSON.stringify(version)} (expected {"format":"mender","version":3})`,
    );
  }
  if (header === undefined) throw new ArtifactFormatError('not a Mender artifact: no header.tar[.gz|.xz|.zst]');
  return describe(header, signed);
}
