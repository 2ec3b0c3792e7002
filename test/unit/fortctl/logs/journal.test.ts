import { describe, expect, it } from 'vitest';
import { journalctlArgs } from '../../../../fortctl/logs/journal.js';

describe('journalctlArgs', () => {
  it("asks for the unit's last lines without a pager", () => {
    expect(journalctlArgs({ unit: 'agent', lines: 50, follow: false, output: 'cat' })).toEqual([
      '-u',
      'fort-agent.service',
      '-n',
      '50',
      '-o',
      'cat',
      '--no-pager',
    ]);
  });

  it("follows the deployment manager's unit with journald's time", () => {
    expect(journalctlArgs({ unit: 'deployment-manager', lines: 0, follow: true, output: 'short-iso' })).toEqual([
      '-u',
      'fort-deployment-manager.service',
      '-n',
      '0',
      '-o',
      'short-iso',
      '--no-pager',
      '-f',
    ]);
  });
});
