#!/usr/bin/env node
import { createRequire } from 'node:module';

/**
 * Bench baseline: an idle Node process (a timer, nothing else) that reports READY=1.
 * Talks to NOTIFY_SOCKET through `unix-dgram` directly: loading pino for createNotifier
 * would make the "bare Node" baseline heavier than it is.
 */
interface Sock {
  send(buf: Buffer, off: number, len: number, path: string, cb?: (err?: Error) => void): void;
  close(): void;
}
const socketPath = process.env['NOTIFY_SOCKET'];
const timer = setInterval(() => {}, 1000);
if (socketPath) {
  const unix = createRequire(import.meta.url)('unix-dgram') as { createSocket(t: 'unix_dgram'): Sock };
  const sock = unix.createSocket('unix_dgram');
  const msg = Buffer.from(`READY=1\nMAINPID=${process.pid}`);
  sock.send(msg, 0, msg.length, socketPath, () => sock.close());
}
process.on('SIGTERM', () => {
  clearInterval(timer);
  process.exit(0);
});
