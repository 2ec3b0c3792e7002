#!/usr/bin/env node
import type { StoredShadow } from './iot/shadows.js';
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import got, { HTTPError } from 'got';
import { bootDaemon } from '../lib/daemon.js';
import { loadDevCloudConfig } from './config.js';
import { startDevCloud } from './app.js';
import { formatReloadTable } from './scheduler/format.js';
import type { ReloadStatusRecord } from './scheduler/status-log.js';
import { formatArtifacts, formatDeployments, formatDevices } from './mender/format.js';
import type { ArtifactView } from './mender/dev-routes.js';
import type { DeploymentRecord } from './mender/deployments.js';
import type { DeviceRecord } from './mender/devices.js';
import type { PairedFort } from './pairing/registry.js';

const program = new Command('dev-cloud').description('Local stand-in for the Fort cloud (development and tests only)');

program
  .command('serve')
  .description('run the dev cloud (cloud API, IoT bridge, credentials provider) as configured')
  .option('-c, --config <file>', 'dev-cloud.toml')
  .action(async () => {
    const { config, log, notifier, lifecycle, start } = bootDaemon({
      name: 'dev-cloud',
      configEnvVar: 'FORT_DEV_CLOUD_CONFIG',
      defaultConfig: '.fort-dev/dev-cloud.toml',
      load: (file) => ({ ...loadDevCloudConfig(file), lifecycle: { stop_timeout_seconds: 5 } }),
      argv: process.argv.filter((a) => a !== 'serve'),
    });
    await start(async () => {
      const cloud = await startDevCloud(config, log);
      lifecycle.add({ name: 'dev-cloud', stop: () => cloud.close() });
      log.info({ url: `https://${config.server.host}:${config.server.port}` }, 'dev-cloud ready');
      notifier.ready(`serving https://${config.server.host}:${config.server.port}`);
    });
  });

interface Index {
  cloud: { url: string };
  ca: { cloudServer: string };
}
const index = (home: string) => JSON.parse(readFileSync(join(home, 'dev-cloud.json'), 'utf8')) as Index;
const client = (home: string) => {
  const i = index(home);
  return got.extend({
    prefixUrl: i.cloud.url,
    https: { certificateAuthority: readFileSync(i.ca.cloudServer) },
    retry: { limit: 0 },
  });
};

program
  .command('publish')
  .description(
    'publish an event to a fort over the IoT bridge, e.g. publish --fort fort-dev-1 --type ping --data \'{"echo":"hi"}\'',
  )
  .requiredOption('--fort <id>', 'fort id')
  .requiredOption('--type <type>', 'event type')
  .option('--data <json>', 'event data (JSON object)', '{}')
  .option('--home <dir>', 'dev stack directory', '.fort-dev')
  .action(async (o: { fort: string; type: string; data: string; home: string }) => {
    const body = await client(o.home)
      .post('dev/iot/publish', { json: { fortId: o.fort, type: o.type, data: JSON.parse(o.data) as unknown } })
      .json();
    process.stdout.write(`${JSON.stringify(body)}\n`);
  });

program
  .command('token')
  .description('print a user token signed by the running dev cloud, e.g. token --user alice --tenant t1')
  .requiredOption('--user <user>', 'user name (sub)')
  .requiredOption('--tenant <tenant>', 'tenant id')
  .option('--fort <id>', "the fort the token is for (default: the tenant's only fort)")
  .option('--ttl <seconds>', 'lifetime in seconds (default: cloud_api.user_token_seconds)', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
    return n;
  })
  .option('--home <dir>', 'dev stack directory', '.fort-dev')
  .action(async (o: { user: string; tenant: string; fort?: string; ttl?: number; home: string }) => {
    const login = { user: o.user, tenant: o.tenant, ...(o.fort ? { fort: o.fort } : {}) };
    const body = await client(o.home)
      .post('dev/v1/login', { json: { ...login, ...(o.ttl ? { ttl_seconds: o.ttl } : {}) } })
      .json<{ token: string; expires_at: string }>();
    process.stdout.write(`${body.token}\n`);
  });

/** 90s, 10m, 2h, 1d → seconds. */
function duration(v: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(v.trim());
  const n = m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'] : NaN;
  if (!Number.isInteger(n) || n < 60 || n > 604_800)
    throw new InvalidArgumentError('expected a duration from 60s to 7d, e.g. 10m');
  return n;
}

