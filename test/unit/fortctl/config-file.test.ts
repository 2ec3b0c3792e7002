import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfigFile, defaultFortctlConfig } from '../../../fortctl/config.js';
import { tempDir } from '../../helpers/fort.js';

describe('fortctl config file choice', () => {
  const cwd = tempDir('fortctl-cwd');
  mkdirSync(join(cwd, '.fort-dev'));
  writeFileSync(join(cwd, '.fort-dev', 'fortctl.toml'), '');

  it("uses the dev stack's file in the working directory for a developer", () => {
    expect(defaultFortctlConfig(undefined, cwd, false)).toBe(join(cwd, '.fort-dev', 'fortctl.toml'));
  });

  it('never the working directory as root: sudo fortctl in a directory another user writes loads /etc/fort', () => {
    expect(defaultFortctlConfig(undefined, cwd, true)).toBe('/etc/fort/fortctl.toml');
    expect(defaultConfigFile('agent.toml', undefined, cwd, true)).toBe('/etc/fort/agent.toml');
  });

  it('the file the environment names wins', () => {
    expect(defaultFortctlConfig('/srv/f.toml', cwd, true)).toBe('/srv/f.toml');
  });
});
