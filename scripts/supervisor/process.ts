import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createNotifyListener, type NotifyListener } from './notify-listener.js';

export interface ProcessSpec {
  name: string;
  /** Built entry point, e.g. dist/agent/main.js */
  script: string;
  args: string[];
  /** Node/V8 flags before the script, e.g. from the unit's ExecStart (nodeArgsFromUnit). */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Like systemd's Restart=always with RestartPreventExitStatus=65 78. */
  restart?: boolean;
  restartDelayMs?: number;
  /**
   * Like a path unit that runs `systemctl restart` of this service: a file written in this
   * directory stops the process (SIGTERM) and starts it again at once, without restartDelayMs.
   */
  restartOnWriteIn?: string;
  watchdogUsec?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs a Type=notify service the way systemd does, for the dev stack, tests and benches:
 * a NOTIFY_SOCKET per process, readiness from READY=1, stdout lines forwarded, restart on exit.
 */
export async function startSupervised(spec: ProcessSpec) {
  const events = new EventEmitter();
  // sun_path is limited to 107 bytes: keep the socket directory short.
  const dir = mkdtempSync(join(tmpdir(), 'fortn-'));
  const notify: NotifyListener = await createNotifyListener(join(dir, 'notify.sock'));
  let child: ChildProcess | undefined;
  let stopping = false;
  let starts = 0;
  const stdout: string[] = [];
  const stderr: string[] = [];

  /** A restart asked for (restartOnWriteIn): the next start comes at once. */
  let restartNow = false;
  let restartTimer: NodeJS.Timeout | undefined;
  const launch = () => {
    restartTimer = undefined;
    restartNow = false;
    starts += 1;
    const env: NodeJS.ProcessEnv = { ...process.env, ...spec.env, NOTIFY_SOCKET: notify.path };
    if (spec.watchdogUsec) env['WATCHDOG_USEC'] = String(spec.watchdogUsec);
    const proc = spawn(process.execPath, [...(spec.nodeArgs ?? []), spec.script, ...spec.args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    createInterface({ input: proc.stdout }).on('line', (line) => {
      stdout.push(line);
      events.emit('stdout', line);
    });
    createInterface({ input: proc.stderr }).on('line', (line) => {
      stderr.push(line);
      events.emit('stderr', line);
    });
    proc.on('exit', (code, signal) => {
      const info: ExitInfo = { code, signal };
      events.emit('exit', info);
      const prevented = code === 65 || code === 78;
      if (!stopping && (restartNow || (spec.restart && !prevented))) {
        restartTimer = setTimeout(
          () => {
            if (!stopping) {
              launch();
              events.emit('restart', starts);
            }
          },
          restartNow ? 0 : (spec.restartDelayMs ?? 200),
        );
      }
    });
  };
  launch();
  const restartWatch = spec.restartOnWriteIn ? watchForRestart(spec.restartOnWriteIn) : undefined;
  function watchForRestart(dir: string): FSWatcher {
    mkdirSync(dir, { recursive: true });
    return watch(dir, () => {
      if (stopping) return;
      restartNow = true;
      const proc = child!;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      else if (restartTimer) {
        // Waiting out restartDelayMs after an exit: `systemctl restart` starts it now.
        clearTimeout(restartTimer);
        launch();
        events.emit('restart', starts);
      }
    });
  }

  const waitExit = (timeoutMs: number): Promise<ExitInfo> =>
    new Promise((resolve, reject) => {
      const proc = child!;
      if (proc.exitCode !== null || proc.signalCode !== null)
        return resolve({ code: proc.exitCode, signal: proc.signalCode });
      const timer = setTimeout(() => reject(new Error(`${spec.name} did not exit within ${timeoutMs} ms`)), timeoutMs);
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal });
      });
    });

  return {
    name: spec.name,
    events,
    notify,
    stdout,
    stderr,
    get pid() {
      return child?.pid;
    },
    get starts() {
      return starts;
    },
    /** READY=1 from the current process, or the exit that came first. */
    waitReady(timeoutMs: number): Promise<Record<string, string>> {
      const pid = child?.pid;
      return new Promise((resolve, reject) => {
        const onExit = (info: ExitInfo) =>
          reject(
            new Error(
              `${spec.name} exited (code ${info.code}, signal ${info.signal}) before READY=1:\n${stderr.slice(-20).join('\n')}`,
            ),
          );
        events.once('exit', onExit);
        notify
          .waitFor((m) => m['READY'] === '1' && m['MAINPID'] === String(pid), timeoutMs, `READY=1 from ${spec.name}`)
          .then(resolve, reject)
          .finally(() => events.off('exit', onExit));
      });
    },
    waitExit,
    /** SIGTERM (as `systemctl stop`), then SIGKILL after the deadline. */
    async stop(timeoutMs = 10_000): Promise<ExitInfo> {
      stopping = true;
      restartWatch?.close();
      clearTimeout(restartTimer);
      try {
        const proc = child!;
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
        try {
          return await waitExit(timeoutMs);
        } catch (err) {
          proc.kill('SIGKILL');
          await waitExit(5000);
          throw err;
        }
      } finally {
        notify.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    kill(signal: NodeJS.Signals) {
      child?.kill(signal);
    },
  };
}
export type Supervised = Awaited<ReturnType<typeof startSupervised>>;