program
  .command('pairing-code')
  .description('print a one-time code a fort of the tenant pairs with (fortctl pair --code ...)')
  .requiredOption('--tenant <tenant>', 'tenant the fort joins')
  .option('--ttl <duration>', 'how long the code is valid, e.g. 10m (default: pairing.code_seconds)', duration)
  .option('--fort-id <id>', 'the id the fort gets (default: a new one)')
  .option('--home <dir>', 'dev stack directory', '.fort-dev')
  .action(async (o: { tenant: string; ttl?: number; fortId?: string; home: string }) => {
    const body = await devCall(
      client(o.home)
        .post('dev/v1/pairing-codes', {
          json: {
            tenant: o.tenant,
            ...(o.ttl ? { ttl_seconds: o.ttl } : {}),
            ...(o.fortId ? { fort_id: o.fortId } : {}),
          },
        })
        .json<{ code: string; expiresAt: string }>(),
    );
    process.stderr.write(`one-time code for tenant ${o.tenant}, valid until ${body.expiresAt}:\n`);
    process.stdout.write(`${body.code}\n`);
  });

program
  .command('forts')
  .description('list paired forts (id, tenant, when paired, revoked); --status: what each reported in its shadow')
  .option('--status', "each fort's reported state (versions, health, reloads, certificates, disk, update)")
  .option('--home <dir>', 'dev stack directory', '.fort-dev')
  .action(async (o: { home: string; status?: boolean }) => {
    if (o.status) {
      const { shadows } = await devCall(client(o.home).get('dev/v1/shadows').json<{ shadows: StoredShadow[] }>());
      if (shadows.length === 0) process.stdout.write('no fort has reported its state yet\n');
      for (const s of shadows)
        process.stdout.write(
          `${s.thing}  version ${s.version}  at ${s.updatedAt}\n${JSON.stringify(s.state.reported, null, 2)}\n`,
        );
      return;
    }
    const list = await devCall(client(o.home).get('dev/v1/forts').json<PairedFort[]>());
    for (const f of list)
      process.stdout.write(
        `${f.id}  ${f.tenant}  paired ${f.pairedAt}${f.revokedAt ? `  REVOKED ${f.revokedAt}` : ''}\n`,
      );
  });

program
  .command('revoke')
  .description('revoke a paired fort: its tokens, IoT link and update polls are refused from now on')
  .requiredOption('--fort <id>', 'fort id')
  .option('--home <dir>', 'dev stack directory', '.fort-dev')
  .action(async (o: { fort: string; home: string }) => {
    const f = await devCall(
      client(o.home)
        .post(`dev/v1/forts/${encodeURIComponent(o.fort)}/revoke`)
        .json<PairedFort>(),
    );
    process.stdout.write(`${f.id} revoked at ${f.revokedAt}\n`);
  });

program
  .command('watch')
  .description('print what a fort publishes on its status topic (Ctrl-C to stop)')
  .requiredOption('--fort <id>', 'fort id')
  .option('--topic <suffix>', 'topic under forts/<id>/', 'status')
  .option('--home <dir>', 'dev stack directory', '.fort-dev')
  .action(async (o: { fort: string; topic: string; home: string }) => {
    let since = 0;
    for (;;) {
      const messages = await client(o.home)
        .get('dev/iot/messages', { searchParams: { topic: `forts/${o.fort}/${o.topic}`, since } })
        .json<{ seq: number; at: string; payload: string }[]>();
      for (const m of messages) {
        process.stdout.write(`${m.at} ${m.payload}\n`);
        since = m.seq + 1;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  });

program
  .command('reloads')
  .description('list the reload status events forts reported (reload.started/succeeded/failed/cancelled), oldest first')
  .option('--fort <id>', 'only this fort')
  .option('--app <id>', 'only this app')
  .option('--json', 'print the records as JSON')
  .option('--home <dir>', 'dev stack directory', '.fort-dev')
  .action(async (o: { fort?: string; app?: string; json?: boolean; home: string }) => {
    const searchParams: Record<string, string> = {
      ...(o.fort ? { fort: o.fort } : {}),
      ...(o.app ? { app: o.app } : {}),
    };
    const records = await client(o.home).get('dev/v1/reloads', { searchParams }).json<ReloadStatusRecord[]>();
    process.stdout.write(o.json ? `${JSON.stringify(records, null, 2)}\n` : formatReloadTable(records));
  });

program
  .command('reload')
  .description('ask a fort to reload an app now (publishes reload.requested), e.g. reload --fort fort-dev-1 --app demo')
  .requiredOption('--fort <id>', 'fort id')
  .requiredOption('--app <id>', 'app id')
  .option('--home <dir>', 'dev stack directory', '.fort-dev')
  .action(async (o: { fort: string; app: string; home: string }) => {
    const event = await client(o.home)
      .post('dev/v1/reloads', { json: { fort: o.fort, app: o.app } })
      .json();
    process.stdout.write(`${JSON.stringify(event)}\n`);
  });

/** The problem detail of a refused dev route call, rather than got's bare status line. */
async function devCall<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (!(err instanceof HTTPError)) throw err;
    let detail = String(err.response.body);
    try {
      const b = JSON.parse(detail) as { detail?: string; title?: string };
      detail = b.detail ?? b.title ?? detail;
    } catch {
      // not JSON: the body as is
    }
    throw new Error(`HTTP ${err.response.statusCode}: ${detail}`, { cause: err });
  }
}
const print = (v: unknown, json: boolean | undefined, text: () => string) =>
  process.stdout.write(json ? `${JSON.stringify(v, null, 2)}\n` : text());
