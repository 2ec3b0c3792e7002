import type { SecureContextOptions } from 'node:tls';
import type { Logger } from './logger.js';
import { loadTlsMaterial, TLS_MIN_VERSION, type TlsFilePaths } from './tls.js';
import type { ServedCertificate } from './admin-client.js';

/** A TLS server whose certificate can be swapped while it runs (node's https/tls Server). */
export interface ReloadableServer {
  /** What it serves, for logs and the answer, e.g. "admin API (trust zone)". */
  role: string;
  paths: TlsFilePaths;
  server: { setSecureContext(options: SecureContextOptions): void };
}

/** The TLS server under a Fastify instance started with `https` (typed as http.Server there). */
export function tlsServerOf(app: { server: object }): ReloadableServer['server'] {
  const server = app.server as Partial<ReloadableServer['server']>;
  if (typeof server.setSecureContext !== 'function')
    throw new Error('not a TLS server: its certificate cannot be reloaded');
  return server as ReloadableServer['server'];
}

/**
 * Certificate rotation without a restart (SIGHUP, `fortctl reload-certs`): every server's
 * cert, key and CA are read and checked first (key mode, PEM, expiry, key matches cert); only
 * when all of them pass are the contexts swapped. New handshakes get the new certificate;
 * open connections, and the outbound links (MQTT), are not touched. A bad file throws naming
 * it, and every server keeps what it served.
 */
export function createCertReloader(servers: readonly ReloadableServer[], log: Logger) {
  return {
    reload(requestedBy: string): ServedCertificate[] {
      const loaded = servers.map((s) => ({ s, m: loadTlsMaterial(s.paths) }));
      for (const { s, m } of loaded) {
        s.server.setSecureContext({
          key: m.key,
          cert: m.cert,
          ...(m.ca ? { ca: m.ca } : {}),
          minVersion: TLS_MIN_VERSION,
        });
      }
      const served = loaded.map(({ s, m }) => ({
        role: s.role,
        file: s.paths.cert,
        subject: m.leaf.subject.replace(/\n/g, ', '),
        serialNumber: m.leaf.serialNumber,
        notAfter: new Date(m.leaf.validTo).toISOString(),
        fingerprint256: m.leaf.fingerprint256,
      }));
      log.info(
        { requestedBy, served: served.map(({ role, serialNumber, notAfter }) => ({ role, serialNumber, notAfter })) },
        'TLS certificates reloaded',
      );
      return served;
    },
  };
}

export type CertReloader = ReturnType<typeof createCertReloader>;

/**
 * SIGHUP (`systemctl reload`, `fortctl certs renew`) runs the reload set here; the handler is
 * installed at once, as the signal's default action would kill the process. Before a reload is
 * set (still starting) it is nothing to do: the process reads the files on disk as it starts. A
 * failed reload is logged and the material already in use stays.
 */
export function reloadOnSighup(log: Logger) {
  let reload: (() => void) | undefined;
  process.on('SIGHUP', () => {
    try {
      reload?.();
    } catch (err) {
      log.error({ reason: (err as Error).message }, 'certificates not reloaded; still using the previous ones');
    }
  });
  return {
    set(r: () => void): void {
      reload = r;
    },
  };
}
