import { existsSync } from 'node:fs';
import { assertPrivateFileMode, readPrivateKeyFile } from '../../lib/files.js';
import { loadTlsMaterial, type TlsFilePaths } from '../../lib/tls.js';
import { certificateReport } from '../../lib/certificate-report.js';
import { fail, ok, reason, warn, type Check } from './check.js';
import type { Loaded } from './configs.js';
import type { UpdateServer } from './update-server.js';

/** A certificate expiring within this many days is a warning (as `fortctl certs check`). */
const WARN_DAYS = 30;

/**
 * Key and certificate files each process loads at start, loaded the same way (lib/tls.ts: key
 * 0600, PEM, not expired, key matches the certificate), plus the days each certificate has left.
 */
export function materialChecks(l: Loaded, update: UpdateServer | undefined, now: Date): Check[] {
  const checks: Check[] = [];
  const iot = l.agent?.iot?.credentials;
  if (l.agent) {
    checks.push(certificate('admin API', l.agent.admin.tls, now), certificate('client API', l.agent.api.tls, now));
    if (iot?.source === 'provider') checks.push(certificate('IoT device', iot.tls, now));
    if (iot?.source === 'static')
      checks.push(key('IoT static credentials', iot.file, () => assertPrivateFileMode(iot.file, 'credentials file')));
    const cloudKey = l.agent.cloud?.private_key;
    if (cloudKey) checks.push(key('cloud client', cloudKey, () => readPrivateKeyFile(cloudKey, 'cloud client key')));
  }
  if (l.dm) checks.push(certificate('deployment manager', l.dm.agent.tls, now));
  if (update) {
    checks.push(certificate('update device', update.tls, now));
    checks.push(
      existsSync(update.authKey)
        ? key('update auth', update.authKey, () => readPrivateKeyFile(update.authKey, 'update auth key'))
        : warn(
            'key update auth',
            `${update.authKey} does not exist yet: the deployment manager makes it at its first start`,
          ),
    );
  }
  if (l.fortctl) checks.push(certificate('fortctl', l.fortctl.admin.tls, now));
  return checks;
}

function certificate(role: string, paths: TlsFilePaths, now: Date): Check {
  const name = `certificate ${role}`;
  try {
    const m = loadTlsMaterial(paths, now);
    const r = certificateReport(role, paths.cert, m.leaf, 0, now);
    const detail = `${r.subject}, key private and matching, expires ${r.notAfter.slice(0, 10)} (${r.daysLeft} days left)`;
    return r.daysLeft < WARN_DAYS ? warn(name, `${detail}: renew it`) : ok(name, detail);
  } catch (err) {
    return fail(name, reason(err));
  }
}

/** A secret that is not a TLS key: private (0600) and readable as what it is. */
function key(role: string, file: string, load: () => unknown): Check {
  try {
    load();
    return ok(`key ${role}`, `${file} private`);
  } catch (err) {
    return fail(`key ${role}`, reason(err));
  }
}
