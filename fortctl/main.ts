#!/usr/bin/env node
// fortctl's composition root: an operator process of its own (ARCHITECTURE.md), meeting the agent
// only over the trust-zone admin API and sharing only lib/ with the daemons; doctor reads their
// configurations through their own `--check-config`.
import { Command, InvalidArgumentError, Option } from 'commander';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, extname } from 'node:path';
import {
  createAdminClient,
  waitForHealth,
  type AdminClient,
  type AdminReload,
  type AgentHealth,
  type AuditEntry,
  type Problem,
} from '../lib/admin-client.js';
import { cliExitCode, FortError, peerProblemCode, problemExitCode } from '../lib/errors.js';
import { loadTlsMaterial } from '../lib/tls.js';
import { readRuntimeEnv } from '../lib/runtime-env.js';
import { defaultFortctlConfig, loadFortctlConfig } from './config.js';
import { parseDurationSeconds, parseSince } from './since.js';
import { certificateReport } from '../lib/certificate-report.js';
import { wholeNumber } from './args.js';
import { printable } from './output.js';
import { logsCommand } from './logs/command.js';
import { doctorCommand } from './doctor/command.js';
import { updateCommand } from './update-status.js';
import { supportBundleCommand } from './support-bundle/command.js';
import { renewCerts } from './certs-renew.js';

/**
 * Exit codes (lib/error-catalogue.ts, shared with fort-deployment-manager): 0 healthy / done, 1 agent
 * not healthy, a state conflict or a usage error, 2 unreachable or refused, 78 bad config, 70 internal error.
 */
const program = new Command('fortctl')
  .description('Operate a fort agent over the trust-zone admin API (mutual TLS)')
  .option(
    '-c, --config <file>',
    'fortctl.toml (default: $FORTCTL_CONFIG, ./.fort-dev/fortctl.toml, /etc/fort/fortctl.toml)',
  )
  .option('--json', 'print machine-readable JSON');

/** One admin API call with the configured identity; the connection is closed afterwards. */
async function withAdmin<T>(call: (admin: AdminClient) => Promise<T>): Promise<T> {
  const opts = program.opts<{ config?: string }>();
  const file = opts.config ?? defaultFortctlConfig(readRuntimeEnv('FORTCTL_CONFIG').configFile, process.cwd());
  const config = loadFortctlConfig(file);
  const admin = createAdminClient({
    url: config.admin.url,
    tls: loadTlsMaterial(config.admin.tls),
    timeoutMs: config.admin.timeout_seconds * 1000,
  });
  return call(admin).finally(admin.close);
}

/**
 * The body of an answer of 200; any other is an operation the agent refused: its problem on
 * stderr, the exit of its code (409 conflict: 1, else mostly 2), and undefined.
 */
function accepted<B extends Problem>(what: string, answer: { statusCode: number; body: B }): B | undefined {
  const { statusCode, body } = answer;
  if (statusCode === 200) return body;
  process.stderr.write(
    `fortctl: ${what} failed (${statusCode}${body.code ? ` ${body.code}` : ''}): ${printable(body.detail ?? JSON.stringify(body))}\n`,
  );
  process.exitCode = problemExitCode(statusCode, body.code);
  return undefined;
}

function printHealth(h: AgentHealth): void {
  process.stdout.write(`agent ${h.fortId}  version ${h.version}  ${h.status}  (up ${h.uptimeSeconds}s)\n`);
  for (const [name, m] of Object.entries(h.modules)) {
    process.stdout.write(`  ${name.padEnd(14)} ${m.state}${m.detail ? `  ${m.detail}` : ''}\n`);
    if (m.info)
      process.stdout.write(
        `  ${''.padEnd(14)} ${Object.entries(m.info)
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ')}\n`,
      );
  }
}

program
  .command('status')
  .description('show agent health and version')
  .action(async () => {
    const { statusCode, body } = await withAdmin((a) => a.health());
    if (statusCode === 403)
      throw new FortError('FORT_ERR_FORBIDDEN', `admin API refused this certificate: ${JSON.stringify(body)}`);
    if (program.opts<{ json?: boolean }>().json) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    else printHealth(body);
    process.exitCode = body.status === 'healthy' || body.status === 'degraded' ? 0 : 1;
  });

