import { refuse } from './refusal.js';

/** One line of the artifact's `manifest`: a file's SHA-256, and whether the artifact had it yet. */
export interface ManifestLine {
  sha256: string;
  seen: boolean;
}
export type Manifest = Map<string, ManifestLine>;

const MANIFEST_LINE = /^([0-9a-f]{64}) {2}(\S(?:.*\S)?)$/;

export function parseManifest(raw: Buffer): Manifest {
  const text = raw.toString('utf8');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length === 0) throw refuse('manifest: empty');
  const manifest: Manifest = new Map();
  lines.forEach((line, i) => {
    const m = MANIFEST_LINE.exec(line);
    if (!m) throw refuse(`manifest: line ${i + 1} is not "<sha256>  <path>"`);
    const [, hash, path] = m as unknown as [string, string, string];
    if (manifest.has(path)) throw refuse(`manifest: "${path}" is listed twice`);
    manifest.set(path, { sha256: hash, seen: false });
  });
  return manifest;
}

/** Marks `path` seen and compares its checksum; the exact refusals are part of the contract. */
export function checkAgainstManifest(manifest: Manifest, path: string, hash: string): void {
  const line = manifest.get(path);
  if (!line) throw refuse(`${path}: not listed in the manifest`);
  if (line.seen) throw refuse(`${path}: appears twice in the artifact`);
  line.seen = true;
  if (line.sha256 !== hash) throw refuse(`${path}: checksum does not match the manifest`);
}
