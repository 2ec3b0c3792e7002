import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** Debian's `mender-client` 3.4 (scripts/system-packages.txt): the reference the DM is compared with. */
export const MENDER_CLIENT = '/usr/bin/mender';
/** Where 3.4 looks for update modules; fixed at build time (`ModulesPath` is not a config file key in 3.4). */
export const MENDER_MODULES_DIR = '/usr/share/mender/modules/v3';
/** Read by 3.4 from these fixed paths: the client has no option to move them. */
const IDENTITY_DIR = '/usr/share/mender/identity';
const CONF_DIR = '/etc/mender';

export interface MenderClientOptions {
  /** A private directory: config, data store (`-d`), identity script, artifact_info, logs. */
  dir: string;
  serverUrl: string;
  /** CA the update server's certificate chains to (`ServerCertificate`: verified, never skipped). */
  serverCa: string;
  /** Client certificate and key for the server's mutual TLS (`HttpsClient`); 3.4 signs its auth requests with the key too. */
  cert: string;
  key: string;
  /** Public key artifacts must be signed with (`ArtifactVerifyKey`). */
  artifactVerifyKey: string;
  deviceType: string;
  /** Identity attributes the identity script prints (`key=value` lines). */
  identity: Record<string, string>;
  /** The artifact installed before the first update (`/etc/mender/artifact_info`). */
  artifactName: string;
  pollSeconds: number;
  inventorySeconds: number;
  retrySeconds: number;
  logLevel?: 'debug' | 'info' | 'warn';
}

export interface MenderClientProcess {
  pid: number;
  /** Its log lines (logrus text on stderr), oldest first. */
  lines: string[];
  /** Settles when the process has exited (by itself: a failed bind mount, a bad config). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves once it has exited. */
  stop(timeoutMs?: number): Promise<void>;
}

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Runs `mender daemon` (3.4) against an update server with everything private to `o.dir`: its
 * own config file (`--config`, no fallback), data store (`--data`: auth state, the module work
 * tree, the database), and device type file. Two paths 3.4 reads cannot be configured, the
 * identity script (`/usr/share/mender/identity/mender-device-identity`) and
 * `/etc/mender/artifact_info`: the client runs in a private mount namespace (`unshare --mount`,
 * root) where private directories are bind-mounted over those two, so the host's own files are
 * never written or seen. Update modules come from Debian's `/usr/share/mender/modules/v3`.
 */
export async function startMenderClient(o: MenderClientOptions): Promise<MenderClientProcess> {
  for (const need of [MENDER_CLIENT, join(MENDER_MODULES_DIR, 'single-file'), IDENTITY_DIR, CONF_DIR])
    if (!existsSync(need))
      throw new Error(`${need} is missing: install Debian's mender-client (scripts/system-packages.txt)`);
  if (process.getuid?.() !== 0)
    throw new Error('the Mender client runs in a private mount namespace (unshare --mount): run as root');
  const conf = join(o.dir, 'etc');
  const identity = join(o.dir, 'identity');
  const data = join(o.dir, 'data');
  for (const d of [conf, identity, data]) mkdirSync(d, { recursive: true });
  const script = join(identity, 'mender-device-identity');
  writeFileSync(
    script,
    `#!/bin/sh\n${Object.entries(o.identity)
      .map(([k, v]) => `printf '%s\\n' ${shellQuote(`${k}=${v}`)}`)
      .join('\n')}\n`,
  );
  chmodSync(script, 0o755);
  writeFileSync(join(conf, 'artifact_info'), `artifact_name=${o.artifactName}\n`);
  const deviceTypeFile = join(data, 'device_type');
  writeFileSync(deviceTypeFile, `device_type=${o.deviceType}\n`);
  const configFile = join(o.dir, 'mender.conf');
  writeFileSync(
    configFile,
    `${JSON.stringify(
      {
        ServerURL: o.serverUrl,
        ServerCertificate: o.serverCa,
        HttpsClient: { Certificate: o.cert, Key: o.key },
        ArtifactVerifyKey: o.artifactVerifyKey,
        DeviceTypeFile: deviceTypeFile,
        UpdatePollIntervalSeconds: o.pollSeconds,
        InventoryPollIntervalSeconds: o.inventorySeconds,
        RetryPollIntervalSeconds: o.retrySeconds,
        // No system bus here; the daemon polls the server itself.
        DBus: { Enabled: false },
      },
      null,
      2,
    )}\n`,
  );
  const mounts = 'mount --bind "$1" /etc/mender && mount --bind "$2" /usr/share/mender/identity';
  const child: ChildProcess = spawn(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      `${mounts} && shift 2 && exec "$@"`,
      'sh',
      conf,
      identity,
      MENDER_CLIENT,
      '--config',
      configFile,
      '--fallback-config',
      join(o.dir, 'no-fallback.conf'),
      '--data',
      data,
      '--log-level',
      o.logLevel ?? 'info',
      '--no-syslog',
      'daemon',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: string[] = [];
  for (const s of [child.stdout!, child.stderr!]) createInterface({ input: s }).on('line', (l) => lines.push(l));
  // Not left polling a server that is gone when the test or bench process exits (Ctrl-C included).
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      process.off('exit', killOnExit);
      resolve({ code, signal });
    }),
  );
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return {
    pid: child.pid!,
    lines,
    exited,
    async stop(timeoutMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