program
  .command('drain')
  .description('ask the agent to finish in-flight work and exit (systemd restarts it)')
  .action(async () => {
    const { statusCode, body } = await withAdmin((a) => a.drain());
    process.stdout.write(`${statusCode === 202 ? 'draining' : `refused (${statusCode}): ${JSON.stringify(body)}`}\n`);
    process.exitCode = statusCode === 202 ? 0 : 2;
  });

const events = program.command('events').description('events the cloud sent this fort');
events
  .command('dead')
  .description(
    'dead-lettered events, newest first: when, why (reason code and the field or error), event id and type, size; never the payload',
  )
  .option('--limit <n>', 'how many (1..1000)', wholeNumber(1, 1000), 50)
  .action(async (o: { limit: number }) => {
    const { statusCode, body } = await withAdmin((a) => a.deadLetters(o.limit));
    if (statusCode !== 200)
      throw new FortError('FORT_ERR_ADMIN_LINK', `admin API answered ${statusCode} to GET /admin/v1/events/dead`);
    if (program.opts<{ json?: boolean }>().json) process.stdout.write(`${JSON.stringify(body.deadLetters, null, 2)}\n`);
    else if (body.deadLetters.length === 0) process.stdout.write('no dead-lettered events\n');
    else
      printTable(
        ['seq', 'received', 'reason', 'type', 'event id', 'bytes', 'why'],
        body.deadLetters.map((d) => [
          String(d.seq),
          d.receivedAt,
          d.reasonCode,
          printable(d.type ?? '-'),
          printable(d.eventId ?? '-'),
          String(d.size),
          printable(d.reason),
        ]),
      );
  });

const certs = program.command('certs').description('certificates of this installation');
certs
  .command('check')
  .description(
    "expiry of every certificate the agent uses, and fortctl's own; exit 1 if one expires within --warn-days",
  )
  .option('--warn-days <days>', 'warn when a certificate expires within this many days', wholeNumber(0, 3650), 30)
  .action(async (o: { warnDays: number }) => {
    const { statusCode, body } = await withAdmin((a) => a.certificates());
    if (statusCode !== 200)
      throw new FortError('FORT_ERR_ADMIN_LINK', `admin API answered ${statusCode} to GET /admin/v1/certs`);
    const opts = program.opts<{ config?: string; json?: boolean }>();
    const own = loadFortctlConfig(
      opts.config ?? defaultFortctlConfig(readRuntimeEnv('FORTCTL_CONFIG').configFile, process.cwd()),
    );
    const all = [
      ...body.certificates,
      certificateReport(
        'fortctl client (trust zone)',
        own.admin.tls.cert,
        new X509Certificate(readFileSync(own.admin.tls.cert)),
        0,
      ),
    ];
    const state = (d: number) => (d < 0 ? 'EXPIRED' : d < o.warnDays ? 'WARN' : 'ok');
    if (opts.json)
      process.stdout.write(
        `${JSON.stringify(
          all.map((c) => ({ ...c, state: state(c.daysLeft) })),
          null,
          2,
        )}\n`,
      );
    else
      printTable(
        ['state', 'days', 'not after', 'role', 'subject', 'file'],
        all.map((c) => [
          state(c.daysLeft),
          String(c.daysLeft),
          c.notAfter.slice(0, 10),
          c.role,
          printable(c.subject),
          c.file,
        ]),
      );
    process.exitCode = all.some((c) => c.daysLeft < o.warnDays) ? 1 : 0;
  });

program
  .command('pair')
  .description(
    'pair this fort with the cloud using a one-time code: the agent creates its keys, gets its identity, and restarts with it',
  )
  .requiredOption('--cloud <url>', "the cloud's https URL")
  .requiredOption('--code <code>', 'one-time pairing code from the cloud')
  .option('--tenant <tenant>', 'the tenant you expect: a code of another tenant is refused')
  .option(
    '--wait <seconds>',
    'wait this long for the agent to come back paired (0: do not wait)',
    wholeNumber(0, 3600),
    60,
  )
  .action(async (o: { cloud: string; code: string; tenant?: string; wait: number }) => {
    const body = accepted(
      'pairing',
      await withAdmin((a) => a.pair({ cloud: o.cloud, code: o.code, ...(o.tenant ? { tenant: o.tenant } : {}) })),
    );
    if (!body) return;
    process.stdout.write(
      `paired as ${body.fortId} (tenant ${body.tenant}); the agent restarts with its new identity\n`,
    );
    if (o.wait === 0) return;
    const back = await waitForHealth(
      () => withAdmin((a) => a.health()),
      (h) => h.fortId === body.fortId && (h.status === 'healthy' || h.status === 'degraded'),
      o.wait * 1000,
      500,
    );
    if (back) process.stdout.write(`agent ${back.fortId} is back: ${back.status}\n`);
    else {
      process.stderr.write(
        `fortctl: the agent did not come back as ${body.fortId} within ${o.wait} s (fortctl status shows why)\n`,
      );
      process.exitCode = 1;
    }
  });

