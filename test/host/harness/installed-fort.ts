import { randomUUID } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { inject } from 'vitest';
import { eventually, tempDir, testPki } from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import { httpsRequest, type HttpsResult } from '../../helpers/https.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { bootSystemdHost, type RunResult, type SystemdHost } from './systemd-host.js';
import type { HostRelease } from './releases.js';
import type { PolicyInput } from '../../../dev-cloud/cloud-api/policy.js';

export const UNITS = ['fort-engine.service', 'fort-agent.service', 'fort-deployment-manager.service'] as const;
/** The id the host's fort is paired as; the dev cloud's policy lets alice read its app `orders`. */
export const HOST_FORT_ID = 'host-fort-1';
const POLICY: PolicyInput = {
  decision_ttl_seconds: 60,
  tenants: {
    t1: {
      forts: [HOST_FORT_ID],
      users: { alice: { groups: ['analysts'] } },
      spaces: { sales: { analysts: ['app.list', 'app.read'] } },
      apps: { orders: { space: 'sales' } },
    },
  },
};
/** install.sh's defaults. */
export const API_PORT = 8443;
export const ADMIN_PORT = 8444;

export interface UnitState {
  ActiveState: string;
  SubState: string;
  NRestarts: number;
  MainPID: number;
  StatusText: string;
  Result: string;
}

/**
 * A booted host, the dev cloud on the machine's loopback (the host shares its network), and
 * helpers to install a release with the tarball's own install.sh and drive the fort as an
 * operator would (systemctl, journalctl, fortctl inside the host).
 */
