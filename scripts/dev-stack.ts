#!/usr/bin/env node
import { Command } from 'commander';
import { createWriteStream, existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatePki } from '../lib/pki/generate.js';
import { pkiPaths } from '../lib/pki/layout.js';
import { writeFileAtomic, writeSecretFile } from '../lib/files.js';
import { loadAgentConfig, UNPAIRED } from '../agent/config.js';
import got from 'got';
import { loadDevCloudConfig } from '../dev-cloud/config.js';
import { loadDeploymentManagerConfig } from '../deployment-manager/config.js';
import { loadEngineConfig } from '../engine/config.js';
import { currentRelease, switchCurrent } from '../deployment-manager/install/current.js';
import { readReleaseInfo } from '../lib/version.js';
import {
  agentToml,
  DEV_POLICY_FILE,
  deploymentManagerToml,
  devCloudToml,
  devPolicyJson,
  engineToml,
  fortctlToml,
  reserveStackPorts,
  type StackLayout,
} from './dev-config.js';
import { reservePort, type PortReservation } from './port-reservation.js';
import { startSupervised, type Supervised } from './supervisor/process.js';
import { nodeArgsFromUnit } from './supervisor/unit-file.js';
import { demoAppToml, DEMO_APP_ID, writeDemoSources } from './demo-app.js';
import { createAdminClient, waitForHealth } from '../lib/admin-client.js';
import { loadTlsMaterial } from '../lib/tls.js';
import { loadFortctlConfig } from '../fortctl/config.js';

/**
 * `npm start`: PKI and config into .fort-dev/ on first run (reused after), then the dev
 * cloud, the agent and the deployment manager on loopback, supervised like systemd would.
 */
const opts = new Command('dev-stack')
  .option('--home <dir>', 'state directory of the dev stack', '.fort-dev')
  .option('--fort-id <id>', 'fort id for a first run', 'fort-dev-1')
  .parse(process.argv)
  .opts<{ home: string; fortId: string }>();

const home = resolve(opts.home);
const dist = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const files = {
  agent: join(home, 'agent.toml'),
  dm: join(home, 'deployment-manager.toml'),
  fortctl: join(home, 'fortctl.toml'),
  engine: join(home, 'engine.toml'),
  cloud: join(home, 'dev-cloud.toml'),
  policy: join(home, DEV_POLICY_FILE),
  index: join(home, 'dev-cloud.json'),
  iotStatic: join(home, 'iot-static-credentials.json'),
  sources: join(home, 'sources'),
  demoApp: join(home, 'demo-app.toml'),
  /** Install root laid out like /opt/fort: releases/<version>, current, node_modules. */
  opt: join(home, 'opt'),
  // mender-artifact signs with a PKCS#1 RSA key; the deployment manager checks the SPKI public key.
  signingKey: join(home, 'pki', 'artifact-signing.key'),
  signingPub: join(home, 'pki', 'artifact-signing.pub.pem'),
  /** Where the banner's release command writes artifacts. */
  releases: join(home, 'releases'),
};
/** Mender device type of the dev fort; the release command must name it. */
const DEVICE_TYPE = 'fort-dev';
const say = (line: string) => process.stdout.write(`${line}\n`);

/**
 * Frees the stack's ports (scripts/port-reservation.ts). They are held from before any process
 * starts until all have stopped, so no other program takes one while a process starts or
 * restarts; released, they stay out of other programs' reach for a minute (TIME_WAIT), for the
 * next `npm start`.
 */
let releasePorts: (() => void) | undefined;

