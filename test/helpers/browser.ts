import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import type { PkiPaths } from '../../lib/pki/layout.js';
import { tempDir } from './fort.js';

/** A HOME whose NSS database trusts the dev cloud's and the client zone's CAs (never "ignore certificate errors"). */
export function browserHome(pki: PkiPaths): string {
  const home = tempDir('chromium');
  const db = `sql:${join(home, '.pki/nssdb')}`;
  mkdirSync(join(home, '.pki/nssdb'), { recursive: true });
  execFileSync('certutil', ['-d', db, '-N', '--empty-password']);
  execFileSync('certutil', ['-d', db, '-A', '-t', 'C,,', '-n', 'fort-cloud-server-ca', '-i', pki.cloudServer.ca]);
  execFileSync('certutil', ['-d', db, '-A', '-t', 'C,,', '-n', 'fort-client-ca', '-i', pki.clientZone.ca]);
  return home;
}

/** Debian's Chromium (never a downloaded browser), headless, trusting the dev CAs through `browserHome`. */
export function launchChromium(pki: PkiPaths): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    env: { ...process.env, HOME: browserHome(pki) },
  });
}
