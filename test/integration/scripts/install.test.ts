import { beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
  mkdirSync,
  existsSync,
  appendFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadAgentConfig } from '../../../agent/config.js';
import { loadDeploymentManagerConfig } from '../../../deployment-manager/config.js';
import { loadEngineConfig } from '../../../engine/config.js';
import { loadTlsMaterial } from '../../../lib/tls.js';
import { DIST, REPO, tempDir } from '../../helpers/fort.js';

const run = promisify(execFile);
const INSTALL = join(REPO, 'scripts', 'install.sh');

/** An empty root with only root in its user database, and the repo's node_modules where a release without them finds them. */
function emptyRoot(): string {
  const parent = tempDir('install');
  // Traversable by the installed users, as / is (mkdtemp makes it 0700).
  chmodSync(parent, 0o755);
  const root = join(parent, 'root');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'opt'));
  for (const db of ['passwd', 'group', 'shadow', 'gshadow']) {
    writeFileSync(
      join(root, 'etc', db),
      readFileSync(`/etc/${db}`, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('root:'))
        .join('\n') + '\n',
    );
  }
  // The test release has no node_modules (npm run release --no-node-modules); resolution walks up to here.
  symlinkSync(join(REPO, 'node_modules'), join(root, 'opt', 'node_modules'));
  return root;
}

/** Every path under root with type, mode, owner, size, mtime and link target (node_modules left out). */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const p = join(root, rel);
    const s = lstatSync(p);
    const type = s.isSymbolicLink() ? 'l' : s.isDirectory() ? 'd' : 'f';
    out.push(
      `${rel || '.'} ${type} ${(s.mode & 0o7777).toString(8)} ${s.uid}:${s.gid} ${type === 'f' ? s.size : ''} ${type === 'l' ? readlinkSync(p) : s.mtimeMs}`,
    );
    if (type === 'd')
      for (const e of readdirSync(p).sort()) if (`${rel}/${e}` !== '/opt/node_modules') walk(`${rel}/${e}`);
  };
  walk('');
  return out;
}

function ids(root: string, db: 'passwd' | 'group'): Record<string, { id: number; members: string[]; line: string }> {
  return Object.fromEntries(
    readFileSync(join(root, 'etc', db), 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const f = l.split(':');
        return [f[0]!, { id: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean), line: l }];
      }),
  );
}

function stat(root: string, path: string): { mode: string; owner: string } {
  const s = lstatSync(join(root, path));
  const users = Object.fromEntries(Object.entries(ids(root, 'passwd')).map(([n, u]) => [u.id, n]));
  const groups = Object.fromEntries(Object.entries(ids(root, 'group')).map(([n, g]) => [g.id, n]));
  return { mode: (s.mode & 0o7777).toString(8).padStart(4, '0'), owner: `${users[s.uid]}:${groups[s.gid]}` };
}

/** Read a file as the given user of the installed root (numeric ids: the host does not know them). */
async function readAs(root: string, user: string, path: string): Promise<boolean> {
  const u = ids(root, 'passwd')[user]!;
  const groups = Object.values(ids(root, 'group'))
    .filter((g) => g.members.includes(user))
    .map((g) => g.id);
  const gid = ids(root, 'group')[user]!.id;
  try {
    await run('setpriv', [
      `--reuid=${u.id}`,
      `--regid=${gid}`,
      `--groups=${[gid, ...groups].join(',')}`,
      '--',
      'cat',
      join(root, path),
    ]);
    return true;
  } catch {
    return false;
  }
}

