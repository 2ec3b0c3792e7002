import { existsSync } from 'node:fs';
import { z } from 'zod';
import { loadTomlConfig, resolveFrom, resolveTlsFrom } from '../lib/config/load.js';
import { httpsUrl, tlsFiles } from '../lib/config/fields.js';

/** fortctl.toml: where the admin API is, and the fortctl trust-zone identity. */
export const fortctlConfigSchema = z.strictObject({
  admin: z.strictObject({
    url: httpsUrl().describe('URL of the agent admin API, e.g. https://127.0.0.1:8444'),
    timeout_seconds: z
      .number({ error: 'expected a number of seconds' })
      .positive({ error: 'expected a positive number of seconds' })
      .default(5)
      .describe('Timeout of one admin API call'),
    tls: tlsFiles().describe('ca = trust-zone root; cert/key = the fortctl client certificate'),
  }),
});
export type FortctlConfig = z.output<typeof fortctlConfigSchema>;

/**
 * The file an env var names, else the dev stack's `name` in the working directory, else
 * /etc/fort's. Never the working directory's as root (`sudo fortctl` in a directory another
 * user can write must not load that user's config, keys or CA).
 */
export function defaultConfigFile(
  name: string,
  envFile: string | undefined,
  cwd: string,
  asRoot = process.geteuid?.() === 0,
): string {
  if (envFile) return envFile;
  const dev = resolveFrom(cwd, `.fort-dev/${name}`);
  return !asRoot && existsSync(dev) ? dev : `/etc/fort/${name}`;
}

/** --config, else $FORTCTL_CONFIG, else (not as root) the dev stack's file in the working directory, else /etc. */
export const defaultFortctlConfig = (envFile: string | undefined, cwd: string, asRoot?: boolean): string =>
  defaultConfigFile('fortctl.toml', envFile, cwd, asRoot);

export function loadFortctlConfig(file: string): FortctlConfig {
  const { dir, config } = loadTomlConfig(file, fortctlConfigSchema);
  return { admin: { ...config.admin, tls: resolveTlsFrom(dir, config.admin.tls) } };
}
