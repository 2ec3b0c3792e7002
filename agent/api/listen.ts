import type { AddressInfo, Server } from 'node:net';

/** What this needs of a Fastify app (any server and logger type). */
interface Listenable {
  ready(): PromiseLike<unknown>;
  server: Server;
  log: { info(obj: object, msg: string): void };
}

/**
 * Binds a Fastify app's server ourselves instead of `app.listen()`. On 0.0.0.0, Fastify's
 * listen logs every interface address through `os.networkInterfaces()`, which needs
 * AF_NETLINK: the units' sandbox forbids it, and the agent would die right after binding.
 * We log the bound address once instead. (`localhost` binds the address it resolves to
 * first, not both 127.0.0.1 and ::1 as Fastify's listen would.)
 */
export async function listenWithoutInterfaces(
  app: Listenable,
  host: string,
  port: number,
  what: string,
): Promise<AddressInfo> {
  await app.ready();
  const server = app.server;
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error) => {
      server.off('listening', listening);
      reject(err);
    };
    const listening = () => {
      server.off('error', failed);
      resolve();
    };
    server.once('error', failed);
    server.once('listening', listening);
    server.listen({ host, port });
  });
  const bound = server.address() as AddressInfo;
  const shown = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  app.log.info({ address: bound.address, port: bound.port }, `${what} listening on https://${shown}:${bound.port}`);
  return bound;
}