certs
  .command('renew')
  .description(
    "renew the trust- and client-zone certificates past two thirds of their life from the installation's CAs (root: the CA keys are root's), then have the running services use them without a restart; fort-certs-renew.timer runs it daily",
  )
  .option(
    '--pki <dir>',
    "the installation's PKI (default: two levels above fortctl's own certificate, /etc/fort/pki as installed)",
  )
  .option('--force', 'renew every certificate the CAs issued, due or not')
  .action(async (o: { pki?: string; force?: boolean }) => {
    const opts = program.opts<{ config?: string; json?: boolean }>();
    const own = loadFortctlConfig(
      opts.config ?? defaultFortctlConfig(readRuntimeEnv('FORTCTL_CONFIG').configFile, process.cwd()),
    );
    await renewCerts(
      { pki: o.pki ?? dirname(dirname(own.admin.tls.cert)), force: o.force === true, json: opts.json === true },
      withAdmin,
    );
  });

program
  .command('reload-certs')
  .description(
    'serve the admin and client API certificates now on disk (as SIGHUP / systemctl reload fort-agent does); open connections and the IoT link stay up',
  )
  .action(async () => {
    const body = accepted('reloading certificates', await withAdmin((a) => a.reloadCerts()));
    if (!body) return;
    if (program.opts<{ json?: boolean }>().json) process.stdout.write(`${JSON.stringify(body.served, null, 2)}\n`);
    else
      printTable(
        ['role', 'serial', 'not after', 'subject', 'file'],
        body.served.map((c) => [c.role, c.serialNumber, c.notAfter.slice(0, 10), printable(c.subject), c.file]),
      );
  });

program
  .command('log-level')
  .description(
    "show each service's log level, or set one for a while (it reverts by itself), e.g. log-level debug --for 10m --service engine",
  )
  .argument('[level]', 'fatal, error, warn, info, debug or trace; none: show the levels')
  .addOption(
    new Option('--service <name>', 'whose level').choices(['agent', 'engine', 'deployment-manager']).default('agent'),
  )
  .addOption(
    new Option('--for <duration>', 'how long before it reverts (90s, 10m, 2h, at most 1d)')
      .argParser((v) => {
        try {
          return parseDurationSeconds(v);
        } catch (err) {
          throw new InvalidArgumentError((err as Error).message);
        }
      })
      .default(600, '10m'),
  )
  .action(async (level: string | undefined, opts: { service: string; for: number }) => {
    const json = program.opts<{ json?: boolean }>().json;
    if (!level) {
      const { statusCode, body } = await withAdmin((a) => a.logLevels());
      if (statusCode !== 200)
        throw new FortError(peerProblemCode(statusCode, (body as Problem).code), `admin API answered ${statusCode}`);
      if (json) return void process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
      const row = (
        name: string,
        v: { level: string; configured?: string; until?: string } | { error: string } | null,
      ) =>
        !v
          ? [name, '(configured)', '', '']
          : 'error' in v
            ? [name, '?', '', printable(v.error)]
            : [name, v.level, v.configured ?? '', v.until ? `until ${v.until}` : ''];
      printTable(
        ['service', 'level', 'configured', ''],
        [
          row('agent', body.agent),
          ...(body.engine ? [row('engine', body.engine)] : []),
          row('deployment-manager', body['deployment-manager']),
        ],
      );
      return;
    }
    const body = accepted(
      `setting the ${opts.service}'s log level`,
      await withAdmin((a) => a.setLogLevel(opts.service, level, opts.for)),
    );
    if (!body) return;
    if (json) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    else
      process.stdout.write(
        `${opts.service}: ${body.level} until ${body.until}${body.applies ? ` (${body.applies})` : ''}\n`,
      );
  });

