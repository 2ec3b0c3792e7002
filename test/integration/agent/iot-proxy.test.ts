import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import type { MqttLink } from '../../../agent/iot/link.js';
import { eachMessage, testLink, testProviderCredentials } from '../../helpers/iot-link.js';
import { credentialsProvider, staticCredentials, type CredentialSource } from '../../../agent/iot/credentials.js';
import { writeSecretFile } from '../../../lib/files.js';
import { loadTlsMaterial } from '../../../lib/tls.js';
import { resolveProxy, type ProxySettings } from '../../../lib/proxy.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { eventually, jsonLines, startAgent, tempDir, testInstallation, testPki } from '../../helpers/fort.js';
import { httpsRequest } from '../../helpers/https.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import { startTinyproxy, type Tinyproxy } from '../../helpers/tinyproxy.js';

const FORT = 'fort-dev-1';
const log = pino({ level: 'silent' });
const PROXY_USER = 'fort';
const PROXY_PASSWORD = 'proxy-pass-0123456789';

describe('IoT link through an HTTP proxy (Debian tinyproxy, CONNECT)', () => {
  let pki: PkiPaths;
  let dev: TestDevCloud;
  let bridgeTarget: string;
  let providerTarget: string;
  const links: MqttLink[] = [];
  const proxies: Tinyproxy[] = [];
  beforeAll(async () => {
    pki = await testPki();
    dev = await testDevCloud(pki);
    bridgeTarget = dev.endpoint;
    providerTarget = new URL(dev.providerUrl).host;
  });
  afterEach(async () => {
    await Promise.all(links.splice(0).map((l) => l.stop()));
    await Promise.all(proxies.splice(0).map((p) => p.stop()));
  });
  afterAll(async () => {
    await dev?.stop();
  });

  const proxy = async (opts: Parameters<typeof startTinyproxy>[0] = {}) => {
    const p = await startTinyproxy(opts);
    proxies.push(p);
    return p;
  };

  /** Provider credentials and the bridge, both through `settings`. */
  const link = (
    settings: ProxySettings | undefined,
    onMessage: (topic: string, payload: Buffer) => void = () => {},
    staticCreds?: CredentialSource,
  ) => {
    const credentials = staticCreds ?? testProviderCredentials(dev, pki, settings);
    const l = testLink(dev, credentials, {
      onMessages: eachMessage(onMessage),
      ...(settings ? { proxy: settings } : {}),
    });
    links.push(l);
    return l;
  };
  const connected = (l: MqttLink) =>
    new Promise<void>((resolve) => (l.state === 'connected' ? resolve() : l.events.once('connected', resolve)));

  const receivesAnEvent = async (l: MqttLink, got: string[]) => {
    await connected(l);
    await dev.bridge.publish(`forts/${FORT}/events`, '{"via":"proxy"}');
    await eventually(() => (got.length ? got : undefined), 5000, 'the event');
    expect(got).toEqual([`forts/${FORT}/events {"via":"proxy"}`]);
  };

  const passwordFile = (password: string) => {
    const file = join(tempDir('proxy-pw'), 'proxy-password');
    writeSecretFile(file, `${password}\n`);
    return file;
  };

  it('tunnels both the credentials provider (device mTLS) and the bridge (WSS) through the proxy named by HTTPS_PROXY', async () => {
    const tp = await proxy();
    const got: string[] = [];
    const l = link(resolveProxy(undefined, { httpsProxy: tp.url }), (topic, payload) =>
      got.push(`${topic} ${payload.toString()}`),
    );
    l.start();
    await receivesAnEvent(l, got);
    expect(tp.connects()).toContain(providerTarget);
    expect(tp.connects()).toContain(bridgeTarget);
    await l.publish(`forts/${FORT}/status`, '{"ok":true}');
  });

  it('authenticates to the proxy with the user name and the 0600 password file', async () => {
    const tp = await proxy({
      basicAuth: { user: PROXY_USER, password: PROXY_PASSWORD },
      connectPorts: [new URL(dev.providerUrl).port, dev.endpoint.split(':')[1]!].map(Number),
    });
    const settings = resolveProxy(
      { url: tp.url, username: PROXY_USER, password_file: passwordFile(PROXY_PASSWORD) },
      {},
    );
    const got: string[] = [];
    const l = link(settings, (topic, payload) => got.push(`${topic} ${payload.toString()}`));
    l.start();
    await receivesAnEvent(l, got);
    expect(tp.connects()).toEqual(expect.arrayContaining([providerTarget, bridgeTarget]));
  });

  it('without credentials, says the proxy wants authentication (407) and keeps retrying', async () => {
    const tp = await proxy({ basicAuth: { user: PROXY_USER, password: PROXY_PASSWORD } });
    const l = link(resolveProxy({ url: tp.url }, {}));
    l.start();
    await eventually(() => (tp.connects().length >= 2 ? true : undefined), 10_000, 'two refused CONNECTs');
    expect(l.stats().lastError).toMatch(
      /^proxy authentication required \(407\): proxy 127\.0\.0\.1:\d+ refused CONNECT 127\.0\.0\.1:\d+/,
    );
    expect(l.state).not.toBe('stopped');
    await l.stop();

    // Static credentials: the first CONNECT is the bridge's WebSocket, and it says the same.
    const before = tp.connects().length;
    const s = link(resolveProxy({ url: tp.url }, {}), () => {}, staticCredentials(dev.staticFile));
    s.start();
    await eventually(
      () => (tp.connects().length >= before + 2 ? true : undefined),
      10_000,
      'two refused WebSocket CONNECTs',
    );
    expect(
      tp
        .connects()
        .slice(before)
        .every((t) => t === bridgeTarget),
    ).toBe(true);
    expect(s.stats().lastError).toBe(
      `proxy authentication required (407): proxy ${new URL(tp.url).host} refused CONNECT ${bridgeTarget} without valid credentials; check proxy.username and proxy.password_file`,
    );
    expect(s.stats().connects).toBe(0);
  });

  it('with a wrong password, keeps retrying with backoff, says why and never shows the password', async () => {
    const tp = await proxy({ basicAuth: { user: PROXY_USER, password: PROXY_PASSWORD } });
    const wrong = 'wrong-password-abcdef';
    const l = link(resolveProxy({ url: tp.url, username: PROXY_USER, password_file: passwordFile(wrong) }, {}));
    l.start();
    const windowStart = Date.now();
    await eventually(() => (tp.connects().length >= 4 ? true : undefined), 20_000, 'four refused CONNECTs');
    const elapsed = Date.now() - windowStart;
    const attempts = tp.connects().length;
    // tinyproxy answers wrong credentials with 401 (missing ones with 407): both read as proxy auth.
    expect(l.stats().lastError).toMatch(
      /^proxy authentication failed \(401\): proxy 127\.0\.0\.1:\d+ refused the credentials for CONNECT/,
    );
    expect(l.stats().lastError).not.toContain(wrong);
    // Every attempt is one CONNECT to the provider (the link never gets further), at most 1/s.
    expect(tp.connects().every((t) => t === providerTarget)).toBe(true);
    expect(attempts).toBeLessThanOrEqual(Math.floor(elapsed / 1000) + 1);
    expect(l.stats().connectAttempts).toBeLessThanOrEqual(Math.floor((Date.now() - windowStart) / 1000) + 1);
    expect(['connecting', 'waiting']).toContain(l.state);
    expect(l.stats().connects).toBe(0);
  });

  it('goes direct for hosts in no_proxy: no CONNECT reaches the proxy', async () => {
    const tp = await proxy();
    const got: string[] = [];
    const l = link(
      resolveProxy({ url: tp.url, no_proxy: ['127.0.0.1'] }, { httpsProxy: 'http://127.0.0.1:9' }),
      (topic, payload) => got.push(`${topic} ${payload.toString()}`),
    );
    l.start();
    await receivesAnEvent(l, got);
    expect(tp.connects()).toEqual([]);
  });

  it("verifies the target's certificate inside the tunnel", async () => {
    const tp = await proxy();
    const settings = resolveProxy({ url: tp.url }, {})!;
    // The provider's certificate does not chain to the trust-zone CA: refused, tunnel or not.
    const credentials = credentialsProvider({
      url: dev.providerUrl,
      roleAlias: 'fort-iot-role',
      thingName: FORT,
      tls: {
        ...loadTlsMaterial({
          ca: pki.cloudServer.ca,
          cert: pki.cloudDevice.deviceCert,
          key: pki.cloudDevice.deviceKey,
        }),
        ca: loadTlsMaterial({ ca: pki.trustZone.ca, cert: pki.trustZone.agentCert, key: pki.trustZone.agentKey }).ca!,
      },
      proxy: settings,
      refreshBeforeSeconds: 300,
      timeoutMs: 5000,
      log,
    });
    await expect(credentials.get()).rejects.toThrow(/certificate/);
    expect(tp.connects()).toEqual([providerTarget]);
  });
});

