import { describe, expect, it } from 'vitest';
import { formatUpdateState } from '../../../fortctl/update-status.js';

describe('fortctl update status output', () => {
  it('shows the reported state with why, and control characters made harmless', () => {
    const out = formatUpdateState(
      {
        state: {
          step: 'idle',
          installed: '1.0.3',
          installedArtifact: 'fort-1.0.3',
          previous: '1.0.1',
          deployment: null,
          lastError: 'the agent did not report healthy on 1.0.2 within 10 s\u001b[2J',
          updatedAt: '2026-01-01T00:00:00.000Z',
        },
        reportedAt: '2026-01-01T00:00:01.000Z',
      },
      new Date('2026-01-01T00:00:31.000Z'),
    );
    expect(out).toBe(
      [
        'step        idle',
        'installed   1.0.3 (fort-1.0.3)',
        'previous    1.0.1',
        'deployment  -',
        'last error  the agent did not report healthy on 1.0.2 within 10 s?[2J',
        'changed     2026-01-01T00:00:00.000Z',
        'reported    2026-01-01T00:00:01.000Z (30 s ago)',
        'why         idle; the last update failed: the agent did not report healthy on 1.0.2 within 10 s?[2J',
        '',
      ].join('\n'),
    );
  });

  it('says when nothing was reported and where to look instead', () => {
    expect(formatUpdateState({ state: null, reportedAt: null })).toMatch(
      /has not reported its update state since the agent started[\s\S]*fort-deployment-manager status/,
    );
  });
});
