import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { parse, stringify } from 'smol-toml';
import { openStore } from '../../../agent/store/database.js';
import { seedApp } from '../../helpers/apps.js';
import { writeSecretFile } from '../../../lib/files.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import type { PolicyInput } from '../../../dev-cloud/cloud-api/policy.js';
import type { CloudApiStats } from '../../../dev-cloud/cloud-api/index.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';
import {
  eventually,
  jsonLines,
  startAgent,
  testInstallation,
  testPki,
  type TestInstallation,
} from '../../helpers/fort.js';
import { testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import { httpsCall } from '../../helpers/https.js';
import { startTinyproxy, type Tinyproxy } from '../../helpers/tinyproxy.js';

/*
 * The agent's cloud API client (JWKS fetch, RFC 7523 token request, /api/v1/authorize) runs
 * through Debian's tinyproxy when a proxy is configured. Every user request below is real
 * HTTPS to the agent's client API; the cloud is the in-process dev cloud on loopback. The
 * agent has no [iot] section, so every CONNECT tinyproxy logs comes from the cloud client.
 */

const FORT = 'fort-dev-1';
const PROXY_USER = 'fort';
const PROXY_PASSWORD = 'cloud-proxy-pass-0123456789';
const POLICY: PolicyInput = {
  decision_ttl_seconds: 60,
  tenants: {
    t1: {
      forts: [FORT],
      users: { alice: { groups: ['analysts'] }, carol: { groups: ['admins'] } },
      spaces: { sales: { analysts: ['app.list', 'app.read'], admins: ['app.list', 'app.read', 'app.reload'] } },
      apps: { 'sales-2026': { space: 'sales' }, 'empty-2026': { space: 'sales' } },
    },
  },
};
const ORDERS = [
  [1, 'acme', 120],
  [2, 'globex', 75],
  [3, 'initech', 300],
];
const ROWS_PATH = '/api/v1/apps/sales-2026/tables/orders/rows';

type Table = Record<string, unknown>;
const section = (t: Table, name: string): Table => t[name] as Table;

interface Res {
  status: number;
  body: Record<string, unknown>;
}

/**
 * A plain TCP hop in front of a tinyproxy. The agent's proxy URL names the hop; the test can
 * re-point it at another tinyproxy (the proxy "changed its mind") or close it (proxy down)
 * while the agent keeps running with its caches warm. tinyproxy still does all the proxying.
 */
async function tcpHop(targetPort: number) {
  let target = targetPort;
  const open = new Set<Socket>();
  const server = createTcpServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    open.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', drop);
      s.on('close', drop);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const dropAll = () => open.forEach((s) => s.destroy());
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    /** New connections go to `port`; open tunnels are cut, as a proxy restart would. */
    pointAt(port: number) {
      target = port;
      dropAll();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        dropAll();
      }),
  };
}

