import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { loadAgentConfig } from '../../../agent/config.js';
import { openAuditStore } from '../../../agent/audit/store.js';
import { parseSince } from '../../../fortctl/since.js';
import type { AuditEntry } from '../../../lib/admin-client.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import { httpsRequest } from '../../helpers/https.js';
import { DIST, startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';

const run = promisify(execFile);
const MIN = 60_000;

/** Audit rows written straight into the agent's database before it starts, `agoMs` before now. */
interface Row {
  agoMs: number;
  actor: string;
  action: string;
  target: string | null;
  detail: string | null;
}

describe('audit over the admin API and fortctl audit', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let agent: Supervised;
  let base: string;
  const now = Date.now();
  const at = (agoMs: number) => new Date(now - agoMs).toISOString();

  // 210 old reads (4-5 h ago), then the last hour's story, then one row from the future (a clock step).
  const old: Row[] = Array.from({ length: 210 }, (_, i) => ({
    agoMs: 5 * 60 * MIN - i * 60_000,
    actor: 'bulk',
    action: 'app.read',
    target: `app-${i}`,
    detail: null,
  }));
  const recent: Row[] = [
    {
      agoMs: 50 * MIN,
      actor: 'alice@example.com',
      action: 'app.read',
      target: 'sales',
      detail: JSON.stringify({ decision: 'allow' }),
    },
    {
      agoMs: 30 * MIN,
      actor: 'anonymous',
      action: 'app.read',
      target: '/api/v1/apps/sales',
      detail: JSON.stringify({ decision: 'deny', reason: 'no token' }),
    },
    { agoMs: 10 * MIN, actor: 'bob@example.com', action: 'app.list', target: null, detail: null },
    {
      agoMs: 1 * MIN,
      actor: 'mallory',
      action: 'app.read',
      target: 'evil\u001b[2J\u001b]0;owned\u0007',
      detail: 'not json',
    },
  ];

  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki);
    base = `https://127.0.0.1:${inst.layout.ports.admin}/admin/v1/audit`;
    const store = openAuditStore({
      path: loadAgentConfig(inst.files.agent).store.audit_path,
      retentionDays: 90,
      log: pino({ level: 'silent' }),
    });
    const insert = store.db.prepare('INSERT INTO audit (ts, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)');
    store.db.transaction(() => {
      for (const r of [...old, ...recent]) insert.run(at(r.agoMs), r.actor, r.action, r.target, r.detail);
    })();
    store.close();
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000);
  });
  afterAll(async () => {
    await agent?.stop();
    inst?.cleanup();
  });

  const tls = () => ({
    ca: readFileSync(pki.trustZone.ca),
    cert: readFileSync(pki.trustZone.fortctlCert),
    key: readFileSync(pki.trustZone.fortctlKey),
  });
  const get = async (query: string) => {
    const res = await httpsRequest(`${base}${query}`, tls());
    return { status: res.status, body: JSON.parse(res.body) as { entries: AuditEntry[] } & Record<string, unknown> };
  };
  const fortctl = (...args: string[]) =>
    run(process.execPath, [join(DIST, 'fortctl/main.js'), '--config', inst.files.fortctl, ...args]);

  it('returns the entries since a time, oldest first, with detail parsed', async () => {
    const { status, body } = await get(`?since=${encodeURIComponent(at(60 * MIN))}`);
    expect(status).toBe(200);
    expect(body.entries).toEqual([
      {
        seq: 211,
        ts: at(50 * MIN),
        actor: 'alice@example.com',
        action: 'app.read',
        target: 'sales',
        detail: { decision: 'allow' },
      },
      {
        seq: 212,
        ts: at(30 * MIN),
        actor: 'anonymous',
        action: 'app.read',
        target: '/api/v1/apps/sales',
        detail: { decision: 'deny', reason: 'no token' },
      },
      { seq: 213, ts: at(10 * MIN), actor: 'bob@example.com', action: 'app.list', target: null, detail: null },
      {
        seq: 214,
        ts: at(1 * MIN),
        actor: 'mallory',
        action: 'app.read',
        target: recent[3]!.target,
        detail: 'not json',
      },
    ]);
    // Boundaries: `since` is inclusive; an offset time means the same instant as Z.
    expect((await get(`?since=${encodeURIComponent(at(30 * MIN))}`)).body.entries.map((e) => e.seq)).toEqual([
      212, 213, 214,
    ]);
    const plus2 = new Date(now - 30 * MIN + 2 * 3_600_000).toISOString().replace('Z', '+02:00');
    expect((await get(`?since=${encodeURIComponent(plus2)}`)).body.entries.map((e) => e.seq)).toEqual([212, 213, 214]);
    expect((await get(`?since=${encodeURIComponent(new Date(now + MIN).toISOString())}`)).body).toEqual({
      entries: [],
    });
  });

  it('returns the newest `limit` entries (default 200, at most 1000), still oldest first', async () => {
    expect((await get(`?since=${encodeURIComponent(at(60 * MIN))}&limit=2`)).body.entries.map((e) => e.seq)).toEqual([
      213, 214,
    ]);
    const all = `?since=${encodeURIComponent(at(6 * 60 * MIN))}`;
    const byDefault = (await get(all)).body.entries;
    expect(byDefault).toHaveLength(200);
    expect(byDefault.at(-1)!.seq).toBe(214);
    expect(byDefault[0]!.seq).toBe(15);
    const wide = (await get(`${all}&limit=1000`)).body.entries;
    expect(wide).toHaveLength(214);
    expect(wide.map((e) => e.seq)).toEqual(Array.from({ length: 214 }, (_, i) => i + 1));
  });

  it('answers 400 with a problem for a bad since or limit', async () => {
    for (const query of [
      '',
      '?since=yesterday',
      '?since=2024-13-01T00:00:00Z',
      '?since=2024-05-01T12:00:00',
      `?since=${encodeURIComponent(at(0))}&limit=0`,
      `?since=${encodeURIComponent(at(0))}&limit=1001`,
      `?since=${encodeURIComponent(at(0))}&limit=ten`,
      `?since=${encodeURIComponent(at(0))}&since=${encodeURIComponent(at(0))}`,
    ]) {
      const res = await httpsRequest(`${base}${query}`, tls());
      expect(res.status, query).toBe(400);
      const problem = JSON.parse(res.body) as Record<string, unknown>;
      expect(problem).toMatchObject({ status: 400, code: 'FORT_ERR_BAD_REQUEST', title: 'Bad request' });
      expect(problem['detail'], query).toMatch(
        query.includes('limit') && !query.includes('since=yesterday')
          ? /^limit: expected/
          : /^since: expected an ISO 8601 time/,
      );
    }
  });

  it('is behind the admin API role check like every other route', async () => {
    const res = await httpsRequest(`${base}?since=${encodeURIComponent(at(60 * MIN))}`, {
      ca: readFileSync(pki.trustZone.ca),
      cert: readFileSync(pki.trustZone.agentCert),
      key: readFileSync(pki.trustZone.agentKey),
    });
    expect(res.status).toBe(403);
  });

  it('fortctl audit --since 1h --json prints what the API returns', async () => {
    const { stdout } = await fortctl('audit', '--since', '1h', '--json');
    const body = JSON.parse(stdout) as { entries: AuditEntry[] };
    expect(body.entries.map((e) => e.seq)).toEqual([211, 212, 213, 214]);
    expect(body.entries[1]).toEqual({
      seq: 212,
      ts: at(30 * MIN),
      actor: 'anonymous',
      action: 'app.read',
      target: '/api/v1/apps/sales',
      detail: { decision: 'deny', reason: 'no token' },
    });
    // --json before the command works too, and --limit picks the newest.
    const limited = JSON.parse((await fortctl('--json', 'audit', '--since', '45m', '--limit', '1')).stdout) as {
      entries: AuditEntry[];
    };
    expect(limited.entries.map((e) => e.seq)).toEqual([214]);
  });

  it('fortctl audit prints a table with the decision, without control characters', async () => {
    const { stdout, stderr } = await fortctl('audit', '--since', at(60 * MIN));
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TS\s+ACTOR\s+ACTION\s+TARGET\s+DECISION$/);
    expect(lines).toHaveLength(5);
    expect(lines[1]).toMatch(new RegExp(`^${at(50 * MIN)}\\s+alice@example\\.com\\s+app\\.read\\s+sales\\s+allow$`));
    expect(lines[2]).toMatch(/anonymous\s+app\.read\s+\/api\/v1\/apps\/sales\s+deny$/);
    expect(lines[3]).toMatch(/bob@example\.com\s+app\.list\s+-\s+-$/);
    expect(lines[4]).toMatch(/mallory\s+app\.read\s+evil\?\[2J\?\]0;owned\?\s+-$/);
    // eslint-disable-next-line no-control-regex -- no control character may reach the terminal
    expect(stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
    expect(stderr).toBe('');
    const few = await fortctl('audit', '--since', '2d', '--limit', '2');
    expect(few.stdout.trimEnd().split('\n')).toHaveLength(3);
    expect(few.stderr).toMatch(/showing the newest 2 entries/);
    expect((await fortctl('audit', '--since', '0s')).stdout).toMatch(/^no audit entries since \d{4}-/);
  });

  it('fortctl audit refuses a bad --since or --limit before calling the agent', async () => {
    await expect(fortctl('audit', '--since', 'yesterday')).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/expected a duration such as 30m, 1h, 2d or an ISO time/),
    });
    await expect(fortctl('audit', '--limit', '5000')).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/expected an integer 1\.\.1000/),
    });
  });

  it('fortctl audit exits 2 when the agent is unreachable', async () => {
    const offline = await testInstallation(pki);
    try {
      await expect(
        run(process.execPath, [join(DIST, 'fortctl/main.js'), '--config', offline.files.fortctl, 'audit']),
      ).rejects.toMatchObject({ code: 2 });
    } finally {
      offline.cleanup();
    }
  });
});

