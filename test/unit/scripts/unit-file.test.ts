import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeArgsFromUnit, restartDelayMsFromUnit } from '../../../scripts/supervisor/unit-file.js';
import { REPO } from '../../helpers/fort.js';

describe('systemd unit files', () => {
  it.each([
    ['fort-agent.service', ['--max-semi-space-size=1', '--v8-pool-size=2']],
    ['fort-deployment-manager.service', ['--optimize-for-size', '--max-semi-space-size=1', '--v8-pool-size=2']],
  ])('%s runs node with the memory flags the bench measures', (unit, flags) => {
    expect(nodeArgsFromUnit(join(REPO, 'systemd', unit))).toEqual(flags);
  });

  it("restartDelayMsFromUnit reads RestartSec= as the supervisor's restart delay", () => {
    expect(restartDelayMsFromUnit(join(REPO, 'systemd', 'fort-agent.service'))).toBe(2000);
    const dir = mkdtempSync(join(tmpdir(), 'fort-unit-'));
    try {
      const unit = (text: string) => {
        const file = join(dir, 'x.service');
        writeFileSync(file, `[Service]\n${text}\n`);
        return file;
      };
      expect(restartDelayMsFromUnit(unit('RestartSec=250ms'))).toBe(250);
      expect(restartDelayMsFromUnit(unit('RestartSec=1.5s'))).toBe(1500);
      expect(restartDelayMsFromUnit(unit('Restart=always'))).toBe(100);
      expect(() => restartDelayMsFromUnit(unit('RestartSec=1min 5s'))).toThrow(/not plain seconds/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