async function prepare(): Promise<void> {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const pki = pkiPaths(join(home, 'pki'));
  if (!existsSync(pki.trustZone.ca)) {
    say(`dev-stack: generating PKI into ${pki.root}`);
    await generatePki({ out: pki.root, fortId: opts.fortId });
  }
  if (!existsSync(files.agent)) {
    // Ports the kernel picks, bound (reserved) from now on; the config names them for good.
    const reserved = await reserveStackPorts();
    releasePorts = reserved.release;
    // A dev-only static key pair the bridge also accepts (tools, other test clients).
    writeSecretFile(
      files.iotStatic,
      JSON.stringify({
        accessKeyId: `AKIADEV${randomBytes(6).toString('hex').toUpperCase()}`,
        secretAccessKey: randomBytes(30).toString('base64'),
      }),
      true,
    );
    const layout: StackLayout = {
      dir: home,
      fortId: opts.fortId,
      pki,
      ports: reserved.ports,
      dataDir: join(home, 'data'),
      iot: { region: 'eu-west-1', roleAlias: 'fort-iot-role', staticCredentialsFile: files.iotStatic },
      cloudAuth: { tenant: 't1' },
      sourcesDir: files.sources,
      // Often enough that a newcomer sees one happen within a minute of starting.
      schedules: [{ app: DEMO_APP_ID, cron: '*/30 * * * * *' }],
      updates: { installRoot: files.opt, deviceType: DEVICE_TYPE, artifactKey: files.signingPub },
      // Identity by pairing (below), as on a customer's host: nothing of it is written here.
      paired: true,
      engine: { dataDir: join(home, 'data', 'engine') },
    };
    say(`dev-stack: writing config into ${home}`);
    writeFileAtomic(files.agent, agentToml(layout), 0o644);
    writeFileAtomic(files.dm, deploymentManagerToml(layout), 0o644);
    writeFileAtomic(files.fortctl, fortctlToml(layout), 0o644);
    writeFileAtomic(files.engine, engineToml({ ...layout, engine: layout.engine! }), 0o644);
    writeFileAtomic(files.cloud, devCloudToml(layout), 0o644);
  }
  if (!existsSync(files.signingKey)) {
    say(`dev-stack: generating the artifact signing key ${files.signingKey}`);
    const pair = generateKeyPairSync('rsa', {
      modulusLength: 3072,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    });
    // Public key first: the private key's existence is what says "done".
    writeFileAtomic(files.signingPub, pair.publicKey, 0o644);
    writeSecretFile(files.signingKey, pair.privateKey, true);
  }
  prepareInstallRoot();
  // The developer's edits to the policy survive restarts.
  if (!existsSync(files.policy)) writeFileAtomic(files.policy, devPolicyJson(opts.fortId), 0o644);
  writeDemoSources(files.sources);
  if (!existsSync(files.demoApp)) writeFileAtomic(files.demoApp, demoAppToml(), 0o644);
}

/**
 * `<home>/opt` as the deployment manager expects it. On a first run `releases/<version>` is a
 * link to this repository, so the agent runs the live dist/ (rebuilds take effect) until an
 * update switches `current` to an unpacked release. The deployment manager's clean-up removes
 * only the link, never the repository (rm of a symlink unlinks it).
 */
function prepareInstallRoot(): void {
  const exists = (p: string) => lstatSync(p, { throwIfNoEntry: false }) !== undefined;
  const { version, root: repo } = readReleaseInfo();
  mkdirSync(join(files.opt, 'releases'), { recursive: true });
  // Releases built with --no-node-modules find their modules here (Node looks in parent directories).
  if (!exists(join(files.opt, 'node_modules')))
    symlinkSync(join(repo, 'node_modules'), join(files.opt, 'node_modules'));
  if (exists(join(files.opt, 'current'))) return;
  if (!exists(join(files.opt, 'releases', version))) symlinkSync(repo, join(files.opt, 'releases', version));
  switchCurrent(files.opt, version);
}

/**
 * A later run: the ports the config names, reserved again before anything starts. They never
 * change (the paired identity names the dev cloud's), so one another program took is an error.
 */
