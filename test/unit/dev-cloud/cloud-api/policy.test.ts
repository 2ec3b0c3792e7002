import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decide, loadPolicyFile, parsePolicy, type Action } from '../../../../dev-cloud/cloud-api/policy.js';
import { devPolicyJson } from '../../../../scripts/dev-config.js';
import { tempDir } from '../../../helpers/fort.js';

const policy = parsePolicy(JSON.parse(devPolicyJson('fort-1')));
const ask = (user: string, action: Action, resource: string, tenant = 't1', fort = 'fort-1') =>
  decide(policy, fort, { user, tenant, action, resource });

describe('dev cloud policy', () => {
  it('grants through groups and user:<name> entries of the app space', () => {
    expect(ask('alice', 'app.list', 'sales-2026')).toBe(true);
    expect(ask('alice', 'app.read', 'sales-2026')).toBe(true);
    expect(ask('alice', 'app.reload', 'sales-2026')).toBe(false);
    expect(ask('alice', 'app.list', 'hr-2026')).toBe(false);
    expect(ask('carol', 'app.reload', 'hr-2026')).toBe(true);
    expect(ask('carol', 'app.reload', 'sales-2026')).toBe(true);
    expect(ask('bob', 'app.list', 'sales-2026')).toBe(false);
    const withBob = parsePolicy({
      tenants: {
        t1: {
          forts: ['fort-1'],
          users: { bob: {} },
          spaces: { s: { 'user:bob': ['app.list'] } },
          apps: { a: { space: 's' } },
        },
      },
    });
    expect(decide(withBob, 'fort-1', { user: 'bob', tenant: 't1', action: 'app.list', resource: 'a' })).toBe(true);
    expect(decide(withBob, 'fort-1', { user: 'bob', tenant: 't1', action: 'app.read', resource: 'a' })).toBe(false);
  });

  it('denies anything unknown, and tenants that do not list the asking fort', () => {
    expect(ask('mallory', 'app.list', 'sales-2026')).toBe(false);
    expect(ask('alice', 'app.list', 'nope')).toBe(false);
    expect(ask('alice', 'app.list', 'sales-2026', 't9')).toBe(false);
    expect(ask('alice', 'app.list', 'sales-2026', 't2')).toBe(false);
    expect(ask('alice', 'app.list', 'sales-2026', 't1', 'fort-2')).toBe(false);
    expect(ask('constructor', 'app.list', 'sales-2026')).toBe(false);
    expect(ask('alice', 'app.list', 'toString')).toBe(false);
  });

  it('reports every problem of a policy at once, naming the field', () => {
    const bad = {
      decision_ttl_seconds: -1,
      tenants: {
        t1: { forts: 'fort-1', spaces: { s: { g: ['app.delete'] } }, apps: { a: { space: 'missing' } }, extra: 1 },
      },
    };
    expect(() => parsePolicy(bad, 'policy.json')).toThrow(
      [
        'policy.json: decision_ttl_seconds: expected integer 0..86400, got -1',
        'policy.json: tenants.t1.forts: expected a list of fort ids, got "fort-1"',
        'policy.json: tenants.t1.spaces.s.g.0: expected one of app.list, app.read, app.reload, got "app.delete"',
        'policy.json: tenants.t1.extra: unknown field (check the spelling; see the configuration reference)',
      ].join('\n'),
    );
    expect(() => parsePolicy({ tenants: { t1: { spaces: {}, apps: { a: { space: 'missing' } } } } }, 'p.json')).toThrow(
      'p.json: tenants.t1.apps.a.space: names a space that is not in spaces, got "missing"',
    );
  });

  it('loads a file and says which file is unreadable or not JSON', () => {
    const dir = tempDir('policy');
    const file = join(dir, 'policy.json');
    writeFileSync(file, devPolicyJson('fort-1'));
    expect(loadPolicyFile(file)).toEqual(policy);
    writeFileSync(file, '{ nope');
    expect(() => loadPolicyFile(file)).toThrow(/^policy\.json: cannot read policy .*policy\.json: .*JSON/);
    expect(() => loadPolicyFile(join(dir, 'absent.json'))).toThrow(/absent\.json: cannot read policy .*: ENOENT/);
  });
});