export async function startHostFixture() {
  const run = inject('hostRun');
  const pki: PkiPaths = await testPki(tempDir('host-pki'));
  const dev: TestDevCloud = await testDevCloud(pki, { policy: POLICY });
  let host: SystemdHost;
  try {
    host = await bootSystemdHost(run.baseRoot, { workDir: run.dir, log: (l) => process.stderr.write(`${l}\n`) });
  } catch (err) {
    await dev.stop();
    throw err;
  }

  /** Files the operator brings: the release, the cloud's CA for pairing, the artifact key. */
  const bring = (file: string, as = basename(file)) => {
    copyFileSync(file, host.path(`/root/${as}`));
    return `/root/${as}`;
  };
  const fortctl = (...args: string[]) => host.run(['fortctl', ...args], { timeoutMs: 90_000 });

  const fixture = {
    host,
    dev,
    pki,
    run,
    fortctl,
    /** `tar -xzf` the release and run its own scripts/install.sh with the installer's defaults. */
    async install(release: HostRelease, extra: string[] = []): Promise<RunResult> {
      const tarball = bring(release.tarball);
      const pairingCa = bring(pki.cloudServer.ca, 'cloud-ca.pem');
      const key = bring(run.signing.public, 'artifact-signing.pub.pem');
      const dir = `/root/fort-${release.version}`;
      await host.must(['mkdir', '-p', dir]);
      await host.must(['tar', '-xzf', tarball, '-C', dir]);
      return host.run(
        [
          'bash',
          `${dir}/scripts/install.sh`,
          '--release',
          tarball,
          '--pairing-ca',
          pairingCa,
          '--artifact-key',
          key,
          ...extra,
        ],
        { timeoutMs: 180_000 },
      );
    },
    async unit(name: string): Promise<UnitState> {
      const out = await host.must([
        'systemctl',
        'show',
        name,
        '-p',
        'ActiveState,SubState,NRestarts,MainPID,StatusText,Result',
      ]);
      const props = Object.fromEntries(
        out
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      return {
        ActiveState: props['ActiveState'] ?? '',
        SubState: props['SubState'] ?? '',
        NRestarts: Number(props['NRestarts']),
        MainPID: Number(props['MainPID']),
        StatusText: props['StatusText'] ?? '',
        Result: props['Result'] ?? '',
      };
    },
    /** Until the unit is active (for Type=notify: READY=1 was sent), with its journal in the error. */
    async waitActive(name: string, timeoutMs = 60_000): Promise<UnitState> {
      try {
        return await eventually(
          async () => {
            const s = await fixture.unit(name);
            return s.ActiveState === 'active' && s.SubState === 'running' ? s : undefined;
          },
          timeoutMs,
          `${name} active`,
        );
      } catch (err) {
        throw new Error(
          `${(err as Error).message}\n${JSON.stringify(await fixture.unit(name))}\n--- journal of ${name} ---\n${(await host.journal(name, ['-n', '60'])).slice(-6000)}`,
          { cause: err },
        );
      }
    },
    /** A file of the installed fort, read from outside. */
    read: (p: string) => readFileSync(host.path(p)),
    /** GET on the client API (client-zone CA of the installation). */
    clientApi(path: string, headers: Record<string, string> = {}): Promise<HttpsResult> {
      return httpsRequest(
        `https://127.0.0.1:${API_PORT}${path}`,
        { ca: fixture.read('/etc/fort/pki/client-zone/ca.pem') },
        'GET',
        headers,
      );
    },
    /** A request on the admin API as fortctl (trust-zone mTLS). */
    adminApi(path: string, method = 'GET'): Promise<HttpsResult> {
      return httpsRequest(
        `https://127.0.0.1:${ADMIN_PORT}${path}`,
        {
          ca: fixture.read('/etc/fort/pki/trust-zone/ca.pem'),
          cert: fixture.read('/etc/fort/pki/trust-zone/fortctl.pem'),
          key: fixture.read('/etc/fort/pki/trust-zone/fortctl.key'),
        },
        method,
      );
    },
    /** Sets keys of one TOML section of an installed config (what an operator edits by hand). */
    async setConfig(file: string, section: string, values: Record<string, string | number>): Promise<void> {
      const path = host.path(file);
      const text = readFileSync(path, 'utf8');
      const lines = text.split('\n');
      const at = lines.findIndex((l) => l.trim() === `[${section}]`);
      if (at < 0) throw new Error(`no [${section}] in ${file}`);
      let end = lines.findIndex((l, i) => i > at && l.startsWith('['));
      if (end < 0) end = lines.length;
      const body = lines
        .slice(at + 1, end)
        .filter((l) => !Object.keys(values).some((k) => l.startsWith(`${k} `) || l.startsWith(`${k}=`)));
      const added = Object.entries(values).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
      // Rewritten in place: owner and mode stay what install.sh set.
      writeFileSync(path, [...lines.slice(0, at + 1), ...added, ...body, ...lines.slice(end)].join('\n'));
    },
    /**
     * Pairs the installed fort as an operator does (`sudo fortctl pair` with a one-time code from
     * the cloud) and waits until it is back paired with its IoT link up.
     */
    async pair(): Promise<string> {
      const code = dev.pairing.codes.issue('t1', 600, HOST_FORT_ID).code;
      // Subscribed, not only connected: a ping published between CONNECT and SUBSCRIBE of a first
      // session has no subscriber yet and is dropped by the broker (a test racing the fort, not a bug).
      const subscribed = new Set<string>();
      const onSubscribe = (_subs: unknown, client: { id: string } | null) => void (client && subscribed.add(client.id));
      dev.bridge.broker.on('subscribe', onSubscribe);
      try {
        const paired = await fortctl('pair', '--cloud', dev.apiUrl, '--code', code, '--wait', '60');
        if (paired.code !== 0) throw new Error(`fortctl pair exited ${paired.code}: ${paired.stdout}${paired.stderr}`);
        const fortId = /^paired as (\S+) /m.exec(paired.stdout)?.[1];
        if (!fortId) throw new Error(`fortctl pair said: ${paired.stdout}`);
        await eventually(
          () => (subscribed.has(fortId) ? true : undefined),
          60_000,
          `${fortId} subscribed on the IoT bridge`,
        );
        return fortId;
      } finally {
        dev.bridge.broker.off('subscribe', onSubscribe);
      }
    },
    /** A ping event through the bridge, and the fort's pong on its status topic. */
    async pingRoundTrip(fortId: string): Promise<{ pongId: string }> {
      const id = randomUUID();
      await dev.bridge.publish(
        `forts/${fortId}/events`,
        JSON.stringify({ v: 1, id, type: 'ping', fortId, ts: new Date().toISOString(), data: {} }),
      );
      return eventually(
        () => {
          for (const m of dev.bridge.messages) {
            if (m.topic !== `forts/${fortId}/status`) continue;
            const pong = JSON.parse(m.payload.toString()) as { id: string; type: string; data: { pingId?: string } };
            if (pong.type === 'pong' && pong.data.pingId === id) return { pongId: pong.id };
          }
          return undefined;
        },
        30_000,
        `the pong of ping ${id}`,
      );
    },
    /** Paths under `paths` the user may write (find -writable as that user, inside the host). */
    async writableAs(
      user: string,
      paths: string[],
      o: { prune?: string[]; maxDepth?: number } = {},
    ): Promise<string[]> {
      const pruned = (o.prune ?? []).flatMap((p) => ['-path', p, '-prune', '-o']);
      const depth = o.maxDepth === undefined ? [] : ['-maxdepth', String(o.maxDepth)];
      const r = await host.run([
        'setpriv',
        `--reuid=${user}`,
        `--regid=${user}`,
        '--init-groups',
        '--',
        'find',
        ...paths,
        ...depth,
        ...pruned,
        '-writable',
        '-print',
      ]);
      if (r.code !== 0 && r.stdout === '') throw new Error(`find as ${user} exited ${r.code}: ${r.stderr}`);
      return r.stdout.split('\n').filter(Boolean);
    },
    async stop() {
      await host.stop();
      await dev.stop();
    },
  };
  return fixture;
}
export type HostFixture = Awaited<ReturnType<typeof startHostFixture>>;
