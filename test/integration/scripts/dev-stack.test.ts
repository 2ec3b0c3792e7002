import { afterAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { DIST, REPO, eventually, tempDir } from '../../helpers/fort.js';
import { httpsCall, httpsRequest } from '../../helpers/https.js';
import { MIGRATIONS } from '../../../agent/store/migrations.js';

const run = promisify(execFile);

/** Start the dev stack as `npm start` does (the build already ran) and wait for its ready banner. */
function startStack(home: string) {
  const proc = spawn(process.execPath, [join(DIST, 'scripts/dev-stack.js'), '--home', home], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  createInterface({ input: proc.stdout }).on('line', (l) => lines.push(l));
  createInterface({ input: proc.stderr }).on('line', (l) => lines.push(`stderr: ${l}`));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dev stack not ready within 60 s:\n${lines.join('\n')}`)), 60_000);
    const check = setInterval(() => {
      if (lines.includes('dev-stack: ready')) {
        clearTimeout(timer);
        clearInterval(check);
        resolve();
      }
    }, 50);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      clearInterval(check);
      reject(new Error(`dev stack exited ${code} before ready:\n${lines.join('\n')}`));
    });
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, lines, ready, exited };
}

describe('dev stack (npm start)', () => {
  const home = tempDir('devstack');
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('reaches ready from nothing, fortctl status prints healthy, Ctrl-C stops everything, a second start reuses the PKI', async () => {
    const stack = startStack(home);
    await stack.ready;
    const index = JSON.parse(readFileSync(join(home, 'dev-cloud.json'), 'utf8')) as {
      agent: { clientApi: string; adminApi: string };
      cloud: { url: string };
      ca: Record<string, string>;
      config: { fortctl: string };
    };
    expect(Object.keys(index.ca).sort()).toEqual(['clientZone', 'cloudDevice', 'cloudServer', 'trustZone']);
    expect(index.agent.adminApi).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(stack.lines).toContain(`  try:                         npm run fortctl -- --config ${join(home, 'fortctl.toml')} status`);

    const status = await run(process.execPath, [join(DIST, 'agent/cli/fortctl.js'), '--config', index.config.fortctl, 'status']);
    expect(status.stdout).toMatch(/^agent fort-dev-1 {2}version 0\.1\.0 {2}healthy/);
    expect(status.stdout).toMatch(new RegExp(`store +ready +schema v${MIGRATIONS.at(-1)!.version}\n`));
    const json = await run(process.execPath, [join(DIST, 'agent/cli/fortctl.js'), '--config', index.config.fortctl, '--json', 'status']);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'healthy', ready: true });

    const cloud = await httpsRequest(`${index.cloud.url}/health`, { ca: readFileSync(index.ca['cloudServer']!) });
    expect(cloud.status).toBe(200);
    const api = await httpsRequest(`${index.agent.clientApi}/health`, { ca: readFileSync(index.ca['clientZone']!) });
    expect(api.status).toBe(200);
    expect(statSync(join(home, 'pki/trust-zone/ca.key')).mode & 0o777).toBe(0o600);

    // The demo app: registered at start, its first reload queued; its rows reach a signed-in user.
    expect(stack.lines).toContain('dev-stack: registered the demo app demo-sales and queued its first reload');
    const reloadsCli = () => run(process.execPath, [join(DIST, 'dev-cloud/cli.js'), 'reloads', '--home', home, '--app', 'demo-sales', '--json']);
    const succeeded = await eventually(async () => {
      const list = JSON.parse((await reloadsCli()).stdout) as { type: string; data: { rows?: number } }[];
      return list.find((r) => r.type === 'reload.succeeded');
    }, 30_000, 'the demo app reload.succeeded at the dev cloud');
    expect(succeeded.data.rows).toBe(540); // 500 orders + 40 customers
    const login = await httpsCall(index.cloud.url, readFileSync(index.ca['cloudServer']!), 'POST', '/dev/v1/login', { json: { user: 'alice', tenant: 't1' } });
    const token = (login.json() as { token: string }).token;
    const page = await httpsCall(index.agent.clientApi, readFileSync(index.ca['clientZone']!), 'GET', '/api/v1/apps/demo-sales/tables/orders/rows?offset=9&limit=1', { headers: { authorization: `Bearer ${token}` } });
    expect(page.json()).toMatchObject({ columns: ['id', 'customer_id', 'product', 'amount', 'paid', 'day'], rows: [[10, 31, 'Widget, large', 193.7, 1, '2026-11-11']], total: 500 });
    const caBefore = readFileSync(index.ca['trustZone']!);

    stack.proc.kill('SIGINT');
    expect(await stack.exited).toBe(0);
    expect(stack.lines).toContain('dev-stack: stopped');
    for (const name of ['dev-cloud', 'agent', 'deployment-manager']) expect(stack.lines).toContain(`[${name}] exited (code 0, signal null)`);
    await expect(run(process.execPath, [join(DIST, 'agent/cli/fortctl.js'), '--config', index.config.fortctl, 'status'])).rejects.toMatchObject({ code: 2 });

    const second = startStack(home);
    await second.ready;
    expect(second.lines.some((l) => l.startsWith('dev-stack: generating PKI'))).toBe(false);
    expect(readFileSync(index.ca['trustZone']!)).toEqual(caBefore);
    second.proc.kill('SIGINT');
    expect(await second.exited).toBe(0);
  });
});
