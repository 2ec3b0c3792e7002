import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * Loopback ports for the processes the dev stack, the tests and the benchmarks start, with no
 * moment at which another process can take them.
 *
 * What this replaces (issue 18): a helper listened on port 0, read the port, closed it, and
 * the process bound it a second or so later. In that window another test's bind(0) could get the
 * same port, and a start failed with `listen EADDRINUSE`.
 *
 * A reservation is a socket that the kernel bound to a port of its choosing (bind(0)) and that
 * never listens: an open TCP connection from that port to a holder in this process. While it is
 * open, Linux hands the port to nobody else: bind(0) skips a port that has a bound socket, and
 * connect() skips a port that was bound with bind(). A server that binds the port by number with
 * SO_REUSEADDR may still listen on it: on Linux only a *listening* socket excludes others from an
 * SO_REUSEADDR port. Node (libuv) sets SO_REUSEADDR on every TCP server, and so does tinyproxy.
 * So the port is bound from the moment the kernel picks it until the reservation is released:
 * through the process's start, and through every restart (the supervisor's, a test's kill and
 * start, an update that restarts the agent, a restart of the in-process dev cloud). While nothing
 * listens, a connection to it is refused, exactly as to a stopped service; a second listener on
 * it still gets EADDRINUSE.
 *
 * Why not port 0 in the daemons' config, and the bound port reported back (a ports file, or
 * STATUS= with READY=1): that closes the first window only. A restarted process would bind a new
 * port while the other side's config names the old one (the deployment manager's `admin_url`, the
 * agent's cloud URLs, a paired fort's identity), so restarts would still rebind a port by number
 * after it had been free; and the product would carry a mode only tests use. With reservations
 * configs are written before anything starts, from ports that are already bound, and nothing in
 * the product changes.
 *
 * Linux only (BSD and macOS give SO_REUSEADDR other rules); the tests and the dev stack run on
 * Debian.
 */

const HOST = '127.0.0.1';

export interface PortReservation {
  readonly port: number;
  /**
   * Frees the port (idempotent); a server listening on it keeps it until it closes. The
   * reservation closes its connection first, so its end stays in TIME_WAIT for a minute: bind(0)
   * and connect() still skip the port while a server that names it may bind it. A process that
   * runs again on the same ports (the dev stack, whose config and paired identity name them)
   * finds them free when it starts again within that minute.
   */
  release: () => void;
}

/** Listeners reservations connect to (never keeping the process alive); usually just one. */
const holders: Promise<Server>[] = [];

function holderServer(i: number): Promise<Server> {
  holders[i] ??= new Promise<Server>((resolve, reject) => {
    const server = createServer((peer) => {
      peer.on('error', () => peer.destroy());
      peer.unref();
    });
    server.once('error', reject);
    server.listen(0, HOST, () => {
      server.unref();
      resolve(server);
    });
  });
  return holders[i];
}

async function connectFrom(holder: Server, port: number | undefined): Promise<Socket> {
  const socket = connect({
    host: HOST,
    port: (holder.address() as AddressInfo).port,
    localAddress: HOST,
    ...(port ? { localPort: port } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve();
    });
    socket.once('error', reject);
  });
  return socket;
}

/**
 * Holds a loopback port: one the kernel picks, or `port` (a port a config already names; fails
 * with EADDRINUSE while something listens on it).
 */
export async function reservePort(port?: number): Promise<PortReservation> {
  for (let i = 0; ; i += 1) {
    let socket: Socket;
    try {
      socket = await connectFrom(await holderServer(i), port);
    } catch (err) {
      // A port this process released a moment ago: its old connection to this holder is still
      // closing (the same four-tuple); another holder gives another one.
      if (port && (err as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL' && i < 3) continue;
      throw err;
    }
    socket.on('error', () => socket.destroy());
    socket.unref();
    return { port: socket.localPort!, release: () => void socket.destroy() };
  }
}

/** One reservation per name; `release()` frees them all. */
export async function reservePorts<K extends string>(
  names: readonly K[],
): Promise<{ ports: Record<K, number>; release: () => void }> {
  const held: PortReservation[] = [];
  try {
    for (const _ of names) held.push(await reservePort());
  } catch (err) {
    for (const r of held) r.release();
    throw err;
  }
  const ports = Object.fromEntries(names.map((n, i) => [n, held[i]!.port])) as Record<K, number>;
  return { ports, release: () => held.forEach((r) => r.release()) };
}