async function reserveConfiguredPorts(): Promise<() => void> {
  const agent = loadAgentConfig(files.agent);
  const cloud = loadDevCloudConfig(files.cloud);
  const named: [string, number | undefined][] = [
    [`the client API (${files.agent} [api] port)`, agent.api.port],
    [`the admin API (${files.agent} [admin] port)`, agent.admin.port],
    [`the dev cloud (${files.cloud} [server] port)`, cloud.server.port],
    [`the IoT bridge (${files.cloud} [iot] port)`, cloud.iot?.port],
    [`the credentials provider (${files.cloud} [credentials_provider] port)`, cloud.credentials_provider?.port],
    [`the update server (${files.cloud} [mender] port)`, cloud.mender?.port],
    [`fort-engine (${files.engine} [server] port)`, agent.engine && loadEngineConfig(files.engine).server.port],
  ];
  const held: PortReservation[] = [];
  const release = () => held.forEach((r) => r.release());
  try {
    for (const [what, port] of named) {
      if (port === undefined) continue;
      held.push(
        await reservePort(port).catch((err: NodeJS.ErrnoException) =>
          Promise.reject(
            new Error(`port ${port} of ${what} is in use by another program (${err.code ?? err.message})`),
          ),
        ),
      );
    }
  } catch (err) {
    release();
    throw err;
  }
  return release;
}

/** The demo app, registered the way an operator would (admin API, fortctl's identity); idempotent. */
async function registerDemoApp(): Promise<void> {
  const fortctl = loadFortctlConfig(files.fortctl);
  const admin = createAdminClient({ url: fortctl.admin.url, tls: loadTlsMaterial(fortctl.admin.tls) });
  try {
    const { statusCode, body } = await admin.addApp(readFileSync(files.demoApp, 'utf8'), 'toml');
    if (statusCode !== 200 && statusCode !== 201)
      say(`dev-stack: the demo app was refused: ${body.detail ?? statusCode}`);
    else if (statusCode === 201) {
      await admin.startReload(body.app.id);
      say(`dev-stack: registered the demo app ${body.app.id} and queued its first reload`);
    }
  } finally {
    admin.close();
  }
}

/**
 * Pairs the fort the way an operator does: a one-time code from the dev cloud (for the fort id
 * of this stack), then fortctl's `pair` over the admin API; waits until the agent is back paired.
 */
async function pairIfNeeded(): Promise<void> {
  const agent = loadAgentConfig(files.agent);
  if (agent.identity || agent.fort.id !== UNPAIRED) return;
  const cloud = loadDevCloudConfig(files.cloud);
  const cloudUrl = `https://${cloud.server.host}:${cloud.server.port}`;
  const issued = await got
    .post(`${cloudUrl}/dev/v1/pairing-codes`, {
      json: { tenant: 't1', fort_id: opts.fortId, ttl_seconds: 600 },
      https: { certificateAuthority: readFileSync(pkiPaths(join(home, 'pki')).cloudServer.ca) },
      retry: { limit: 0 },
    })
    .json<{ code: string }>();
  const fortctl = loadFortctlConfig(files.fortctl);
  const admin = createAdminClient({
    url: fortctl.admin.url,
    tls: loadTlsMaterial(fortctl.admin.tls),
    timeoutMs: 30_000,
  });
  try {
    const { statusCode, body } = await admin.pair({ cloud: cloudUrl, code: issued.code, tenant: 't1' });
    if (statusCode !== 200) throw new Error(`pairing failed (${statusCode}): ${body.detail ?? JSON.stringify(body)}`);
    say(
      `dev-stack: paired the fort as ${body.fortId} (npm run fortctl -- pair --cloud ${cloudUrl} --code <code from npm run dev-cloud -- pairing-code>)`,
    );
    if (
      !(await waitForHealth(
        () => admin.health(),
        (h) => h.fortId === body.fortId && h.ready,
        30_000,
      ))
    )
      throw new Error(`the agent did not come back as ${body.fortId} within 30 s`);
  } finally {
    admin.close();
  }
}