describe('scripts/install.sh into a throwaway root', () => {
  let release: string;
  let artifactKey: string;
  const install = (root: string, ...extra: string[]) =>
    run('bash', [
      INSTALL,
      '--root',
      root,
      '--release',
      release,
      '--artifact-key',
      artifactKey,
      '--client-api-name',
      'fort.example.lan',
      ...extra,
    ]);

  beforeAll(async () => {
    const dir = tempDir('install-release');
    await run('openssl', ['genrsa', '-traditional', '-out', join(dir, 'signing.key'), '2048']);
    await run('openssl', ['rsa', '-in', join(dir, 'signing.key'), '-pubout', '-out', join(dir, 'signing.pub.pem')]);
    artifactKey = join(dir, 'signing.pub.pem');
    await run(process.execPath, [
      join(DIST, 'scripts/release.js'),
      '--version',
      '2.3.4',
      '--device-type',
      'fort-test',
      '--out',
      dir,
      '--no-node-modules',
    ]);
    release = join(dir, 'fort-agent-2.3.4.tgz');
  });

  it('installs users, directories, the release, the PKI, configs and enabled units; a second run changes nothing', async () => {
    const root = emptyRoot();
    const first = await install(root);
    expect(first.stdout).toContain('created user fort-agent');
    // Issue 8: the operator is told what to do next.
    expect(first.stdout.trimEnd().split('\n').slice(-2)).toEqual([
      'Next, pair this fort with your cloud tenant using a one-time code from the cloud console:',
      '  sudo fortctl pair --cloud https://<your cloud> --code <one-time code>',
    ]);
    const before = tree(root);
    const second = await install(root);
    expect(tree(root)).toEqual(before);
    expect(second.stdout).not.toMatch(/^(created|wrote|installed|linked) /m);

    const users = ids(root, 'passwd');
    for (const u of ['fort-agent', 'fort-dm', 'fort-engine']) {
      expect(users[u]!.line).toMatch(new RegExp(`^${u}:x:\\d+:\\d+:[^:]*:/nonexistent:/usr/sbin/nologin$`));
      expect(users[u]!.id).toBeLessThan(1000); // a system user
    }
    expect(ids(root, 'group')['fort']!.members.sort()).toEqual(['fort-agent', 'fort-dm', 'fort-engine']);
    // App sources: the agent checks definitions against them, the engine loads them; nobody else reads them.
    expect(ids(root, 'group')['fort-sources']!.members.sort()).toEqual(['fort-agent', 'fort-engine']);

    const expected: Record<string, [string, string]> = {
      '/etc/fort': ['0750', 'root:fort'],
      '/etc/fort/agent.toml': ['0640', 'root:fort-agent'],
      '/etc/fort/deployment-manager.toml': ['0640', 'root:fort-dm'],
      '/etc/fort/fortctl.toml': ['0600', 'root:root'],
      '/etc/fort/engine.toml': ['0640', 'root:fort-engine'],
      '/etc/fort/pki/trust-zone/engine.key': ['0600', 'fort-engine:fort-engine'],
      '/etc/fort/pki/trust-zone/engine.pem': ['0644', 'root:root'],
      '/etc/fort/pki/trust-zone': ['0750', 'root:fort'],
      '/etc/fort/pki/trust-zone/ca.key': ['0600', 'root:root'],
      '/etc/fort/pki/trust-zone/ca.pem': ['0644', 'root:root'],
      '/etc/fort/pki/trust-zone/agent.key': ['0600', 'fort-agent:fort-agent'],
      '/etc/fort/pki/trust-zone/deployment-manager.key': ['0600', 'fort-dm:fort-dm'],
      '/etc/fort/pki/trust-zone/fortctl.key': ['0600', 'root:root'],
      '/etc/fort/pki/client-zone/ca.key': ['0600', 'root:root'],
      '/etc/fort/pki/client-zone/client-api.key': ['0600', 'fort-agent:fort-agent'],
      '/etc/fort/artifact-keys/signing.pub.pem': ['0644', 'root:root'],
      '/opt/fort': ['0755', 'root:root'],
      '/opt/fort/agent': ['0755', 'fort-dm:fort-dm'],
      '/opt/fort/agent/releases/2.3.4': ['0755', 'fort-dm:fort-dm'],
      '/opt/fort/agent/releases/2.3.4/dist/agent/main.js': ['0644', 'fort-dm:fort-dm'],
      '/opt/fort/deployment-manager': ['0755', 'root:root'],
      '/opt/fort/deployment-manager/releases/2.3.4/dist/deployment-manager/main.js': ['0644', 'root:root'],
      '/var/lib/fort': ['0755', 'root:root'],
      '/var/lib/fort/agent': ['0700', 'fort-agent:fort-agent'],
      '/var/lib/fort/deployment-manager': ['0700', 'fort-dm:fort-dm'],
      '/var/lib/fort/deployment-manager/agent-restart': ['0700', 'fort-dm:fort-dm'],
      '/var/lib/fort/dm-self-update': ['0755', 'root:root'],
      '/var/lib/fort/engine': ['0700', 'fort-engine:fort-engine'],
      '/var/lib/fort/sources': ['0750', 'root:fort-sources'],
      '/etc/systemd/system/fort-engine.service': ['0644', 'root:root'],
      '/etc/systemd/system/fort-agent.service': ['0644', 'root:root'],
      '/etc/systemd/system/fort-dm-self-update.service': ['0644', 'root:root'],
      '/etc/systemd/system/fort-dm-self-update.path': ['0644', 'root:root'],
      '/etc/systemd/system/fort-agent-restart.service': ['0644', 'root:root'],
      '/etc/systemd/system/fort-agent-restart.path': ['0644', 'root:root'],
      '/etc/systemd/system/fort-certs-renew.service': ['0644', 'root:root'],
      '/etc/systemd/system/fort-certs-renew.timer': ['0644', 'root:root'],
      '/usr/local/bin/fortctl': ['0755', 'root:root'],
    };
    for (const [path, [mode, owner]] of Object.entries(expected))
      expect(stat(root, path), path).toEqual({ mode, owner });
    // Only the installation's own zones: the cloud's CAs are the cloud's.
    expect(readdirSync(join(root, 'etc/fort/pki')).sort()).toEqual(['client-zone', 'trust-zone']);
    expect(readlinkSync(join(root, 'opt/fort/agent/current'))).toBe('releases/2.3.4');
    expect(readlinkSync(join(root, 'opt/fort/deployment-manager/current'))).toBe('releases/2.3.4');
    expect(readlinkSync(join(root, 'opt/fort/deployment-manager/stable'))).toBe('releases/2.3.4');
    for (const unit of ['fort-engine.service', 'fort-agent.service', 'fort-deployment-manager.service']) {
      expect(readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants', unit))).toBe(
        `/etc/systemd/system/${unit}`,
      );
    }
    // Root's self-update and agent-restart services are started by their path units only.
    for (const unit of ['fort-dm-self-update', 'fort-agent-restart']) {
      expect(readlinkSync(join(root, `etc/systemd/system/paths.target.wants/${unit}.path`))).toBe(
        `/etc/systemd/system/${unit}.path`,
      );
      expect(existsSync(join(root, `etc/systemd/system/multi-user.target.wants/${unit}.service`))).toBe(false);
    }
    // ... and the certificate renewal by its timer.
    expect(readlinkSync(join(root, 'etc/systemd/system/timers.target.wants/fort-certs-renew.timer'))).toBe(
      '/etc/systemd/system/fort-certs-renew.timer',
    );

    // The kernel agrees: each process reads its own key and not the other's, nor the CA key.
    expect(await readAs(root, 'fort-agent', 'etc/fort/pki/trust-zone/agent.key')).toBe(true);
    expect(await readAs(root, 'fort-agent', 'etc/fort/agent.toml')).toBe(true);
    expect(await readAs(root, 'fort-agent', 'opt/fort/agent/current/dist/agent/main.js')).toBe(true);
    expect(await readAs(root, 'fort-agent', 'etc/fort/pki/trust-zone/deployment-manager.key')).toBe(false);
    expect(await readAs(root, 'fort-agent', 'etc/fort/deployment-manager.toml')).toBe(false);
    expect(await readAs(root, 'fort-agent', 'etc/fort/pki/trust-zone/ca.key')).toBe(false);
    expect(await readAs(root, 'fort-dm', 'etc/fort/pki/trust-zone/deployment-manager.key')).toBe(true);
    expect(await readAs(root, 'fort-dm', 'etc/fort/pki/trust-zone/agent.key')).toBe(false);
    expect(await readAs(root, 'fort-dm', 'etc/fort/pki/client-zone/client-api.key')).toBe(false);
    expect(await readAs(root, 'fort-engine', 'etc/fort/pki/trust-zone/engine.key')).toBe(true);
    expect(await readAs(root, 'fort-engine', 'etc/fort/engine.toml')).toBe(true);
    expect(await readAs(root, 'fort-engine', 'etc/fort/pki/trust-zone/agent.key')).toBe(false);
    expect(await readAs(root, 'fort-engine', 'etc/fort/agent.toml')).toBe(false);
    expect(await readAs(root, 'fort-agent', 'etc/fort/pki/trust-zone/engine.key')).toBe(false);
    expect(await readAs(root, 'fort-dm', 'etc/fort/pki/trust-zone/engine.key')).toBe(false);

    // The written configs load as the daemons load them; identity and endpoints wait for pairing.
    const agent = loadAgentConfig(join(root, 'etc/fort/agent.toml'));
    expect(agent.fort.id).toBe('unpaired');
    expect(agent.store.path).toBe('/var/lib/fort/agent/agent.db');
    expect(agent.api.port).toBe(8443);
    expect(agent.engine?.url).toBe('https://127.0.0.1:8446');
    expect(agent.reloads.data_dirs).toEqual(['/var/lib/fort/sources']);
    const engine = loadEngineConfig(join(root, 'etc/fort/engine.toml'));
    expect(engine.server.port).toBe(8446);
    expect(engine.data).toEqual({ dir: '/var/lib/fort/engine', source_dirs: ['/var/lib/fort/sources'] });
    const engineTls = loadTlsMaterial(engine.server.tls);
    expect(engineTls.leaf.subject).toMatch(/CN=engine/);
    const admin = loadTlsMaterial(agent.admin.tls);
    const api = loadTlsMaterial(agent.api.tls);
    const dm = loadDeploymentManagerConfig(join(root, 'etc/fort/deployment-manager.toml'));
    expect(dm.updates?.install_root).toBe('/opt/fort/agent');
    expect(dm.updates?.artifact_keys).toEqual([join(root, 'etc/fort/artifact-keys/signing.pub.pem')]);
    expect(dm.updates?.paired?.identity_dir).toBe('/var/lib/fort/deployment-manager/update-identity');
    expect(dm.updates?.self_update).toEqual({
      install_root: '/opt/fort/deployment-manager',
      request_dir: '/var/lib/fort/deployment-manager/self-update',
      root_state_dir: '/var/lib/fort/dm-self-update',
      proof_seconds: 120,
      unit: 'fort-deployment-manager.service',
    });
    expect(loadTlsMaterial(dm.agent.tls).leaf.subject).toContain('CN=deployment-manager');
    // Two CAs: the admin certificate chains to the trust zone, the client API's does not.
    const tzCa = new (await import('node:crypto')).X509Certificate(
      readFileSync(join(root, 'etc/fort/pki/trust-zone/ca.pem')),
    );
    expect(admin.leaf.verify(tzCa.publicKey)).toBe(true);
    expect(api.leaf.verify(tzCa.publicKey)).toBe(false);
    expect(api.leaf.subjectAltName).toContain('DNS:fort.example.lan');
  });

  it("keeps an operator's edited config and the CA on a second run, and --uninstall keeps config and data unless --purge", async () => {
    const root = emptyRoot();
    await install(root);
    const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
    appendFileSync(join(root, 'etc/fort/agent.toml'), '\n[reloads]\nmax_concurrent = 1\n');
    const edited = readFileSync(join(root, 'etc/fort/agent.toml'), 'utf8');
    const ca = readFileSync(join(root, 'etc/fort/pki/trust-zone/ca.pem'), 'utf8');
    writeFileSync(join(root, 'var/lib/fort/agent/agent.db'), 'data');
    await install(root);
    expect(readFileSync(join(root, 'etc/fort/agent.toml'), 'utf8')).toBe(edited);

    const removed = await run('bash', [INSTALL, '--root', root, '--uninstall']);
    expect(removed.stdout).toContain('kept /etc/fort');
    for (const gone of [
      'opt/fort',
      'etc/systemd/system/fort-agent.service',
      'etc/systemd/system/multi-user.target.wants/fort-agent.service',
      'etc/systemd/system/fort-dm-self-update.service',
      'etc/systemd/system/paths.target.wants/fort-dm-self-update.path',
      'etc/systemd/system/fort-agent-restart.service',
      'etc/systemd/system/paths.target.wants/fort-agent-restart.path',
      'etc/systemd/system/fort-certs-renew.service',
      'etc/systemd/system/timers.target.wants/fort-certs-renew.timer',
      'usr/local/bin/fortctl',
    ]) {
      expect(existsSync(join(root, gone)), gone).toBe(false);
    }
    expect(readFileSync(join(root, 'var/lib/fort/agent/agent.db'), 'utf8')).toBe('data');
    expect(readFileSync(join(root, 'etc/passwd'), 'utf8')).toBe(passwd);

    // Installed again: the same CA and config, the data untouched.
    await install(root);
    expect(readFileSync(join(root, 'etc/fort/pki/trust-zone/ca.pem'), 'utf8')).toBe(ca);
    expect(readFileSync(join(root, 'etc/fort/agent.toml'), 'utf8')).toBe(edited);
    expect(readFileSync(join(root, 'var/lib/fort/agent/agent.db'), 'utf8')).toBe('data');

    await run('bash', [INSTALL, '--root', root, '--uninstall', '--purge']);
    for (const gone of ['etc/fort', 'var/lib/fort', 'opt/fort']) expect(existsSync(join(root, gone)), gone).toBe(false);
    expect(Object.keys(ids(root, 'passwd'))).toEqual(['root']);
    expect(Object.keys(ids(root, 'group'))).toEqual(['root']);
  });

  it('refuses what is not a release before creating anything', async () => {
    const root = emptyRoot();
    const before = tree(root);
    const notRelease = join(tempDir('install-bad'), 'x.tgz');
    writeFileSync(notRelease, 'not a tarball');
    await expect(run('bash', [INSTALL, '--root', root, '--release', notRelease])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining(`--release ${notRelease} is not a fort release tarball`),
    });
    await expect(run('bash', [INSTALL, '--root', root])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('--release is required'),
    });
    expect(tree(root)).toEqual(before);
  });
});