/** The real agent process: HTTPS_PROXY from its environment, the proxy credentials from [proxy]. */
describe('agent process through an authenticating proxy', () => {
  it('links to the bridge through the proxy named by HTTPS_PROXY, with [proxy] credentials', async () => {
    const pki = await testPki();
    const inst = await testInstallation(pki, { fortId: FORT, iot: true });
    const p = inst.layout.ports;
    const dev = await testDevCloud(pki, { ports: p });
    const tp = await startTinyproxy({ basicAuth: { user: PROXY_USER, password: PROXY_PASSWORD } });
    let agent: Supervised | undefined;
    try {
      // A path relative to agent.toml, like every other path in it.
      writeSecretFile(join(inst.dir, 'proxy-password'), `${PROXY_PASSWORD}\n`);
      appendFileSync(inst.files.agent, `\n[proxy]\nusername = "${PROXY_USER}"\npassword_file = "proxy-password"\n`);
      agent = await startAgent(inst.files.agent, { env: { HTTPS_PROXY: tp.url } });
      await agent.waitReady(20_000);
      const tls = {
        ca: readFileSync(pki.trustZone.ca),
        cert: readFileSync(pki.trustZone.fortctlCert),
        key: readFileSync(pki.trustZone.fortctlKey),
      };
      await eventually(
        async () => {
          const res = await httpsRequest(`https://127.0.0.1:${p.admin}/admin/v1/health`, tls);
          return (JSON.parse(res.body) as { modules: Record<string, { state: string }> }).modules['iot-link']?.state ===
            'ready'
            ? true
            : undefined;
        },
        20_000,
        'iot-link ready',
      );
      expect(tp.connects()).toEqual(expect.arrayContaining([`127.0.0.1:${p.credentials}`, `127.0.0.1:${p.iot}`]));
      const logged = jsonLines(agent.stdout).find((l) => l['msg'] === 'outbound links use an HTTP proxy');
      expect(logged).toMatchObject({ proxy: new URL(tp.url).host, username: PROXY_USER });
      expect(agent.stdout.join('\n')).not.toContain(PROXY_PASSWORD);
    } finally {
      await agent?.stop();
      await tp.stop();
      await dev.stop();
      inst.cleanup();
    }
  });
});
