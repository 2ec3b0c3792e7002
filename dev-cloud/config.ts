import { z } from 'zod';
import { loadTomlConfig, resolveTlsFrom } from '../lib/config/load.js';
import { filePath, host, logSection, port } from '../lib/config/fields.js';

/** dev-cloud.toml: the local stand-in for the cloud endpoints (developer/test only). */
export const devCloudConfigSchema = z.strictObject({
  log: logSection(),
  server: z.strictObject({
    host: host().default('127.0.0.1'),
    port: port(),
    tls: z.strictObject({
      cert: filePath().describe('Server certificate from the dev cloud server CA (stands in for public roots)'),
      key: filePath(),
    }),
  }),
});
export type DevCloudConfig = z.output<typeof devCloudConfigSchema>;

export function loadDevCloudConfig(file: string): DevCloudConfig {
  const { dir, config } = loadTomlConfig(file, devCloudConfigSchema);
  return { ...config, server: { ...config.server, tls: resolveTlsFrom(dir, config.server.tls) } };
}
