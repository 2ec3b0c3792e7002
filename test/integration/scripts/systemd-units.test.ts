import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO, tempDir } from '../../helpers/fort.js';

const run = promisify(execFile);
const UNITS = ['fort-agent.service', 'fort-deployment-manager.service'];

/** The value of `key=` lines of a unit file (all of them, in order). */
const directives = (text: string, key: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));

describe('systemd units', () => {
  for (const unit of UNITS) {
    const file = join(REPO, 'systemd', unit);

    it(`${unit}: systemd-analyze verify is clean and the exposure score is at most 1.5`, async () => {
      const verify = await run('systemd-analyze', ['verify', file]);
      expect(verify.stderr.trim()).toBe('');
      const security = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', file]);
      const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(security.stdout);
      expect(m, security.stdout.slice(-400)).not.toBeNull();
      const score = Number(m![1]);
      process.stdout.write(`${unit}: exposure ${score}\n`);
      expect(score).toBeLessThanOrEqual(1.5);
    });

    it(`${unit}: waits for the network and a synchronised clock, has a watchdog, no capabilities, not MemoryDenyWriteExecute`, () => {
      const text = readFileSync(file, 'utf8');
      for (const key of ['Wants', 'After'])
        expect(directives(text, key).join(' ')).toMatch(/network-online\.target time-sync\.target/);
      expect(directives(text, 'WatchdogSec')[0]).toMatch(/^\d+s$/);
      expect(directives(text, 'CapabilityBoundingSet')).toEqual(['']);
      expect(directives(text, 'ProtectSystem')).toEqual(['strict']);
      expect(directives(text, 'NoNewPrivileges')).toEqual(['yes']);
      expect(directives(text, 'RestrictAddressFamilies')).toEqual(['AF_UNIX AF_INET AF_INET6']);
      // V8's JIT needs pages that are writable and then executable.
      expect(directives(text, 'MemoryDenyWriteExecute')).toEqual([]);
    });
  }

  it('only the deployment manager may write under /opt/fort, and only the agent releases', () => {
    const dm = readFileSync(join(REPO, 'systemd', 'fort-deployment-manager.service'), 'utf8');
    const agent = readFileSync(join(REPO, 'systemd', 'fort-agent.service'), 'utf8');
    expect(directives(dm, 'ReadWritePaths')).toEqual(['/opt/fort/agent']);
    expect(directives(agent, 'ReadWritePaths').join(' ')).not.toContain('/opt/fort');
  });

  describe("root's self-update of the deployment manager", () => {
    const service = join(REPO, 'systemd', 'fort-dm-self-update.service');
    const path = join(REPO, 'systemd', 'fort-dm-self-update.path');

    it('systemd-analyze verify is clean for both units; the service scores at most 1.5 although it runs as root', async () => {
      const verify = await run('systemd-analyze', ['verify', service, path]);
      expect(verify.stderr.trim()).toBe('');
      const security = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', service]);
      const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(security.stdout);
      expect(Number(m![1])).toBeLessThanOrEqual(1.5);
    });

    it('runs the stable deployment manager (never the one under trial), writes only its own paths, no network', () => {
      const text = readFileSync(service, 'utf8');
      expect(directives(text, 'ExecStart')[0]).toContain(
        '/opt/fort/deployment-manager/stable/dist/deployment-manager/self-update.js',
      );
      expect(directives(text, 'User')).toEqual([]);
      expect(directives(text, 'ReadWritePaths')).toEqual([
        '/opt/fort/deployment-manager /var/lib/fort/dm-self-update -/var/lib/fort/deployment-manager/self-update',
      ]);
      expect(directives(text, 'PrivateNetwork')).toEqual(['yes']);
      expect(directives(text, 'RestrictAddressFamilies')).toEqual(['AF_UNIX']);
      expect(text).not.toMatch(/^\[Install\]/m);
      const p = readFileSync(path, 'utf8');
      expect(directives(p, 'PathExists')).toEqual([
        '/var/lib/fort/deployment-manager/self-update/request.json',
        '/var/lib/fort/dm-self-update/active',
      ]);
    });
  });

  describe("root's agent restart for updates", () => {
    const service = join(REPO, 'systemd', 'fort-agent-restart.service');
    const path = join(REPO, 'systemd', 'fort-agent-restart.path');

    it('systemd-analyze verify is clean for both units; the root service scores at most 1.5', async () => {
      const verify = await run('systemd-analyze', ['verify', service, path]);
      expect(verify.stderr.trim()).toBe('');
      const security = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', service]);
      const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(security.stdout);
      process.stdout.write(`fort-agent-restart.service: exposure ${m![1]}\n`);
      expect(Number(m![1])).toBeLessThanOrEqual(1.5);
    });

    it('does one thing (systemctl restart the engine and the agent of the release), with no capabilities, no writes, no network; the deployment manager cannot restart other units', () => {
      const text = readFileSync(service, 'utf8');
      expect(directives(text, 'ExecStart')).toEqual([
        '/usr/bin/systemctl restart --no-block fort-engine.service fort-agent.service',
      ]);
      expect(directives(text, 'CapabilityBoundingSet')).toEqual(['']);
      expect(directives(text, 'ReadWritePaths')).toEqual([]);
      expect(directives(text, 'PrivateNetwork')).toEqual(['yes']);
      expect(text).not.toMatch(/^\[Install\]/m);
      const p = readFileSync(path, 'utf8');
      expect(directives(p, 'PathChanged')).toEqual(['/var/lib/fort/deployment-manager/agent-restart']);
      expect(directives(p, 'Unit')).toEqual(['fort-agent-restart.service']);
    });
  });

  describe("root's certificate renewal", () => {
    const service = join(REPO, 'systemd', 'fort-certs-renew.service');
    const timer = join(REPO, 'systemd', 'fort-certs-renew.timer');

    it('systemd-analyze verify is clean for both units; the root service scores at most 2.0', async () => {
      // verify wants the command to exist: the installed fortctl wrapper stands in for /bin/true here.
      const dir = tempDir('certs-renew-units');
      const copy = join(dir, 'fort-certs-renew.service');
      writeFileSync(copy, readFileSync(service, 'utf8').replace('/usr/local/bin/fortctl ', '/bin/true '));
      copyFileSync(timer, join(dir, 'fort-certs-renew.timer'));
      const verify = await run('systemd-analyze', ['verify', copy, join(dir, 'fort-certs-renew.timer')]);
      expect(verify.stderr.trim()).toBe('');
      const security = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', copy]);
      const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(security.stdout);
      process.stdout.write(`fort-certs-renew.service: exposure ${m![1]}\n`);
      expect(Number(m![1])).toBeLessThanOrEqual(2.0);
    });

    it("runs root's fortctl certs renew, writes only the PKI, no network; daily and after a missed day", () => {
      const text = readFileSync(service, 'utf8');
      expect(directives(text, 'ExecStart')).toEqual(['/usr/local/bin/fortctl certs renew']);
      expect(directives(text, 'ReadWritePaths')).toEqual(['/etc/fort/pki']);
      expect(directives(text, 'PrivateNetwork')).toEqual(['yes']);
      expect(text).not.toMatch(/^\[Install\]/m);
      const t = readFileSync(timer, 'utf8');
      expect(directives(t, 'OnCalendar')).toEqual(['daily']);
      expect(directives(t, 'Persistent')).toEqual(['true']);
    });
  });

  describe('fort-engine', () => {
    const file = join(REPO, 'systemd', 'fort-engine.service');

    it('systemd-analyze verify is clean; exposure at most 1.5; bounded memory, loopback only, no capabilities', async () => {
      const verify = await run('systemd-analyze', ['verify', file]);
      expect(verify.stderr.trim()).toBe('');
      const security = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', file]);
      const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(security.stdout);
      process.stdout.write(`fort-engine.service: exposure ${m![1]}\n`);
      expect(Number(m![1])).toBeLessThanOrEqual(1.5);
      const text = readFileSync(file, 'utf8');
      expect(directives(text, 'MemoryMax')).toEqual(['1G']);
      expect(directives(text, 'IPAddressDeny')).toEqual(['any']);
      expect(directives(text, 'IPAddressAllow')).toEqual(['localhost']);
      expect(directives(text, 'CapabilityBoundingSet')).toEqual(['']);
      expect(directives(text, 'User')).toEqual(['fort-engine']);
      expect(directives(text, 'WatchdogSec')[0]).toMatch(/^\d+s$/);
    });
  });
});
