import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureBaseRoot } from './harness/base-root.js';
import { buildHostRelease, DEVICE_TYPE, repackRelease, type HostRelease } from './harness/releases.js';
import { rsaKeyPair } from '../helpers/mender.js';

export interface HostRun {
  baseRoot: string;
  dir: string;
  signing: { private: string; public: string };
  releases: {
    v100: HostRelease;
    v101: HostRelease;
    exitsAtStart: HostRelease;
    dmExitsAtStart: HostRelease;
    dmHangs: HostRelease;
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    hostRun: HostRun;
  }
}

/**
 * Once per run: the cached Debian root (debootstrap on the first run), an artifact signing key,
 * and the releases the tests install: 1.0.0, 1.0.1, 1.0.2 whose agent exits at start, and 1.2.0
 * and 1.2.1 whose deployment manager exits at start or hangs before it is ready.
 */
export default function setup(project: TestProject): () => void {
  const cache = process.env['FORT_HOST_CACHE'] ?? '/var/cache/fort-host-test';
  const baseRoot = ensureBaseRoot(cache, (l) => process.stderr.write(`${l}\n`));
  const dir = mkdtempSync('/tmp/fort-host-run-');
  chmodSync(dir, 0o711);
  const signing = rsaKeyPair(dir, 'artifact-signing', 3072);
  const out = join(dir, 'releases');
  const opts = { deviceType: DEVICE_TYPE, key: signing.private, out };
  const v100 = buildHostRelease({ version: '1.0.0', ...opts });
  const v101 = repackRelease(v100, { version: '1.0.1', ...opts });
  const exitsAtStart = repackRelease(v100, {
    version: '1.0.2',
    ...opts,
    edit: (d) =>
      writeFileSync(
        join(d, 'dist/agent/main.js'),
        "process.stderr.write('fort-agent 1.0.2: broken on purpose (host test)\\n');\nprocess.exit(3);\n",
      ),
  });
  const brokenDm = (version: string, code: string) =>
    repackRelease(v100, {
      version,
      ...opts,
      edit: (d) =>
        writeFileSync(
          join(d, 'dist/deployment-manager/main.js'),
          `process.stderr.write('fort-deployment-manager ${version}: broken on purpose (host test)\\n');\n${code}\n`,
        ),
    });
  const dmExitsAtStart = brokenDm('1.2.0', 'process.exit(3);');
  // Never sends READY=1: systemd's start timeout, or root's proof deadline, ends it.
  const dmHangs = brokenDm('1.2.1', 'setInterval(() => undefined, 1 << 30);');
  project.provide('hostRun', {
    baseRoot,
    dir,
    signing,
    releases: { v100, v101, exitsAtStart, dmExitsAtStart, dmHangs },
  });
  return () => rmSync(dir, { recursive: true, force: true });
}