/** A stranger on loopback that would allow everything: its certificate is from another CA. */
async function rogueCloud(pki: PkiPaths) {
  const seen: string[] = [];
  let handshakes = 0;
  const server = createHttpsServer(
    { cert: readFileSync(pki.trustZone.agentCert), key: readFileSync(pki.trustZone.agentKey) },
    (req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.setHeader('content-type', 'application/json');
      if (req.url === '/oauth/token')
        res.end(JSON.stringify({ access_token: 'rogue-token', token_type: 'Bearer', expires_in: 300 }));
      else res.end(JSON.stringify({ allow: true, ttl: 60 }));
    },
  );
  // Fires when the agent aborts the TLS handshake (it does not trust the certificate).
  server.on('tlsClientError', () => void handshakes++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests: () => [...seen],
    refusedHandshakes: () => handshakes,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('agent cloud API client through an HTTP proxy (Debian tinyproxy, CONNECT)', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud;
  let clientApi: string;
  let clientCa: Buffer;
  let cloudHost: string;
  let baseToml: Table;
  const agents: Supervised[] = [];
  const proxies: Tinyproxy[] = [];
  const closers: (() => Promise<void>)[] = [];
  /** Every user token handed to the agent: none may show up in its log. */
  const userTokens: string[] = [];

  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { fortId: FORT, cloudAuth: true });
    const store = openStore({ path: join(inst.layout.dataDir, 'agent', 'agent.db'), log: pino({ level: 'silent' }) });
    const appsDir = join(inst.layout.dataDir, 'agent', 'apps');
    seedApp(store.db, appsDir, {
      id: 'sales-2026',
      name: 'Sales 2026',
      space: 'sales',
      tables: { orders: { columns: ['id', 'customer', 'amount'], rows: ORDERS } },
    });
    seedApp(store.db, appsDir, { id: 'empty-2026', name: 'Empty 2026', space: 'sales' });
    store.close();
    dev = await testDevCloud(pki, { ports: inst.layout.ports, policy: POLICY });
    clientApi = `https://127.0.0.1:${inst.layout.ports.clientApi}`;
    clientCa = readFileSync(pki.clientZone.ca);
    cloudHost = new URL(dev.apiUrl).host;
    baseToml = parse(readFileSync(inst.files.agent, 'utf8'));
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.stop()));
    await Promise.all(proxies.splice(0).map((p) => p.stop()));
    await Promise.all(closers.splice(0).map((c) => c()));
  });
  afterAll(async () => {
    await dev?.stop();
    inst?.cleanup();
  });

  const proxy = async (opts: Parameters<typeof startTinyproxy>[0] = {}) => {
    const p = await startTinyproxy(opts);
    proxies.push(p);
    return p;
  };

  /** The installation's agent.toml with `edit` applied, as its own file next to it (same relative paths, same store). */
  const agent = async (name: string, opts: { edit?: (cfg: Table) => void; env?: Record<string, string> } = {}) => {
    const cfg = structuredClone(baseToml);
    opts.edit?.(cfg);
    const file = join(inst.dir, `agent-${name}.toml`);
    writeFileSync(file, stringify(cfg));
    const a = await startAgent(file, opts.env ? { env: opts.env } : {});
    agents.push(a);
    await a.waitReady(20_000);
    return a;
  };

  const login = async (user: string) => {
    const token = await dev.login(user, 't1');
    userTokens.push(token);
    return token;
  };

  const api = async (path: string, token: string): Promise<Res> => {
    const res = await httpsCall(clientApi, clientCa, 'GET', path, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: res.body ? (res.json() as Record<string, unknown>) : {} };
  };

  const readsOrders = async (token: string) => {
    const res = await api(ROWS_PATH, token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ columns: ['id', 'customer', 'amount'], rows: ORDERS, total: 3 });
  };

  const delta = (before: CloudApiStats) => {
    const now = dev.cloudApi.stats();
    return {
      tokensIssued: now.tokensIssued - before.tokensIssued,
      tokensRefused: now.tokensRefused - before.tokensRefused,
      authorize: now.authorize - before.authorize,
      decisions: now.decisions - before.decisions,
    };
  };

  const logged = (a: Supervised, msg: string) => jsonLines(a.stdout).filter((l) => l['msg'] === msg);

  /** What a log must never hold: the proxy password (plain or in a Basic header), bearer headers, any JWT. */
  const expectNoSecrets = (a: Supervised) => {
    const text = [...a.stdout, ...a.stderr].join('\n');
    expect(text).not.toContain(PROXY_PASSWORD);
    expect(text).not.toContain(Buffer.from(`${PROXY_USER}:${PROXY_PASSWORD}`).toString('base64'));
    expect(text).not.toMatch(/bearer [A-Za-z0-9_-]{8,}/i);
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+/);
    for (const t of userTokens) expect(text).not.toContain(t.split('.')[2]!);
    expect(text).not.toMatch(/access_token|client_assertion"/);
  };

  const proxyPasswordFile = () => {
    writeSecretFile(join(inst.dir, 'proxy-password'), `${PROXY_PASSWORD}\n`, true);
    // Relative to the config file, like every other path in it.
    return 'proxy-password';
  };

  it('tunnels the JWKS fetch, the token request and authorize through the proxy named by HTTPS_PROXY', async () => {
    const tp = await proxy();
    const before = dev.cloudApi.stats();
    const a = await agent('https-proxy-env', { env: { HTTPS_PROXY: tp.url } });
    // Nothing is fetched before the first user request: the proxy has seen nothing yet.
    expect(tp.connects()).toEqual([]);

    await readsOrders(await login('alice'));

    // The cloud API (not some other link) went through tinyproxy, and only it.
    expect(tp.connects()).toContain(cloudHost);
    expect(new Set(tp.connects())).toEqual(new Set([cloudHost]));
    // The dev cloud verified a client assertion and answered one authorisation: both arrived through the tunnel.
    expect(delta(before)).toEqual({ tokensIssued: 1, tokensRefused: 0, authorize: 1, decisions: 1 });
    expect(logged(a, 'cloud API goes through the HTTP proxy')).toEqual([
      expect.objectContaining({ proxy: new URL(tp.url).host }),
    ]);
    expectNoSecrets(a);
  });

  it('authenticates to the proxy with [proxy] username and the 0600 password file', async () => {
    // Only the cloud's port may be tunnelled, and only with the right credentials.
    const tp = await proxy({
      basicAuth: { user: PROXY_USER, password: PROXY_PASSWORD },
      connectPorts: [inst.layout.ports.cloud],
    });
    const before = dev.cloudApi.stats();
    const a = await agent('proxy-basic-auth', {
      edit: (cfg) => void (cfg['proxy'] = { url: tp.url, username: PROXY_USER, password_file: proxyPasswordFile() }),
    });

    await readsOrders(await login('alice'));

    expect(new Set(tp.connects())).toEqual(new Set([cloudHost]));
    expect(delta(before)).toEqual({ tokensIssued: 1, tokensRefused: 0, authorize: 1, decisions: 1 });
    expect(logged(a, 'cloud API goes through the HTTP proxy')).toEqual([
      expect.objectContaining({ proxy: new URL(tp.url).host, username: PROXY_USER }),
    ]);
    expectNoSecrets(a);
  });

  it('goes direct to a cloud host listed in NO_PROXY: no CONNECT reaches the proxy', async () => {
    const tp = await proxy();
    const before = dev.cloudApi.stats();
    const a = await agent('no-proxy', { env: { HTTPS_PROXY: tp.url, NO_PROXY: '.intranet.example, 127.0.0.1' } });

    await readsOrders(await login('alice'));

    expect(tp.connects()).toEqual([]);
    expect(delta(before)).toEqual({ tokensIssued: 1, tokensRefused: 0, authorize: 1, decisions: 1 });
    // A proxy is configured, but the cloud API bypasses it.
    expect(logged(a, 'outbound links use an HTTP proxy')).toEqual([
      expect.objectContaining({ proxy: new URL(tp.url).host, noProxy: ['.intranet.example', '127.0.0.1'] }),
    ]);
    expect(logged(a, 'cloud API goes through the HTTP proxy')).toEqual([]);
  });

  it("verifies the cloud's certificate inside the tunnel: a cloud from another CA gets no JWKS trust (503, fail closed), no token, no decision", async () => {
    const tp = await proxy();
    const before = dev.cloudApi.stats();
    // Trust the installation's own root for the cloud instead of the cloud's CA: the dev cloud is then a stranger.
    const a = await agent('stranger-cloud', {
      env: { HTTPS_PROXY: tp.url },
      edit: (cfg) => void (section(cfg, 'cloud')['ca'] = pki.trustZone.ca),
    });

    const res = await api(ROWS_PATH, await login('alice'));
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ code: 'FORT_ERR_AUTHN_UNAVAILABLE' });
    expect(res.body['rows']).toBeUndefined();
    // The tunnel was opened; the refusal happened in the TLS handshake inside it.
    expect(tp.connects()).toContain(cloudHost);
    expect(delta(before)).toEqual({ tokensIssued: 0, tokensRefused: 0, authorize: 0, decisions: 0 });
    expectNoSecrets(a);
  });

  it("verifies the cloud API's certificate inside the tunnel: a rogue API that would allow everything is never asked (503)", async () => {
    const tp = await proxy();
    const rogue = await rogueCloud(pki);
    closers.push(rogue.close);
    // User-token keys from the real cloud (trusted CA), the token and authorize calls to the rogue.
    const a = await agent('rogue-api', {
      env: { HTTPS_PROXY: tp.url },
      edit: (cfg) => {
        section(cfg, 'cloud')['url'] = rogue.url;
        section(section(cfg, 'api'), 'auth')['jwks_url'] = dev.jwksUrl;
      },
    });

    const res = await api(ROWS_PATH, await login('alice'));
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ code: 'FORT_ERR_AUTHZ_UNAVAILABLE' });
    expect(res.body['rows']).toBeUndefined();
    expect(JSON.stringify(res.body)).not.toMatch(/acme|globex/);
    // Both were tunnelled: the JWKS to the real cloud, the token request to the rogue.
    expect(tp.connects()).toEqual(expect.arrayContaining([cloudHost, rogue.host]));
    // The rogue's certificate was refused in the handshake: it never saw a request.
    expect(rogue.requests()).toEqual([]);
    expect(rogue.refusedHandshakes()).toBeGreaterThan(0);
    const refusal = await eventually(
      () => logged(a, 'authorisation: cloud unreachable; refusing')[0],
      5000,
      "the authorizer's refusal in the log",
    );
    expect(String(refusal['err'])).toMatch(new RegExp(`^cloud API ${rogue.host}: unreachable: .*certificate`));
    expectNoSecrets(a);
  });

  it('fails closed (503) when the proxy starts refusing or goes down, names the proxy problem in the log, never the password or a token', async () => {
    const good = await proxy({ basicAuth: { user: PROXY_USER, password: PROXY_PASSWORD } });
    // The same proxy after a credentials change: the agent's password is now wrong (tinyproxy answers 401).
    const changed = await proxy({ basicAuth: { user: PROXY_USER, password: 'rotated-elsewhere-987654' } });
    const hop = await tcpHop(good.port);
    closers.push(hop.close);
    const a = await agent('proxy-failures', {
      edit: (cfg) => void (cfg['proxy'] = { url: hop.url, username: PROXY_USER, password_file: proxyPasswordFile() }),
    });
    const alice = await login('alice');
    const carol = await login('carol');
    // Warm: user-token keys, an access token and alice's decision on sales-2026 are cached.
    await readsOrders(alice);
    const refusals = () => logged(a, 'authorisation: cloud unreachable; refusing').map((l) => String(l['err']));

    // 1. The proxy refuses the tunnel. A question the cloud would answer "allow" is refused, not guessed.
    hop.pointAt(changed.port);
    const before = dev.cloudApi.stats();
    const refused = await api('/api/v1/apps/empty-2026', alice);
    expect(refused).toMatchObject({ status: 503, body: { code: 'FORT_ERR_AUTHZ_UNAVAILABLE' } });
    expect(refused.body['name']).toBeUndefined();
    expect(changed.connects()).toContain(cloudHost);
    const whyRefused = await eventually(() => refusals()[0], 5000, 'the refusal in the log');
    expect(whyRefused).toBe(
      `proxy authentication failed (401): proxy ${hop.host} refused the credentials for CONNECT ${cloudHost}; check proxy.username and proxy.password_file`,
    );
    // A fresh cached decision is still served; only what needs the cloud is refused.
    await readsOrders(alice);

    // 2. The proxy is down.
    await hop.close();
    const down = await api(ROWS_PATH, carol);
    expect(down).toMatchObject({ status: 503, body: { code: 'FORT_ERR_AUTHZ_UNAVAILABLE' } });
    expect(down.body['rows']).toBeUndefined();
    expect(JSON.stringify(down.body)).not.toMatch(/acme|globex/);
    const whyDown = await eventually(() => refusals()[1], 5000, 'the second refusal in the log');
    expect(whyDown).toMatch(new RegExp(`^proxy ${hop.host}: connect ECONNREFUSED`));

    // Neither question reached the cloud.
    expect(delta(before)).toEqual({ tokensIssued: 0, tokensRefused: 0, authorize: 0, decisions: 0 });
    expectNoSecrets(a);
  });

  it('a cold agent whose proxy is down refuses every request (503) and says the proxy is the problem', async () => {
    const tp = await proxy();
    const deadProxy = tp.url;
    await tp.stop();
    proxies.splice(proxies.indexOf(tp), 1);
    const before = dev.cloudApi.stats();
    const a = await agent('proxy-down-cold', { env: { HTTPS_PROXY: deadProxy } });

    const res = await api(ROWS_PATH, await login('alice'));
    expect(res.status).toBe(503);
    expect(res.body['rows']).toBeUndefined();
    expect(delta(before)).toEqual({ tokensIssued: 0, tokensRefused: 0, authorize: 0, decisions: 0 });
    // The JWKS could not be fetched: that is what the user is told (not that the token is bad)...
    expect(res.body).toMatchObject({ code: 'FORT_ERR_AUTHN_UNAVAILABLE' });
    // ...and the operator should read why in the log: the proxy, not the token.
    const proxyHost = new URL(deadProxy).host;
    await eventually(
      () => (a.stdout.some((l) => l.includes(`proxy ${proxyHost}: connect ECONNREFUSED`)) ? true : undefined),
      5000,
      'a log line naming the unreachable proxy',
    );
    expectNoSecrets(a);
  });
});
