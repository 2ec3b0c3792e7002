import { createRequire } from 'node:module';
import { EventEmitter } from 'node:events';

interface UnixDgramSocket extends EventEmitter {
  bind(path: string): void;
  close(): void;
}

/**
 * The receiving end of sd_notify, as systemd would hold it: a unix datagram socket the
 * supervised process sends READY=1 / STOPPING=1 / WATCHDOG=1 to.
 */
export async function createNotifyListener(path: string) {
  const require = createRequire(import.meta.url);
  const unix = require('unix-dgram') as {
    createSocket(type: 'unix_dgram', onMessage: (buf: Buffer) => void): UnixDgramSocket;
  };
  const events = new EventEmitter();
  const messages: Record<string, string>[] = [];
  const socket = unix.createSocket('unix_dgram', (buf) => {
    const fields = Object.fromEntries(
      buf
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const i = l.indexOf('=');
          return [l.slice(0, i), l.slice(i + 1)];
        }),
    );
    messages.push(fields);
    events.emit('message', fields);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('listening', () => resolve());
    socket.once('error', reject);
    socket.bind(path);
  });

  return {
    path,
    messages,
    on(event: 'message', cb: (fields: Record<string, string>) => void) {
      events.on(event, cb);
    },
    off(event: 'message', cb: (fields: Record<string, string>) => void) {
      events.off(event, cb);
    },
    /** Resolves with the first message (past or future) that matches; rejects at the deadline. */
    waitFor(
      match: (fields: Record<string, string>) => boolean,
      timeoutMs: number,
      what = 'notify message',
    ): Promise<Record<string, string>> {
      const seen = messages.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('message', onMessage);
          reject(new Error(`no ${what} within ${timeoutMs} ms on ${path} (got ${JSON.stringify(messages)})`));
        }, timeoutMs);
        const onMessage = (fields: Record<string, string>) => {
          if (!match(fields)) return;
          clearTimeout(timer);
          events.off('message', onMessage);
          resolve(fields);
        };
        events.on('message', onMessage);
      });
    },
    close() {
      socket.close();
    },
  };
}
export type NotifyListener = Awaited<ReturnType<typeof createNotifyListener>>;