program
  .command('rotate-keys')
  .description(
    "new JWT key and device certificate for this fort, registered with the cloud (the old ones stay valid for the cloud's overlap); the agent restarts with them",
  )
  .action(async () => {
    const body = accepted('key rotation', await withAdmin((a) => a.rotateKeys()));
    if (!body) return;
    process.stdout.write(
      `keys of ${body.fortId} rotated; the old ones are accepted until ${body.previousValidUntil}; the agent restarts with the new ones\n`,
    );
  });

program
  .command('unpair')
  .description(
    'ask the cloud to revoke this fort, then forget its identity and keys (its data stays); the agent restarts unpaired',
  )
  .option('--force', 'forget the identity even when the cloud cannot be told (revoke it there yourself)')
  .action(async (o: { force?: boolean }) => {
    const body = accepted('unpair', await withAdmin((a) => a.unpair(o.force === true)));
    if (!body) return;
    process.stdout.write(
      `unpaired ${body.fortId}${body.cloudTold ? ' (revoked in the cloud)' : ' (the cloud was NOT told: revoke it there)'}; its data is kept; the agent restarts unpaired\n`,
    );
  });

const cell = (v: string, width: number) => (v.length > width ? `${v.slice(0, width - 1)}…` : v.padEnd(width));

/** Columns padded to their widest cell (at most 60); the last column is never cut. */
function printTable(header: string[], rows: string[][]): void {
  const safe = rows.map((r) => r.map(printable));
  const widths = header.map((h, i) => Math.min(60, Math.max(h.length, ...safe.map((r) => r[i]!.length))));
  for (const r of [header, ...safe])
    process.stdout.write(`${r.map((v, i) => (i === r.length - 1 ? v : cell(v, widths[i]!))).join('  ')}\n`);
}

function printAudit(entries: readonly AuditEntry[]): void {
  const decision = (d: unknown) =>
    d && typeof d === 'object' && typeof (d as { decision?: unknown }).decision === 'string'
      ? (d as { decision: string }).decision
      : '-';
  printTable(
    ['TS', 'ACTOR', 'ACTION', 'TARGET', 'DECISION'],
    entries.map((e) => [e.ts, e.actor, e.action, e.target ?? '-', decision(e.detail)]),
  );
}

/** A non-2xx admin answer as an error of the agent's code: 403 is a refused identity, anything else the agent's problem detail. */
function refusal(statusCode: number, body: Problem): FortError {
  if (statusCode === 403)
    return new FortError('FORT_ERR_FORBIDDEN', `admin API refused this certificate: ${body.detail ?? ''}`);
  return new FortError(
    peerProblemCode(statusCode, body.code),
    `${body.code ?? `HTTP ${statusCode}`}: ${body.detail ?? body.title ?? 'request refused'}`,
  );
}

const json = () => program.opts<{ json?: boolean }>().json === true;