/** Machine-readable index of what runs where, so tests and scripts never guess. */
function writeIndex(): Record<string, unknown> {
  const agent = loadAgentConfig(files.agent);
  const cloud = loadDevCloudConfig(files.cloud);
  const dm = loadDeploymentManagerConfig(files.dm);
  const pki = pkiPaths(join(home, 'pki'));
  const staticKey = cloud.iot?.static_credentials_file
    ? (JSON.parse(readFileSync(cloud.iot.static_credentials_file, 'utf8')) as {
        accessKeyId: string;
        secretAccessKey: string;
      })
    : undefined;
  const index = {
    fortId: agent.fort.id,
    cloud: { url: `https://${cloud.server.host}:${cloud.server.port}` },
    iot: cloud.iot && {
      endpoint: `${cloud.server.host}:${cloud.iot.port}`,
      region: cloud.iot.region,
      credentialsProvider:
        cloud.credentials_provider && `https://${cloud.server.host}:${cloud.credentials_provider.port}`,
      roleAlias: cloud.credentials_provider?.role_alias,
      accessKeyId: staticKey?.accessKeyId,
      secretAccessKey: staticKey?.secretAccessKey,
    },
    agent: {
      clientApi: `https://${agent.api.host}:${agent.api.port}`,
      adminApi: `https://${agent.admin.host}:${agent.admin.port}`,
    },
    // Absent for a stack whose config predates updates (config is written on the first run only).
    updates:
      (dm.updates?.server || dm.updates?.paired) && cloud.mender
        ? {
            url: `https://${cloud.server.host}:${cloud.mender.port}`,
            deviceType: dm.updates.device_type,
            installRoot: dm.updates.install_root,
            signingKey: files.signingKey,
            verifyKey: files.signingPub,
            releasesDir: files.releases,
          }
        : undefined,
    config: {
      agent: files.agent,
      deploymentManager: files.dm,
      fortctl: files.fortctl,
      devCloud: files.cloud,
      ...(agent.engine ? { engine: files.engine } : {}),
    },
    ca: {
      trustZone: pki.trustZone.ca,
      clientZone: pki.clientZone.ca,
      cloudServer: pki.cloudServer.ca,
      cloudDevice: pki.cloudDevice.ca,
    },
    certs: {
      agent: pki.trustZone.agentCert,
      deploymentManager: pki.trustZone.deploymentManagerCert,
      fortctl: { cert: pki.trustZone.fortctlCert, key: pki.trustZone.fortctlKey },
      clientApi: pki.clientZone.clientApiCert,
      devCloud: pki.cloudServer.devCloudCert,
      device: { cert: pki.cloudDevice.deviceCert, key: pki.cloudDevice.deviceKey },
      jwt: { privateKey: pki.jwt.privateKey, publicKey: pki.jwt.publicKey },
    },
    logs: join(home, 'logs'),
  };
  // Holds the dev-only static IoT key pair, hence 0600.
  writeFileAtomic(files.index, `${JSON.stringify(index, null, 2)}\n`, 0o600);
  return index;
}

function forward(p: Supervised): void {
  mkdirSync(join(home, 'logs'), { recursive: true });
  const file = createWriteStream(join(home, 'logs', `${p.name}.log`), { flags: 'a', mode: 0o600 });
  p.events.on('stdout', (line: string) => {
    file.write(`${line}\n`);
    say(`[${p.name}] ${summarize(line)}`);
  });
  p.events.on('stderr', (line: string) => say(`[${p.name}] ${line}`));
  p.events.on('exit', (info: { code: number | null; signal: string | null }) =>
    say(`[${p.name}] exited (code ${info.code}, signal ${info.signal})`),
  );
  p.events.on('restart', () => say(`[${p.name}] restarted`));
}

function summarize(line: string): string {
  try {
    const {
      level,
      msg,
      time: _t,
      pid: _p,
      name: _n,
      hostname: _h,
      module,
      ...rest
    } = JSON.parse(line) as Record<string, unknown>;
    const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
    return `${String(level).toUpperCase()} ${typeof module === 'string' ? `${module}: ` : ''}${String(msg)}${extra}`;
  } catch {
    return line;
  }
}

type StackIndex = {
  fortId: string;
  agent: { clientApi: string; adminApi: string };
  cloud: { url: string };
  updates?: { url: string; deviceType: string; signingKey: string; releasesDir: string };
};

