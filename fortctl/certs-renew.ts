import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { AdminClient } from '../lib/admin-client.js';
import { renewInstallationCerts, type CertRenewal } from '../lib/pki/renew-installation.js';
import { printable } from './output.js';

type WithAdmin = <T>(call: (admin: AdminClient) => Promise<T>) => Promise<T>;

/** The services that hold trust- or client-zone certificates; `systemctl reload` makes each read its own again. */
const UNITS = ['fort-agent.service', 'fort-engine.service', 'fort-deployment-manager.service'];

/**
 * Has the running services use renewed certificates without a restart: on a systemd host each
 * active unit is reloaded (SIGHUP: the agent and the engine serve the new ones to new handshakes,
 * the deployment manager and the agent present theirs from their next connection); elsewhere
 * (the dev stack, no unit running) the agent is asked over the admin API, and the others are named.
 */
async function reloadServices(withAdmin: WithAdmin): Promise<string[]> {
  if (existsSync('/run/systemd/system')) {
    const active = UNITS.filter((u) => spawnSync('systemctl', ['is-active', '--quiet', u]).status === 0);
    for (const unit of active) execFileSync('systemctl', ['reload', unit], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (active.length > 0) return active;
  }
  const res = await withAdmin((a) => a.reloadCerts()).catch((err: Error) => ({ statusCode: 0, err }));
  return res.statusCode === 200
    ? ['fort-agent (admin API); send SIGHUP to fort-engine and fort-deployment-manager']
    : ['none: the agent could not be asked; it reads the new certificates when it starts'];
}

/**
 * `fortctl certs renew` (root, daily from fort-certs-renew.timer): renews the trust- and
 * client-zone certificates past two thirds of their life from the installation's CAs, then has
 * the services use them. A certificate the fort's CA did not issue (a customer's client API
 * certificate) is only reported, with its expiry.
 */
export async function renewCerts(o: { pki: string; force: boolean; json: boolean }, withAdmin: WithAdmin) {
  const done: CertRenewal[] = await renewInstallationCerts(o.pki, { force: o.force });
  const renewed = done.filter((c) => c.outcome === 'renewed');
  const reloaded = renewed.length > 0 ? await reloadServices(withAdmin) : [];
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ certificates: done, reloaded }, null, 2)}\n`);
    return;
  }
  for (const c of done) {
    const what =
      c.outcome === 'renewed'
        ? `renewed, serial ${c.serialNumber}, valid until ${c.notAfter}`
        : c.outcome === 'not-due'
          ? `not due until ${c.dueAt} (valid until ${c.notAfter})`
          : `${c.reason} (valid until ${c.notAfter})`;
    const line = `${printable(`${c.zone}/${c.role}: ${what}`)}\n`;
    if (c.outcome === 'not-ours') process.stderr.write(line);
    else process.stdout.write(line);
  }
  if (renewed.length > 0) process.stdout.write(`reloaded: ${reloaded.join(', ') || 'no running service'}\n`);
}
