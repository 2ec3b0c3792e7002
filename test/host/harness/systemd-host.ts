import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  closeSync,
} from 'node:fs';
import { join } from 'node:path';
import { eventually } from '../../helpers/fort.js';

/** Mounts what a booted system expects, then makes systemd PID 1 of the new pid namespace. */
const BOOT_SCRIPT = `#!/bin/bash
set -euo pipefail
ROOT=$1
mount --bind "$ROOT" "$ROOT"
mount -t proc proc "$ROOT/proc"
mount --rbind /sys "$ROOT/sys"
mount --rbind /dev "$ROOT/dev"
mount -t tmpfs -o mode=0755 tmpfs "$ROOT/run"
mount -t tmpfs -o mode=1777 tmpfs "$ROOT/tmp"
exec chroot "$ROOT" env -i container=other /lib/systemd/systemd --system
`;

/** The clean environment of a root shell in the booted system (never the test's proxies or TMPDIR). */
const SHELL_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  HOME: '/root',
  SYSTEMD_PAGER: '',
  SYSTEMD_COLORS: '0',
  TERM: 'dumb',
};

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SystemdHost {
  /** The root directory as the test (outside) sees it. */
  root: string;
  /** systemd's pid outside the namespace. */
  pid: number;
  /** `/etc/fort/agent.toml` → the same file seen from outside. */
  path(p: string): string;
  /** A command in the booted system (its mount, pid, uts, ipc namespaces, root and cwd), as root. */
  run(argv: string[], opts?: { input?: string; timeoutMs?: number; env?: Record<string, string> }): Promise<RunResult>;
  /** Like run, and throws with its output when it exits non-zero. */
  must(argv: string[], opts?: { input?: string; timeoutMs?: number; env?: Record<string, string> }): Promise<string>;
  systemctl(...args: string[]): Promise<RunResult>;
  /** The unit's journal since boot (or `--since`), message text only. */
  journal(unit: string, extra?: string[]): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Boots a copy of `baseRoot` with a real systemd as PID 1 in its own pid, mount, uts and ipc
 * namespaces, sharing the host's network (the dev cloud on loopback is reachable), so the
 * units run with their whole sandbox. The host's `node` is put at /usr/bin/node.
 */
export async function bootSystemdHost(
  baseRoot: string,
  opts: { workDir: string; log?: (line: string) => void },
): Promise<SystemdHost> {
  const work = mkdtempSync(join(opts.workDir, 'host-'));
  const root = join(work, 'root');
  await run('cp', ['-a', '--reflink=auto', baseRoot, root]);
  copyFileSync(process.execPath, join(root, 'usr/bin/node'));
  chmodSync(join(root, 'usr/bin/node'), 0o755);
  writeFileSync(join(root, 'etc/hostname'), 'fort-host\n');
  const script = join(work, 'boot.sh');
  writeFileSync(script, BOOT_SCRIPT, { mode: 0o755 });
  const consoleLog = join(work, 'console.log');
  const out = openSync(consoleLog, 'w');
  const unshare: ChildProcess = spawn(
    'unshare',
    ['--pid', '--fork', '--mount', '--uts', '--ipc', '--propagation', 'private', 'bash', script, root],
    { stdio: ['ignore', out, out], detached: true },
  );
  closeSync(out);
  const exited = new Promise<void>((resolve) => unshare.once('exit', () => resolve()));
  let pid = 0;
  try {
    // unshare --fork: its one child becomes PID 1 (bash, then chroot, then systemd by exec).
    pid = await eventually(
      () => {
        if (unshare.exitCode !== null)
          throw new Error(
            `the boot ended (exit ${unshare.exitCode}): ${readFileSync(consoleLog, 'utf8').slice(-2000)}`,
          );
        const child = Number(
          readFileSync(`/proc/${unshare.pid}/task/${unshare.pid}/children`, 'utf8').trim().split(/\s+/)[0],
        );
        if (!child) return undefined;
        return readFileSync(`/proc/${child}/comm`, 'utf8').trim() === 'systemd' ? child : undefined;
      },
      30_000,
      'systemd to start as PID 1',
    );
  } catch (err) {
    unshare.kill('SIGKILL');
    throw err;
  }
  const enter = (argv: string[]) => ['-t', String(pid), '-m', '-p', '-u', '-i', '-r', '-w', '--', ...argv];
  const host: SystemdHost = {
    root,
    pid,
    path: (p) => join(root, p),
    run: (argv, o = {}) => run('nsenter', enter(argv), { ...o, env: { ...SHELL_ENV, ...o.env } }),
    async must(argv, o) {
      const r = await host.run(argv, o);
      if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    },
    systemctl: (...args) => host.run(['systemctl', '--no-pager', ...args]),
    async journal(unit, extra = []) {
      return (await host.run(['journalctl', '--no-pager', '-o', 'cat', '-u', unit, ...extra])).stdout;
    },
    async stop() {
      try {
        process.kill(pid, 'SIGKILL'); // PID 1 of the namespace: every process in it dies with it
      } catch {
        // already gone
      }
      unshare.kill('SIGKILL');
      await exited;
      rmSync(work, { recursive: true, force: true });
    },
  };
  try {
    const state = await eventually(
      async () => {
        const r = await host.run(['systemctl', 'is-system-running']);
        const s = r.stdout.trim();
        return s === 'running' || s === 'degraded' ? s : undefined;
      },
      60_000,
      'systemd to finish booting',
    );
    if (state === 'degraded') opts.log?.(`host booted degraded: ${(await host.systemctl('--failed')).stdout}`);
  } catch (err) {
    await host.stop();
    throw err;
  }
  if (!existsSync(join(root, 'usr/bin/node'))) throw new Error('node missing in the booted root');
  return host;
}

export function run(
  cmd: string,
  args: string[],
  o: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
        timeout: o.timeoutMs ?? 120_000,
        killSignal: 'SIGKILL',
        ...(o.env ? { env: o.env } : {}),
      },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
          const spawnError: Error = err; // ENOENT and the like, as they are
          return reject(spawnError);
        }
        if (err && (err as { killed?: boolean }).killed)
          return reject(
            new Error(`${cmd} ${args.join(' ')} timed out after ${o.timeoutMs ?? 120_000} ms:\n${stdout}\n${stderr}`),
          );
        resolve({ code: child.exitCode ?? (err ? 1 : 0), stdout, stderr });
      },
    );
    if (o.input !== undefined) child.stdin?.end(o.input);
    else child.stdin?.end();
  });
}
