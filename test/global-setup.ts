import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * One temp root per test run: every worker and every process the tests start inherit it as
 * TMPDIR, so the PKI, data dirs and sockets they create under os.tmpdir() go away with the run
 * even when a test fails before its own cleanup.
 */
export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'fort-test-run-'));
  // Traversable (not listable) by others: tinyproxy drops to `nobody` and writes its log below.
  chmodSync(root, 0o711);
  const previous = process.env['TMPDIR'];
  process.env['TMPDIR'] = root;
  return () => {
    if (previous === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = previous;
    rmSync(root, { recursive: true, force: true });
  };
}