async function run(): Promise<void> {
  await prepare();
  writeIndex();
  let index: StackIndex;
  const running: Supervised[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('dev-stack: stopping');
    for (const p of [...running].reverse()) {
      try {
        await p.stop(10_000);
      } catch (err) {
        say(`dev-stack: ${(err as Error).message}`);
        code = 1;
      }
    }
    releasePorts?.();
    say('dev-stack: stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  const start = async (name: string, script: string, config: string, args: string[] = [], unit?: string) => {
    const nodeArgs = unit ? nodeArgsFromUnit(join(dist, '..', 'systemd', unit)) : [];
    const p = await startSupervised({ name, script, args: [...args, '--config', config], nodeArgs, restart: true });
    running.push(p);
    forward(p);
    await p.waitReady(30_000);
  };
  try {
    releasePorts ??= await reserveConfiguredPorts();
    await start('dev-cloud', join(dist, 'dev-cloud/cli.js'), files.cloud, ['serve']);
    // A stack whose config predates the engine has no [engine]: the agent loads and serves data itself.
    if (loadAgentConfig(files.agent).engine)
      await start('engine', join(files.opt, 'current/dist/engine/main.js'), files.engine, [], 'fort-engine.service');
    // From `current`, like the unit's ExecStart: after an update the restart runs the new release.
    await start('agent', join(files.opt, 'current/dist/agent/main.js'), files.agent, [], 'fort-agent.service');
    await pairIfNeeded();
    index = writeIndex() as StackIndex; // the fort id and its endpoints come with pairing
    await start(
      'deployment-manager',
      join(dist, 'deployment-manager/main.js'),
      files.dm,
      [],
      'fort-deployment-manager.service',
    );
    await registerDemoApp();
  } catch (err) {
    say(`dev-stack: start failed: ${(err as Error).message}`);
    await stopAll(1);
    return;
  }
  const rel = (p: string) => (p.startsWith(`${process.cwd()}/`) ? p.slice(process.cwd().length + 1) : p);
  say('');
  say('dev-stack: ready');
  say(`  client API (client-zone CA)  ${index.agent.clientApi}/health`);
  say(`  admin API (trust-zone mTLS)  ${index.agent.adminApi}/admin/v1/health`);
  say(`  dev cloud                    ${index.cloud.url}/health`);
  say(
    `  send the fort a ping:         npm run dev-cloud -- publish --home ${rel(home)} --fort ${index.fortId} --type ping`,
  );
  say(`  watch its status topic:       npm run dev-cloud -- watch --home ${rel(home)} --fort ${index.fortId}`);
  say(`  viewer (sign in as alice)    ${index.agent.clientApi}/`);
  say(`  hub at the dev cloud          ${index.cloud.url}/hub?fort=${encodeURIComponent(index.agent.clientApi)}`);
  say(`  the demo app reloads every 30 s; its status: npm run dev-cloud -- reloads --home ${rel(home)}`);
  say(`  index of everything          ${rel(files.index)}`);
  say(`  try:                         npm run fortctl -- --config ${rel(files.fortctl)} status`);
  if (index.updates) {
    const u = index.updates;
    const next = nextPatch(currentRelease(files.opt) ?? readReleaseInfo().version);
    say(`  update server (Mender API)   ${u.url}  device type ${u.deviceType}; update the agent:`);
    say(
      `    accept the device          npm run dev-cloud -- mender accept --home ${rel(home)} --device ${index.fortId}`,
    );
    say(
      `    build a signed release     npm run release -- --version ${next} --device-type ${u.deviceType} --key ${rel(u.signingKey)} --out ${rel(u.releasesDir)} --no-node-modules`,
    );
    say(
      `    upload it                  npm run dev-cloud -- mender upload --home ${rel(home)} ${rel(join(u.releasesDir, `fort-${next}.mender`))}`,
    );
    say(
      `    deploy it                  npm run dev-cloud -- mender deploy --home ${rel(home)} --artifact fort-${next} --device ${index.fortId}`,
    );
    say(`    follow it                  npm run dev-cloud -- mender status --home ${rel(home)}`);
  }
  say('  Ctrl-C stops everything.');
  say('');
}

/** 0.1.0 → 0.1.1: the version the banner suggests for the next release. */
function nextPatch(v: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  return m ? `${m[1]}.${m[2]}.${Number(m[3]) + 1}` : '0.0.1';
}

await run();
