#!/usr/bin/env node
import { Command } from 'commander';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatePki } from '../lib/pki/generate.js';
import { pkiPaths } from '../lib/pki/layout.js';
import { writeFileAtomic, writeSecretFile } from '../lib/files.js';
import { loadAgentConfig } from '../agent/config.js';
import { loadDevCloudConfig } from '../dev-cloud/config.js';
import { agentToml, DEV_POLICY_FILE, deploymentManagerToml, devCloudToml, devPolicyJson, fortctlToml, freePorts, type StackLayout } from './dev-config.js';
import { startSupervised, type Supervised } from './supervisor/process.js';
import { nodeArgsFromUnit } from './supervisor/unit-file.js';
import { demoAppToml, DEMO_APP_ID, writeDemoSources } from './demo-app.js';
import { createAdminClient } from '../lib/admin-client.js';
import { loadTlsMaterial } from '../lib/tls.js';
import { loadFortctlConfig } from '../agent/cli/config.js';

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
  cloud: join(home, 'dev-cloud.toml'),
  policy: join(home, DEV_POLICY_FILE),
  index: join(home, 'dev-cloud.json'),
  iotStatic: join(home, 'iot-static-credentials.json'),
  sources: join(home, 'sources'),
  demoApp: join(home, 'demo-app.toml'),
};
const say = (line: string) => process.stdout.write(`${line}\n`);

