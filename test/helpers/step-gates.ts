import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './fort.js';
import { UPDATE_STEPS } from '../../lib/update-state.js';

const STEPS = UPDATE_STEPS.filter((s) => s !== 'idle');

/**
 * Gates in an update: operator hooks (state scripts) that block when their step is armed, the
 * first `times` entries of it, so a test acts at the exact moment a step was persisted and
 * before its action. A blocked hook leaves a marker `<step>.<n>` holding its pid and waits for `open`.
 */
export function stepGates(times = 3) {
  const base = tempDir('gates');
  const hooksDir = join(base, 'hooks');
  const marks = join(base, 'marks');
  mkdirSync(hooksDir, { mode: 0o750 });
  mkdirSync(marks);
  const script = `#!/bin/sh
grep -qx "$FORT_UPDATE_STEP" "${marks}/armed" 2>/dev/null || exit 0
n=$(ls "${marks}" | grep -c "^$FORT_UPDATE_STEP\\.")
[ "$n" -lt ${times} ] || exit 0
echo $$ > "${marks}/.tmp.$$" && mv "${marks}/.tmp.$$" "${marks}/$FORT_UPDATE_STEP.$n"
while [ ! -e "${marks}/go.$FORT_UPDATE_STEP.$n" ]; do sleep 0.05; done
`;
  for (const step of STEPS) {
    writeFileSync(join(hooksDir, `${step}_50_gate`), script);
    chmodSync(join(hooksDir, `${step}_50_gate`), 0o750);
  }
  const handled = new Set<string>();
  return {
    hooksDir,
    /** Blocks these steps from now on (markers of earlier runs are cleared). */
    arm(steps: string[]) {
      for (const n of readdirSync(marks)) rmSync(join(marks, n));
      handled.clear();
      writeFileSync(join(marks, 'armed'), `${steps.join('\n')}\n`);
    },
    /** A gate that blocked since the last call: its step. */
    blocked(): { marker: string; step: string } | undefined {
      const marker = readdirSync(marks).find(
        (n) => !n.startsWith('.') && !n.startsWith('go.') && n !== 'armed' && !handled.has(n),
      );
      if (!marker) return undefined;
      handled.add(marker);
      return { marker, step: marker.replace(/\.\d+$/, '') };
    },
    /** Lets a blocked hook finish (exit 0). */
    open(marker: string) {
      writeFileSync(join(marks, `go.${marker}`), '');
    },
    /** Kills a blocked hook (its deployment manager was killed; or: a failed hook). */
    kill(marker: string) {
      try {
        process.kill(Number(readFileSync(join(marks, marker), 'utf8')), 'SIGKILL');
      } catch {
        // already gone
      }
    },
    cleanup: () => rmSync(base, { recursive: true, force: true }),
  };
}
export type StepGates = ReturnType<typeof stepGates>;
