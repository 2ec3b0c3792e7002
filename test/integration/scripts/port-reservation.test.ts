import { describe, expect, it } from 'vitest';
import { connect, createServer, type Server } from 'node:net';
import { reservePort, reservePorts } from '../../../scripts/port-reservation.js';

const listen = (port: number, host = '127.0.0.1') =>
  new Promise<Server>((resolve, reject) => {
    const server = createServer((s) => s.end('hello'));
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
const close = (server: Server) => new Promise((r) => server.close(r));
/** What a client gets from the port: the server's greeting or the error code. */
const dial = (port: number) =>
  new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('data', (d) => resolve(String(d)));
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });

/** The ports the tests' processes bind: held by a socket that never listens (scripts/port-reservation.ts). */
describe('port reservations', () => {
  it('let a server listen on the port, and again after it stopped; refuse connections and a second listener as a real port does', async () => {
    const r = await reservePort();
    try {
      expect(await dial(r.port)).toBe('ECONNREFUSED');
      const first = await listen(r.port);
      expect(await dial(r.port)).toBe('hello');
      await expect(listen(r.port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
      // Reserving a port something listens on fails: the dev stack says so for a port taken.
      await expect(reservePort(r.port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
      await close(first);
      expect(await dial(r.port)).toBe('ECONNREFUSED');
      // A restart, and on every address (the client API may listen on 0.0.0.0).
      await close(await listen(r.port, '0.0.0.0'));
      const again = await listen(r.port);
      expect(await dial(r.port)).toBe('hello');
      await close(again);
    } finally {
      r.release();
    }
  });

  it('give distinct ports; released, a port can be reserved again by number (the dev stack starting again)', async () => {
    const { ports, release } = await reservePorts(['a', 'b', 'c'] as const);
    expect(new Set(Object.values(ports)).size).toBe(3);
    release();
    release(); // idempotent
    const back = await reservePort(ports.a);
    try {
      expect(back.port).toBe(ports.a);
      const server = await listen(ports.a);
      expect(await dial(ports.a)).toBe('hello');
      await close(server);
    } finally {
      back.release();
    }
  });
});