async function prepare(): Promise<void> {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const pki = pkiPaths(join(home, 'pki'));
  if (!existsSync(pki.trustZone.ca)) {
    say(`dev-stack: generating PKI into ${pki.root}`);
    await generatePki({ out: pki.root, fortId: opts.fortId });
  }
  if (!existsSync(files.agent)) {
    // A dev-only static key pair the bridge also accepts (tools, other test clients).
    writeSecretFile(files.iotStatic, JSON.stringify({ accessKeyId: `AKIADEV${randomBytes(6).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(30).toString('base64') }), true);
    const layout: StackLayout = {
      dir: home,
      fortId: opts.fortId,
      pki,
      ports: await freePorts(),
      dataDir: join(home, 'data'),
      iot: { region: 'eu-west-1', roleAlias: 'fort-iot-role', staticCredentialsFile: files.iotStatic },
      cloudAuth: { tenant: 't1' },
      sourcesDir: files.sources,
      // Often enough that a newcomer sees one happen within a minute of starting.
      schedules: [{ app: DEMO_APP_ID, cron: '*/30 * * * * *' }],
    };
    say(`dev-stack: writing config into ${home}`);
    writeFileAtomic(files.agent, agentToml(layout), 0o644);
    writeFileAtomic(files.dm, deploymentManagerToml(layout), 0o644);
    writeFileAtomic(files.fortctl, fortctlToml(layout), 0o644);
    writeFileAtomic(files.cloud, devCloudToml(layout), 0o644);
  }
  // The developer's edits to the policy survive restarts.
  if (!existsSync(files.policy)) writeFileAtomic(files.policy, devPolicyJson(opts.fortId), 0o644);
  writeDemoSources(files.sources);
  if (!existsSync(files.demoApp)) writeFileAtomic(files.demoApp, demoAppToml(), 0o644);
}

/** The demo app, registered the way an operator would (admin API, fortctl's identity); idempotent. */
async function registerDemoApp(): Promise<void> {
  const fortctl = loadFortctlConfig(files.fortctl);
  const admin = createAdminClient({ url: fortctl.admin.url, tls: loadTlsMaterial(fortctl.admin.tls) });
  try {
    const { statusCode, body } = await admin.addApp(readFileSync(files.demoApp, 'utf8'), 'toml');
    if (statusCode !== 200 && statusCode !== 201) say(`dev-stack: the demo app was refused: ${body.detail ?? statusCode}`);
    else if (statusCode === 201) {
      await admin.startReload(body.app.id);
      say(`dev-stack: registered the demo app ${body.app.id} and queued its first reload`);
    }
  } finally {
    admin.close();
  }
}

/** Machine-readable index of what runs where, so tests and scripts never guess. */
function writeIndex(): Record<string, unknown> {
  const agent = loadAgentConfig(files.agent);
  const cloud = loadDevCloudConfig(files.cloud);
  const pki = pkiPaths(join(home, 'pki'));
  const staticKey = cloud.iot?.static_credentials_file ? (JSON.parse(readFileSync(cloud.iot.static_credentials_file, 'utf8')) as { accessKeyId: string; secretAccessKey: string }) : undefined;
  const index = {
    fortId: agent.fort.id,
    cloud: { url: `https://${cloud.server.host}:${cloud.server.port}` },
    iot: cloud.iot && {
      endpoint: `${cloud.server.host}:${cloud.iot.port}`,
      region: cloud.iot.region,
      credentialsProvider: cloud.credentials_provider && `https://${cloud.server.host}:${cloud.credentials_provider.port}`,
      roleAlias: cloud.credentials_provider?.role_alias,
      accessKeyId: staticKey?.accessKeyId,
      secretAccessKey: staticKey?.secretAccessKey,
    },
    agent: { clientApi: `https://${agent.api.host}:${agent.api.port}`, adminApi: `https://${agent.admin.host}:${agent.admin.port}` },
    config: { agent: files.agent, deploymentManager: files.dm, fortctl: files.fortctl, devCloud: files.cloud },
    ca: { trustZone: pki.trustZone.ca, clientZone: pki.clientZone.ca, cloudServer: pki.cloudServer.ca, cloudDevice: pki.cloudDevice.ca },
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
  p.events.on('exit', (info: { code: number | null; signal: string | null }) => say(`[${p.name}] exited (code ${info.code}, signal ${info.signal})`));
  p.events.on('restart', () => say(`[${p.name}] restarted`));
}

function summarize(line: string): string {
  try {
    const { level, msg, time: _t, pid: _p, name: _n, hostname: _h, module, ...rest } = JSON.parse(line) as Record<string, unknown>;
    const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
    return `${String(level).toUpperCase()} ${module ? `${String(module)}: ` : ''}${String(msg)}${extra}`;
  } catch {
    return line;
  }
}

async function run(): Promise<void> {
  await prepare();
  const index = writeIndex() as { fortId: string; agent: { clientApi: string; adminApi: string }; cloud: { url: string } };
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
    say('dev-stack: stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  const start = async (name: string, script: string, config: string, args: string[] = [], unit?: string) => {
    const nodeArgs = unit ? nodeArgsFromUnit(join(dist, '..', 'systemd', unit)) : [];
    const p = await startSupervised({ name, script: join(dist, script), args: [...args, '--config', config], nodeArgs, restart: true });
    running.push(p);
    forward(p);
    await p.waitReady(30_000);
  };
  try {
    await start('dev-cloud', 'dev-cloud/cli.js', files.cloud, ['serve']);
    await start('agent', 'agent/main.js', files.agent, [], 'fort-agent.service');
    await start('deployment-manager', 'deployment-manager/main.js', files.dm, [], 'fort-deployment-manager.service');
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
  say(`  send the fort a ping:         npm run dev-cloud -- publish --home ${rel(home)} --fort ${index.fortId} --type ping`);
  say(`  watch its status topic:       npm run dev-cloud -- watch --home ${rel(home)} --fort ${index.fortId}`);
  say(`  viewer (sign in as alice)    ${index.agent.clientApi}/`);
  say(`  hub at the dev cloud          ${index.cloud.url}/hub?fort=${encodeURIComponent(index.agent.clientApi)}`);
  say(`  the demo app reloads every 30 s; its status: npm run dev-cloud -- reloads --home ${rel(home)}`);
  say(`  index of everything          ${rel(files.index)}`);
  say(`  try:                         npm run fortctl -- --config ${rel(files.fortctl)} status`);
  say('  Ctrl-C stops everything.');
  say('');
}

await run();