const collect = (v: string, prev: string[] = []) => [...prev, v];

const mender = program
  .command('mender')
  .description('the update server (Mender device API): artifacts, devices, deployments');

mender
  .command('upload')
  .description('upload an artifact (mender-artifact write ...); prints its id, name and device types')
  .argument('<file>', '.mender file')
  .option('--json', 'print the artifact as JSON')
  .option('--home <dir>', 'dev stack directory', '.fort-dev')
  .action(async (file: string, o: { json?: boolean; home: string }) => {
    const a = await devCall(
      client(o.home)
        .post('dev/v1/mender/artifacts', {
          body: createReadStream(file),
          headers: { 'content-type': 'application/octet-stream' },
        })
        .json<ArtifactView>(),
    );
    print(a, o.json, () => `uploaded ${a.name} (${a.deviceTypes.join(', ')}) id ${a.id}\n`);
  });

mender
  .command('artifacts')
  .description('list the uploaded artifacts')
  .option('--json', 'print them as JSON')
  .option('--home <dir>', 'dev stack directory', '.fort-dev')
  .action(async (o: { json?: boolean; home: string }) => {
    const list = await devCall(client(o.home).get('dev/v1/mender/artifacts').json<ArtifactView[]>());
    print(list, o.json, () => formatArtifacts(list));
  });

mender
  .command('devices')
  .description('list the devices that asked to authenticate, with auth status and inventory')
  .option('--json', 'print them as JSON')
  .option('--home <dir>', 'dev stack directory', '.fort-dev')
  .action(async (o: { json?: boolean; home: string }) => {
    const list = await devCall(client(o.home).get('dev/v1/mender/devices').json<DeviceRecord[]>());
    print(list, o.json, () => formatDevices(list));
  });

for (const verb of ['accept', 'reject'] as const) {
  mender
    .command(verb)
    .description(`${verb} a device's authentication (by device id, or an identity value such as its fort id)`)
    .requiredOption('--device <ref>', 'device id or identity attribute value (e.g. fort-dev-1)')
    .option('--home <dir>', 'dev stack directory', '.fort-dev')
    .action(async (o: { device: string; home: string }) => {
      const d = await devCall(
        client(o.home)
          .post(`dev/v1/mender/devices/${encodeURIComponent(o.device)}/${verb}`)
          .json<DeviceRecord>(),
      );
      process.stdout.write(`device ${d.id} ${JSON.stringify(d.identity)}: ${d.status}\n`);
    });
}

mender
  .command('deploy')
  .description('deploy an artifact (by name) to devices, e.g. deploy --artifact fort-1.2.3 --device fort-dev-1')
  .requiredOption('--artifact <name>', 'artifact name')
  .requiredOption('--device <ref>', 'device id or identity value (repeat for several)', collect)
  .option('--json', 'print the deployment as JSON')
  .option('--home <dir>', 'dev stack directory', '.fort-dev')
  .action(async (o: { artifact: string; device: string[]; json?: boolean; home: string }) => {
    const d = await devCall(
      client(o.home)
        .post('dev/v1/mender/deployments', { json: { artifact_name: o.artifact, devices: o.device } })
        .json<DeploymentRecord>(),
    );
    print(d, o.json, () => `deployment ${d.id}: ${d.artifactName} to ${d.devices.length} device(s)\n`);
  });

mender
  .command('status')
  .description('deployments, one line per device: status, when, history')
  .option('--device <ref>', 'only the deployments of this device')
  .option('--json', 'print the deployments as JSON (with logs)')
  .option('--home <dir>', 'dev stack directory', '.fort-dev')
  .action(async (o: { device?: string; json?: boolean; home: string }) => {
    const c = client(o.home);
    const deployments = await devCall(
      c
        .get('dev/v1/mender/deployments', { searchParams: o.device ? { device: o.device } : {} })
        .json<DeploymentRecord[]>(),
    );
    const devices = await devCall(c.get('dev/v1/mender/devices').json<DeviceRecord[]>());
    print(deployments, o.json, () => formatDeployments(deployments, devices));
  });

mender
  .command('abort')
  .description('abort a deployment: the devices still installing get 409 on their next status report')
  .requiredOption('--deployment <id>', 'deployment id')
  .option('--home <dir>', 'dev stack directory', '.fort-dev')
  .action(async (o: { deployment: string; home: string }) => {
    const d = await devCall(
      client(o.home)
        .post(`dev/v1/mender/deployments/${encodeURIComponent(o.deployment)}/abort`)
        .json<DeploymentRecord>(),
    );
    process.stdout.write(`deployment ${d.id} aborted\n`);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`dev-cloud: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
