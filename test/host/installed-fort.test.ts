import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { issueCert, loadCa, renewCert } from '../../lib/pki/certs.js';
import { eventually } from '../helpers/fort.js';
import { startHostFixture, type HostFixture, UNITS, API_PORT } from './harness/installed-fort.js';
import { httpsCall } from '../helpers/https.js';

/**
 * The fort as a customer installs and runs it: a Debian root booted by a real systemd, the
 * release's own install.sh with its defaults, the units exactly as shipped (no drop-ins), and
 * an operator's commands (systemctl, journalctl, sudo fortctl) inside it. Tests share one host
 * and run in order, as an operator's day would.
 */
describe('the installed fort under a real systemd (shipped units, install.sh defaults)', () => {
  let f: HostFixture;
  let fortId: string;
  beforeAll(async () => {
    f = await startHostFixture();
  });
  afterAll(async () => {
    await f?.stop();
  });

  it('install.sh with defaults: every unit active (READY=1), the client API answers on 0.0.0.0 with the client-zone certificate', async () => {
    const installed = await f.install(f.run.releases.v100);
    expect(installed.code, `${installed.stdout}\n${installed.stderr}`).toBe(0);
    for (const unit of UNITS) {
      const s = await f.waitActive(unit);
      expect(s.NRestarts, `${unit} restarted`).toBe(0);
    }
    const listening = await f.host.must(['ss', '-Hltn', `sport = :${API_PORT}`]);
    expect(listening).toContain(`0.0.0.0:${API_PORT}`);
    const health = await f.clientApi('/health');
    expect(health.status).toBe(200);
    const clientCa = new X509Certificate(f.read('/etc/fort/pki/client-zone/ca.pem'));
    expect(health.peer.issuer.CN).toBe(
      clientCa.subject
        .split('\n')
        .find((l) => l.startsWith('CN='))
        ?.slice(3),
    );
    // Nothing the journal should not have: no deprecation warnings, no stack traces.
    for (const unit of UNITS) {
      const journal = await f.host.journal(unit);
      expect(journal).not.toMatch(/FSTDEP|DeprecationWarning|SystemError/);
    }
  });

  it('no path root runs is writable by fort-agent or fort-dm (units, node, fortctl and the code it loads, the deployment manager)', async () => {
    const wrapper = readFileSync(f.host.path('/usr/local/bin/fortctl'), 'utf8');
    const script = /exec \S+ (\S+\.js)/.exec(wrapper)?.[1];
    expect(script).toBe('/opt/fort/deployment-manager/current/dist/fortctl/main.js');
    const rootRuns = [
      '/usr/bin/node',
      '/bin/kill',
      '/usr/local/bin',
      '/etc/systemd/system',
      '/opt',
      '/opt/fort',
      '/opt/fort/deployment-manager',
      '/etc/fort/artifact-keys',
    ];
    // What root's fortctl and the deployment manager's trust rest on (keys of each daemon are their own).
    const rootReads = [
      '/etc/fort',
      '/etc/fort/pki',
      '/etc/fort/pki/trust-zone',
      '/etc/fort/fortctl.toml',
      '/etc/fort/agent.toml',
      '/etc/fort/deployment-manager.toml',
      '/etc/fort/pki/trust-zone/ca.pem',
      '/etc/fort/pki/trust-zone/fortctl.pem',
      '/etc/fort/pki/trust-zone/fortctl.key',
    ];
    for (const user of ['fort-agent', 'fort-dm', 'fort-engine']) {
      // Only the agent's own releases are the deployment manager's to write.
      expect(await f.writableAs(user, rootRuns, { prune: ['/opt/fort/agent'] }), user).toEqual([]);
      expect(await f.writableAs(user, rootReads, { maxDepth: 0 }), user).toEqual([]);
    }
    // And the agent cannot change the release it runs.
    expect(await f.writableAs('fort-agent', ['/opt/fort/agent'])).toEqual([]);
    // Every directory from / to what root executes is root's.
    const ancestors = [
      '/',
      '/opt',
      '/opt/fort',
      '/opt/fort/deployment-manager',
      '/opt/fort/deployment-manager/current',
      '/opt/fort/deployment-manager/current/dist/fortctl/main.js',
      '/usr/local/bin/fortctl',
    ];
    const owners = await f.host.must(['stat', '-L', '-c', '%U %n', ...ancestors]);
    for (const line of owners.trim().split('\n')) expect(line).toMatch(/^root /);
  });

  it('pairs with a one-time code: the IoT link comes up and an event makes the round trip', async () => {
    fortId = await f.pair();
    const first = await f.pingRoundTrip(fortId);
    expect(first.pongId).toMatch(/[0-9a-f-]{36}/);
    const status = await f.fortctl('status');
    expect(status.stdout).toMatch(new RegExp(`^agent ${fortId} `, 'm'));
  });

  it('fort-engine in its own sandbox loads an app from /var/lib/fort/sources and answers a query through the client API', async () => {
    // What an operator does: the source where install.sh says, the definition, a reload.
    const lines = ['id,region,amount'];
    for (let i = 0; i < 1000; i++) lines.push(`${i},${['north', 'south'][i % 2]},${i}`);
    writeFileSync(f.host.path('/var/lib/fort/sources/orders.csv'), `${lines.join('\n')}\n`);
    writeFileSync(
      f.host.path('/root/orders.toml'),
      [
        'id = "orders"',
        'name = "Orders"',
        'space = "sales"',
        '[[tables]]',
        'name = "orders"',
        'connector = "csv"',
        'path = "orders.csv"',
        'columns = [ { name = "id", type = "integer" }, { name = "region", type = "string" }, { name = "amount", type = "number" } ]',
        '',
      ].join('\n'),
    );
    const added = await f.fortctl('apps', 'add', '/root/orders.toml');
    expect(added.code, `${added.stdout}${added.stderr}`).toBe(0);
    const started = await f.fortctl('reloads', 'start', 'orders');
    expect(started.code, `${started.stdout}${started.stderr}`).toBe(0);
    const reload = await eventually(
      async () => {
        const r = JSON.parse((await f.adminApi('/admin/v1/reloads?app=orders')).body) as {
          reloads: { state: string; rows: number | null; errorMessage: string | null }[];
        };
        if (r.reloads.some((x) => x.state === 'failed')) throw new Error(JSON.stringify(r.reloads));
        return r.reloads.find((x) => x.state === 'succeeded');
      },
      60_000,
      'the reload of orders in fort-engine',
    );
    expect(reload.rows).toBe(1000);
    // The version is the engine's: in its state directory, its own and nobody else's.
    const versions = await f.host.must(['stat', '-c', '%U %a', '/var/lib/fort/engine/apps/orders']);
    expect(versions.trim()).toBe('fort-engine 700');
    const files = await f.host.must([
      'find',
      '/var/lib/fort/engine/apps/orders',
      '-name',
      '*.duckdb',
      '-printf',
      '%u %m\n',
    ]);
    expect(files.trim()).toMatch(/^fort-engine 600$/);

    const token = await f.dev.login('alice', 't1');
    const answer = await httpsCall(
      `https://127.0.0.1:${API_PORT}`,
      f.read('/etc/fort/pki/client-zone/ca.pem'),
      'POST',
      '/api/v1/apps/orders/query',
      {
        headers: { authorization: `Bearer ${token}` },
        json: {
          dimensions: ['region'],
          measures: [{ op: 'sum', field: 'amount' }, { op: 'count' }],
          sort: [{ by: 'region' }],
        },
      },
    );
    expect(answer.status, answer.body).toBe(200);
    // 0+2+…+998 and 1+3+…+999.
    expect(answer.json()).toMatchObject({
      rows: [
        ['north', 249_500, 500],
        ['south', 250_000, 500],
      ],
    });
    expect((await f.unit('fort-engine.service')).NRestarts).toBe(0);
  });

  it('systemctl reload fort-agent serves a new client API certificate without a restart (the journal shows it)', async () => {
    const before = await f.unit('fort-agent.service');
    const served = async () => (await f.clientApi('/health')).peer.serialNumber;
    const oldSerial = await served();
    const ca = await loadCa(
      f.read('/etc/fort/pki/client-zone/ca.pem').toString(),
      f.read('/etc/fort/pki/client-zone/ca.key').toString(),
    );
    const next = await issueCert(ca, {
      commonName: 'fort client api',
      usage: 'server',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    // Rewritten in place: owner and mode stay what install.sh set (the key is fort-agent's, 0600).
    writeFileSync(f.host.path('/etc/fort/pki/client-zone/client-api.key'), next.keyPem);
    writeFileSync(f.host.path('/etc/fort/pki/client-zone/client-api.pem'), next.certPem);
    const reloaded = await f.host.systemctl('reload', 'fort-agent');
    expect(reloaded.code, reloaded.stderr).toBe(0);
    const newSerial = await eventually(
      async () => {
        const s = await served();
        return s !== oldSerial ? s : undefined;
      },
      20_000,
      'the new certificate served',
    );
    expect(newSerial.toLowerCase()).toBe(new X509Certificate(next.certPem).serialNumber.toLowerCase());
    const after = await f.unit('fort-agent.service');
    expect(after.MainPID).toBe(before.MainPID);
    expect(after.NRestarts).toBe(before.NRestarts);
    expect(await f.host.journal('fort-agent.service', ['-n', '50'])).toMatch(/TLS certificates reloaded/);
  });

  it('fort-certs-renew (its timer enabled) renews the certificates past two thirds of their life; the services use them without a restart', async () => {
    expect((await f.unit('fort-certs-renew.timer')).ActiveState).toBe('active');
    const leaves = [
      ['trust-zone', 'agent'],
      ['trust-zone', 'deployment-manager'],
      ['trust-zone', 'fortctl'],
      ['trust-zone', 'engine'],
      ['client-zone', 'client-api'],
    ] as const;
    // Each made 600 of its 825 days old (same CA, same key), written in place: due for renewal.
    const aged = new Date(Date.now() - 600 * 86_400_000);
    for (const [zone, name] of leaves) {
      const ca = await loadCa(
        f.read(`/etc/fort/pki/${zone}/ca.pem`).toString(),
        f.read(`/etc/fort/pki/${zone}/ca.key`).toString(),
      );
      const file = `/etc/fort/pki/${zone}/${name}.pem`;
      writeFileSync(f.host.path(file), await renewCert(ca, f.read(file).toString(), aged));
    }
    const serial = (zone: string, name: string) =>
      new X509Certificate(f.read(`/etc/fort/pki/${zone}/${name}.pem`)).serialNumber;
    const old = leaves.map(([z, n]) => serial(z, n));
    const services = ['fort-agent.service', 'fort-engine.service', 'fort-deployment-manager.service'];
    const before = await Promise.all(services.map((u) => f.unit(u)));

    const ran = await f.host.systemctl('start', 'fort-certs-renew.service');
    expect(ran.code, ran.stderr).toBe(0);
    const renewed = leaves.map(([z, n]) => serial(z, n));
    renewed.forEach((s, i) => expect(s, leaves[i]!.join('/')).not.toBe(old[i]));
    const agentCert = new X509Certificate(f.read('/etc/fort/pki/trust-zone/agent.pem'));
    expect(Date.parse(agentCert.validTo) - Date.now()).toBeGreaterThan(800 * 86_400_000);
    const journal = await f.host.journal('fort-certs-renew.service', ['-n', '50']);
    expect(journal).toMatch(/trust-zone\/agent: renewed/);
    expect(journal).toMatch(/reloaded: fort-agent.service, fort-engine.service, fort-deployment-manager.service/);
    await eventually(
      async () =>
        (await f.clientApi('/health')).peer.serialNumber.toLowerCase() === renewed[4]!.toLowerCase() ? true : undefined,
      20_000,
      'the renewed client API certificate served',
    );
    expect(await f.host.journal('fort-engine.service', ['-n', '50'])).toMatch(/TLS certificates reloaded/);
    expect(await f.host.journal('fort-deployment-manager.service', ['-n', '50'])).toMatch(
      /trust-zone client certificate reloaded/,
    );
    const after = await Promise.all(services.map((u) => f.unit(u)));
    after.forEach((u, i) => {
      expect(u.MainPID, services[i]).toBe(before[i]!.MainPID);
      expect(u.NRestarts, services[i]).toBe(before[i]!.NRestarts);
    });
  });

  it('fortctl logs reads the journal and fortctl doctor passes', async () => {
    const logs = await f.fortctl('logs', '--unit', 'agent', '--lines', '200');
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/TLS certificates reloaded/);
    const doctor = await f.fortctl('doctor');
    expect(doctor.code, `${doctor.stdout}\n${doctor.stderr}`).toBe(0);
  });

  it('fortctl support-bundle gathers the journal and the configs, and no key the installation holds', async () => {
    const made = await f.fortctl('support-bundle', '--out', '/root/support.tar.gz', '--lines', '500');
    expect(made.code, made.stderr).toBe(0);
    await f.host.must(['mkdir', '-p', '/root/support']);
    await f.host.must(['tar', '-xzf', '/root/support.tar.gz', '-C', '/root/support']);
    const listed = (await f.host.must(['find', '/root/support/fort-support', '-type', 'f'])).trim().split('\n');
    const text = listed.map((p) => readFileSync(f.host.path(p), 'utf8')).join('\n');
    for (const name of ['logs/agent.log', 'logs/engine.log', 'logs/deployment-manager.log', 'config/agent.toml'])
      expect(listed).toContain(`/root/support/fort-support/${name}`);
    expect(text).toMatch(/fort-agent ready/);
    const keys = (await f.host.must(['find', '/etc/fort', '/var/lib/fort', '-name', '*.key', '-type', 'f']))
      .trim()
      .split('\n');
    expect(keys.length).toBeGreaterThanOrEqual(3);
    for (const k of keys) {
      const body = readFileSync(f.host.path(k), 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('-----'))
        .join('');
      for (let i = 0; i + 40 <= body.length; i += 40) expect(text, k).not.toContain(body.slice(i, i + 40));
    }
  });

  it('watchdog: a stopped agent (kill -STOP) is killed and restarted by systemd within WatchdogSec', async () => {
    const before = await f.unit('fort-agent.service');
    await f.host.must(['kill', '-STOP', String(before.MainPID)]);
    const stoppedAt = Date.now();
    const after = await eventually(
      async () => {
        const s = await f.unit('fort-agent.service');
        return s.MainPID !== before.MainPID && s.ActiveState === 'active' ? s : undefined;
      },
      60_000,
      'systemd to restart the wedged agent',
    );
    // WatchdogSec=30s, RestartSec=2, a start of a few seconds.
    expect(Date.now() - stoppedAt).toBeLessThan(50_000);
    expect(after.NRestarts).toBe(before.NRestarts + 1);
    expect(await f.host.journal('fort-agent.service', ['-n', '100'])).toMatch(/[Ww]atchdog timeout/);
    await f.waitActive('fort-agent.service');
    await f.pingRoundTrip(fortId);
  });

  it('install.sh --uninstall --purge leaves no unit, user or file behind', async () => {
    const removed = await f.host.run(['bash', '/root/fort-1.0.0/scripts/install.sh', '--uninstall', '--purge']);
    expect(removed.code, `${removed.stdout}\n${removed.stderr}`).toBe(0);
    const units = await f.host.run(['systemctl', 'list-unit-files', '--no-legend', 'fort-*']);
    expect(units.stdout.trim()).toBe('');
    for (const unit of UNITS) expect((await f.unit(unit)).ActiveState).toBe('inactive');
    for (const user of ['fort-agent', 'fort-dm', 'fort-engine'])
      expect((await f.host.run(['getent', 'passwd', user])).code).not.toBe(0);
    expect((await f.host.run(['getent', 'group', 'fort'])).code).not.toBe(0);
    const left = await f.host.run([
      'ls',
      '-d',
      '/etc/fort',
      '/var/lib/fort',
      '/opt/fort',
      '/usr/local/bin/fortctl',
      '/etc/systemd/system/fort-agent.service',
      '/etc/systemd/system/fort-deployment-manager.service',
    ]);
    expect(left.stdout.trim()).toBe('');
    expect((await f.host.run(['pgrep', '-f', 'fort'])).stdout.trim()).toBe('');
  });
});
