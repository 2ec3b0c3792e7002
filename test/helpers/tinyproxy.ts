import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { reservePort } from '../../scripts/port-reservation.js';
import { tempDir } from './fort.js';

export interface TinyproxyOptions {
  /** `BasicAuth user password`: every request must then carry Proxy-Authorization. */
  basicAuth?: { user: string; password: string };
  /** Ports CONNECT may reach; none given = every port (tinyproxy's rule without ConnectPort). */
  connectPorts?: number[];
}

export interface Tinyproxy {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  logFile: string;
  /** Every `CONNECT host:port` request tinyproxy logged so far (also refused ones). */
  connects(): string[];
  /** Killed (-9, its tunnels cut) until `up()`; the port stays reserved for it. */
  down(): Promise<void>;
  /** Started again on the same port and config after `down()`. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

/** nobody's uid/gid from /etc/passwd: tinyproxy drops root privileges to them. */
function nobody(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('nobody:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (!uid || !gid) throw new Error('tinyproxy helper: no "nobody" user in /etc/passwd to run tinyproxy as');
  return { uid: Number(uid), gid: Number(gid) };
}

function acceptsTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Debian's real tinyproxy in the foreground (`-d`) on a loopback port reserved until `stop()`
 * (scripts/port-reservation.ts: tinyproxy sets SO_REUSEADDR, so it may bind the reserved port,
 * and no other process can take it first), with its own config, log and pid file in a temp dir.
 * Resolves once it accepts TCP connections (so does `up()`).
 */
export async function startTinyproxy(opts: TinyproxyOptions = {}): Promise<Tinyproxy> {
  const dir = tempDir('tinyproxy');
  const reservation = await reservePort();
  const port = reservation.port;
  const logFile = join(dir, 'tinyproxy.log');
  const conf = join(dir, 'tinyproxy.conf');
  const lines = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Allow 127.0.0.1',
    'Timeout 60',
    `LogFile "${logFile}"`,
    // Connect: one line per client connection and request line, without Info's noise.
    'LogLevel Connect',
    `PidFile "${join(dir, 'tinyproxy.pid')}"`,
    'MaxClients 50',
    ...(opts.connectPorts ?? []).map((p) => `ConnectPort ${p}`),
    ...(opts.basicAuth ? [`BasicAuth ${opts.basicAuth.user} ${opts.basicAuth.password}`] : []),
  ];
  // As root, tinyproxy switches to User/Group after binding, then opens its log file: the
  // temp dir must be traversable and the log file theirs. As anyone else it stays who it is.
  if (process.getuid?.() === 0) {
    const { uid, gid } = nobody();
    lines.unshift(`User ${uid}`, `Group ${gid}`);
    chmodSync(dir, 0o755);
    writeFileSync(logFile, '');
    chownSync(logFile, uid, gid);
  }
  writeFileSync(conf, `${lines.join('\n')}\n`);

  const readLog = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const launch = async () => {
    const child: ChildProcess = spawn('tinyproxy', ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const running = { child, exited: undefined as string | undefined, exit: Promise.resolve() };
    running.exit = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        running.exited = `exit ${code ?? signal}`;
        resolve();
      });
      child.once('error', (err) => {
        running.exited = err.message;
        resolve();
      });
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (running.exited) throw new Error(`tinyproxy did not start (${running.exited}): ${output}${readLog()}`);
      if (await acceptsTcp(port)) return running;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`tinyproxy not accepting connections on 127.0.0.1:${port} after 10 s: ${output}${readLog()}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const kill = async (running: Awaited<ReturnType<typeof launch>>, signal: NodeJS.Signals) => {
    if (running.exited) return;
    running.child.kill(signal);
    // tinyproxy waits for its open tunnels on SIGTERM; don't let that hold a test up.
    const t = setTimeout(() => running.child.kill('SIGKILL'), 3000);
    await running.exit;
    clearTimeout(t);
  };

  let running: Awaited<ReturnType<typeof launch>> | undefined;
  try {
    running = await launch();
  } catch (err) {
    reservation.release();
    throw err;
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    logFile,
    connects: () => [...readLog().matchAll(/Request \(file descriptor \d+\): CONNECT (\S+) HTTP/g)].map((m) => m[1]!),
    async down() {
      if (running) await kill(running, 'SIGKILL');
      running = undefined;
    },
    async up() {
      running ??= await launch();
    },
    async stop() {
      if (running) await kill(running, 'SIGTERM');
      running = undefined;
      reservation.release();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
