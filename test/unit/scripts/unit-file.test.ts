import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { nodeArgsFromUnit } from '../../../scripts/supervisor/unit-file.js';
import { REPO } from '../../helpers/fort.js';

describe('systemd unit files', () => {
  it.each([
    ['fort-agent.service', ['--max-semi-space-size=1', '--v8-pool-size=2']],
    ['fort-deployment-manager.service', ['--optimize-for-size', '--max-semi-space-size=1', '--v8-pool-size=2']],
  ])('%s runs node with the memory flags the bench measures', (unit, flags) => {
    expect(nodeArgsFromUnit(join(REPO, 'systemd', unit))).toEqual(flags);
  });
});
