import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createStateFile } from '../../../../deployment-manager/update/state.js';
import { tempDir } from '../../../helpers/fort.js';

describe('deployment manager state file', () => {
  it('creates the initial state 0600 and counts persisted transitions', () => {
    const dir = tempDir('state');
    const path = join(dir, 'state.json');
    const file = createStateFile(path, () => new Date('2026-01-01T00:00:00Z'));
    const s0 = file.load();
    expect(s0).toMatchObject({
      schema: 2,
      step: 'idle',
      installed: null,
      deployment: null,
      reports: [],
      transitions: 0,
    });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const s1 = file.save({ ...s0, installed: '0.1.0' });
    expect(s1.transitions).toBe(1);
    expect(file.load()).toEqual(s1);
    expect(readdirSync(dir)).toEqual(['state.json']);
  });

  it('refuses a corrupt or unknown state with the file and the field', () => {
    const path = join(tempDir('state'), 'state.json');
    writeFileSync(path, '{"schema":1,"step":"idle"', { mode: 0o600 });
    expect(() => createStateFile(path).load()).toThrow(`state file ${path} is not valid JSON`);
    writeFileSync(
      path,
      JSON.stringify({
        schema: 1,
        step: 'exploding',
        installed: null,
        previous: null,
        deploymentId: null,
        transitions: 0,
        updatedAt: 'x',
      }),
    );
    expect(() => createStateFile(path).load()).toThrow(/is not a state this release understands: step: /);
    expect(readFileSync(path, 'utf8')).toContain('exploding');
  });

  it('refuses a state its step could not act on (states as types): installing with no payload, health_checking with no deadline', () => {
    const path = join(tempDir('state'), 'state.json');
    const deployment = {
      id: 'd1',
      artifactName: 'fort-1.0.1',
      source: 'server',
      uri: 'https://u/dl',
      artifactFile: '/s/d1.mender',
      downloaded: 0,
      payload: null,
      target: '1.0.1',
      deadline: null,
      reason: null,
    };
    const file = createStateFile(path);
    const valid = file.load();
    for (const [step, field] of [
      ['installing', 'payload'],
      ['health_checking', 'deadline'],
      ['self_updating', 'deadline'],
      ['rolling_back', 'deadline'],
    ]) {
      writeFileSync(path, JSON.stringify({ ...valid, step, deployment }));
      expect(() => createStateFile(path).load(), step).toThrow(
        new RegExp(`is not a state this release understands: deployment\\.${field}: `),
      );
    }
    for (const step of ['downloading', 'verifying', 'switching']) {
      writeFileSync(path, JSON.stringify({ ...valid, step, deployment }));
      expect(createStateFile(path).load().step).toBe(step);
    }
    writeFileSync(path, JSON.stringify({ ...valid, step: 'switching', deployment: { ...deployment, target: null } }));
    expect(() => createStateFile(path).load()).toThrow(/deployment\.target: /);
  });

  it('reads an idle state file of the first schema as an idle installation', () => {
    const path = join(tempDir('state'), 'state.json');
    writeFileSync(
      path,
      JSON.stringify({
        schema: 1,
        step: 'idle',
        installed: '0.1.0',
        previous: null,
        deploymentId: null,
        transitions: 4,
        updatedAt: '2026-01-01T00:00:00.000Z',
      }),
      { mode: 0o600 },
    );
    expect(createStateFile(path).load()).toMatchObject({
      schema: 2,
      step: 'idle',
      installed: '0.1.0',
      transitions: 4,
      reports: [],
    });
  });
});