/** A file named on the command line; one that cannot be read is a usage error (exit 1). */
function readableFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new FortError(
      'FORT_ERR_USAGE',
      `${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
}

const sinceArg = (v: string) => {
  try {
    return parseSince(v, new Date());
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};
const limitArg = (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 1000) throw new InvalidArgumentError('expected an integer 1..1000');
  return n;
};

program
  .command('audit')
  .description('show audit entries (who read or was refused what), oldest first')
  .addOption(
    new Option('--since <when>', 'a duration back from now (30m, 1h, 2d) or an ISO time')
      .argParser(sinceArg)
      .default(undefined, '1h'),
  )
  .addOption(
    new Option('--limit <n>', 'at most this many entries, the newest (1..1000)').argParser(limitArg).default(200),
  )
  .action(async (opts: { since?: Date; limit: number }) => {
    const since = opts.since ?? parseSince('1h', new Date());
    const { statusCode, body } = await withAdmin((a) => a.audit(since, opts.limit));
    if (statusCode !== 200)
      throw new FortError(
        peerProblemCode(statusCode, (body as Problem).code),
        `admin API answered ${statusCode}: ${JSON.stringify(body)}`,
      );
    if (program.opts<{ json?: boolean }>().json) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    else if (body.entries.length === 0) process.stdout.write(`no audit entries since ${since.toISOString()}\n`);
    else {
      printAudit(body.entries);
      if (body.entries.length >= opts.limit)
        process.stderr.write(
          `fortctl: showing the newest ${opts.limit} entries; there may be more (narrow --since or raise --limit)\n`,
        );
    }
    process.exitCode = 0;
  });

const apps = program.command('apps').description('apps registered on this fort (only the operator registers apps)');
apps
  .command('add <file>')
  .description('register or update an app from its definition (.toml or .json); checked before anything is stored')
  .action(async (file: string) => {
    const format = extname(file).toLowerCase() === '.json' ? 'json' : 'toml';
    const text = readableFile(file);
    const { statusCode, body } = await withAdmin((a) => a.addApp(text, format));
    if (statusCode === 422) {
      process.stderr.write(`fortctl: ${file}: ${body.detail}\n`);
      process.exitCode = problemExitCode(statusCode, body.code);
      return;
    }
    if (statusCode !== 200 && statusCode !== 201) throw refusal(statusCode, body);
    process.stdout.write(
      json()
        ? `${JSON.stringify(body, null, 2)}\n`
        : `${body.created ? 'registered' : 'updated'} app ${body.app.id} (${body.app.name}, space ${body.app.space})\n`,
    );
  });
apps
  .command('list')
  .description('registered apps with their current version')
  .action(async () => {
    const { statusCode, body } = await withAdmin((a) => a.apps());
    if (statusCode !== 200) throw refusal(statusCode, body as Problem);
    if (json()) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    else if (body.apps.length === 0) process.stdout.write('no apps registered (fortctl apps add <file>)\n');
    else
      printTable(
        ['ID', 'NAME', 'SPACE', 'VERSION', 'ROWS', 'TABLES'],
        body.apps.map((a) => [
          a.id,
          a.name,
          a.space,
          a.versionId === null ? '-' : String(a.versionId),
          a.rows === null ? '-' : String(a.rows),
          a.tables.join(','),
        ]),
      );
  });

const printReloads = (list: readonly AdminReload[]) =>
  printTable(
    ['ID', 'APP', 'STATE', 'REQUESTED', 'ATTEMPTS', 'ROWS', 'ERROR'],
    list.map((r) => [
      r.id,
      r.appId,
      r.state,
      r.requestedAt,
      String(r.attempts),
      r.rows === null ? '-' : String(r.rows),
      r.errorCode ? `${r.errorCode}: ${r.errorMessage ?? ''}` : '',
    ]),
  );

const reloads = program.command('reloads').description('the reload queue: list, start, cancel');
reloads
  .command('list')
  .description('recent reloads, newest first')
  .option('--app <id>', 'only this app')
  .option('--state <state>', 'queued, running, succeeded, failed, cancelled or interrupted')
  .addOption(new Option('--limit <n>', 'at most this many (1..1000)').argParser(limitArg).default(50))
  .action(async (o: { app?: string; state?: string; limit: number }) => {
    const { statusCode, body } = await withAdmin((a) => a.reloads({ app: o.app, state: o.state, limit: o.limit }));
    if (statusCode !== 200) throw refusal(statusCode, body);
    if (json()) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    else if (body.reloads.length === 0) process.stdout.write('no reloads\n');
    else printReloads(body.reloads);
  });
reloads
  .command('start <app>')
  .description('queue a reload of an app now (joins one already queued)')
  .action(async (app: string) => {
    const { statusCode, body } = await withAdmin((a) => a.startReload(app));
    if (statusCode !== 202) throw refusal(statusCode, body);
    process.stdout.write(
      json()
        ? `${JSON.stringify(body, null, 2)}\n`
        : `${body.coalesced ? 'joined queued' : 'queued'} reload ${body.reload.id} of ${app}\n`,
    );
  });
reloads
  .command('cancel <id>')
  .description('cancel a queued or running reload')
  .action(async (id: string) => {
    const { statusCode, body } = await withAdmin((a) => a.cancelReload(id));
    if (statusCode !== 202) throw refusal(statusCode, body);
    process.stdout.write(
      `${body.result === 'cancelled' ? 'cancelled' : 'cancelling (the running load stops shortly)'} ${id}\n`,
    );
  });

program.addCommand(logsCommand());
program.addCommand(doctorCommand());
program.addCommand(updateCommand(withAdmin));
program.addCommand(supportBundleCommand(withAdmin));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`fortctl: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = cliExitCode(err);
}