describe('parseSince (fortctl audit --since)', () => {
  const now = new Date('2024-05-01T12:00:00.000Z');
  it('reads durations back from now and ISO times', () => {
    expect(parseSince('90s', now).toISOString()).toBe('2024-05-01T11:58:30.000Z');
    expect(parseSince('30m', now).toISOString()).toBe('2024-05-01T11:30:00.000Z');
    expect(parseSince('1h', now).toISOString()).toBe('2024-05-01T11:00:00.000Z');
    expect(parseSince('2d', now).toISOString()).toBe('2024-04-29T12:00:00.000Z');
    expect(parseSince('2024-04-30T08:15:00Z', now).toISOString()).toBe('2024-04-30T08:15:00.000Z');
    expect(parseSince('2024-04-30T10:15:00+02:00', now).toISOString()).toBe('2024-04-30T08:15:00.000Z');
    expect(parseSince('2024-04-30', now).toISOString()).toBe('2024-04-30T00:00:00.000Z');
  });
  it('refuses anything else', () => {
    for (const bad of [
      '',
      '1',
      'h',
      '1y',
      '-1h',
      '1.5h',
      'yesterday',
      '2024-02-30T25:00:00Z',
      '99999999999d',
      '2024-05-01T12:00:00Z; rm -rf /',
    ]) {
      expect(() => parseSince(bad, now), bad).toThrow(RangeError);
    }
  });
});
