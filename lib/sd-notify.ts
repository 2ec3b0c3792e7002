import { createRequire } from 'node:module';
import type { Logger } from './logger.js';

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  close(): void;
  on(event: 'error', cb: (err: Error) => void): void;
}
interface UnixDgram {
  createSocket(type: 'unix_dgram'): DgramSocket;
}

export interface NotifyEnv {
  /** NOTIFY_SOCKET as systemd passed it; undefined outside systemd. */
  socket?: string | undefined;
  /** WATCHDOG_USEC, microseconds. */
  watchdogUsec?: number | undefined;
}

export interface Notifier {
  ready(status: string): void;
  status(status: string): void;
  stopping(status?: string): void;
  /** Starts WATCHDOG=1 pings at half the period when systemd asked for them. */
  startWatchdog(isHealthy?: () => boolean): void;
  close(): void;
}

/**
 * sd_notify(3) over the unix datagram socket named by NOTIFY_SOCKET. Node has no unix
 * datagram sockets, hence the `unix-dgram` addon. Abstract-namespace sockets (`@name`)
 * cannot be addressed through that addon; systemd hands services a path socket.
 */
export function createNotifier(env: NotifyEnv, log: Logger): Notifier {
  const path = env.socket;
  let socket: DgramSocket | undefined;
  let watchdog: NodeJS.Timeout | undefined;

  if (path?.startsWith('@')) {
    log.warn(
      { notifySocket: path },
      'NOTIFY_SOCKET in the abstract namespace is not supported; readiness will not be reported',
    );
  } else if (path) {
    const require = createRequire(import.meta.url);
    const unix = require('unix-dgram') as UnixDgram;
    socket = unix.createSocket('unix_dgram');
    socket.on('error', (err) => log.warn({ err }, 'sd_notify send failed'));
  }

  const send = (msg: string): void => {
    if (!socket || !path) return;
    const buf = Buffer.from(msg);
    socket.send(buf, 0, buf.length, path, (err) => {
      if (err) log.warn({ err, msg }, 'sd_notify send failed');
    });
  };

  return {
    ready: (status) => send(`READY=1\nSTATUS=${status}\nMAINPID=${process.pid}`),
    status: (status) => send(`STATUS=${status}`),
    stopping: (status = 'stopping') => send(`STOPPING=1\nSTATUS=${status}`),
    startWatchdog(isHealthy = () => true) {
      if (!env.watchdogUsec || watchdog) return;
      const everyMs = Math.max(1, Math.floor(env.watchdogUsec / 2000));
      watchdog = setInterval(() => {
        // A wedged process stops pinging and systemd restarts it; a live but unhealthy one too.
        if (isHealthy()) send('WATCHDOG=1');
      }, everyMs);
      watchdog.unref();
    },
    close() {
      if (watchdog) clearInterval(watchdog);
      watchdog = undefined;
      socket?.close();
      socket = undefined;
    },
  };
}
