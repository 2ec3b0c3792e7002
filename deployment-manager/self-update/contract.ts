import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * What the deployment manager (fort-dm) and the root self-update program
 * (self-update/main.ts, run by fort-dm-self-update.service) tell each other, all through files:
 *
 * - `<request_dir>/request.json` (fort-dm writes): "install this artifact as my next version".
 *   fort-dm-self-update.path starts the root program when it appears.
 * - `<root_state_dir>/status.json` (root writes, fort-dm reads): where root is with it.
 * - `<request_dir>/proven.json` (the new deployment manager writes): "I run, I reached the
 *   update server". Root commits the new version only on it, before the deadline.
 *
 * Nothing fort-dm writes is trusted by root: the request only names an artifact, which root
 * verifies again with root's own keys before it writes a byte under its install root.
 */

export const SELF_UPDATE_FILES = {
  request: 'request.json',
  proof: 'proven.json',
  status: 'status.json',
  /** Exists while root has a self-update under way; the path unit restarts root's program on it (crash, reboot). */
  active: 'active',
} as const;

const version = z.string().regex(/^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$/);
const deploymentId = z.string().min(1).max(200);

export const selfUpdateRequestSchema = z.strictObject({
  deploymentId,
  /** The artifact (in fort-dm's staging); root reads it only if fort-dm owns it, and verifies it. */
  artifact: z.string().startsWith('/').max(4096),
  /** The version the agent was updated to: the artifact must hold this deployment manager version. */
  version,
  requestedAt: z.string(),
});
export type SelfUpdateRequest = z.infer<typeof selfUpdateRequestSchema>;

export const SELF_UPDATE_STEPS = ['verifying', 'proving', 'committed', 'rolled_back', 'refused'] as const;
export type SelfUpdateStep = (typeof SELF_UPDATE_STEPS)[number];

export const selfUpdateStatusSchema = z.object({
  deploymentId,
  step: z.enum(SELF_UPDATE_STEPS),
  target: version,
  /** The deployment manager release that ran before (what a rollback restores). */
  previous: z.string().nullable(),
  artifact: z.string(),
  /** Until when the new deployment manager may take to prove itself (set when it is switched to). */
  deadline: z.string().nullable(),
  reason: z.string().nullable(),
  updatedAt: z.string(),
});
export type SelfUpdateStatus = z.infer<typeof selfUpdateStatusSchema>;

export const selfUpdateProofSchema = z.object({
  deploymentId,
  version,
  pid: z.int(),
  at: z.string(),
});
export type SelfUpdateProof = z.infer<typeof selfUpdateProofSchema>;

const MAX_FILE = 64 * 1024;

/**
 * A small JSON file read without following a link and only when it is a regular file owned by
 * `owner` (when given): root reads files fort-dm controls this way. Whatever is wrong gives
 * `undefined`, never the content in an error (a planted link could point at any root file).
 */
export function readOwnedJson<T>(path: string, schema: z.ZodType<T>, owner?: number): T | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_FILE || (owner !== undefined && st.uid !== owner)) return undefined;
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    const parsed = schema.safeParse(JSON.parse(buf.subarray(0, off).toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

export const selfUpdatePaths = (o: { request_dir: string; root_state_dir: string }) => ({
  request: join(o.request_dir, SELF_UPDATE_FILES.request),
  proof: join(o.request_dir, SELF_UPDATE_FILES.proof),
  status: join(o.root_state_dir, SELF_UPDATE_FILES.status),
  active: join(o.root_state_dir, SELF_UPDATE_FILES.active),
});
export type SelfUpdatePaths = ReturnType<typeof selfUpdatePaths>;
