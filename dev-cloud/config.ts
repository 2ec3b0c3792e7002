import { z } from 'zod';
import { loadTomlConfig, resolveFrom, resolveTlsFrom } from '../lib/config/load.js';
import { filePath, host, identifier, intRange, logSection, port } from '../lib/config/fields.js';

/** dev-cloud.toml: the local stand-in for the cloud endpoints (developer/test only). */
export const devCloudConfigSchema = z.strictObject({
  log: logSection(),
  server: z.strictObject({
    host: host().default('127.0.0.1'),
    port: port().describe('Cloud API (HTTPS) port'),
    tls: z.strictObject({
      cert: filePath().describe('Server certificate from the dev cloud server CA (stands in for public roots)'),
      key: filePath(),
    }),
  }),
  iot: z.strictObject({
    port: port().describe('IoT bridge (MQTT over WSS) port'),
    region: identifier().default('eu-west-1'),
    max_connection_seconds: intRange(1, 86_400).default(86_400).describe('AWS closes SigV4 connections after 24 h'),
    static_credentials_file: filePath().optional().describe('0600 JSON {"accessKeyId","secretAccessKey"} the bridge accepts'),
  }).optional(),
  testing: z.strictObject({
    clock_offset_seconds: z.int().min(-86_400).max(86_400).default(0).describe('Pretend the cloud clock is off by this much (to test fort clock-skew handling)'),
  }).default({ clock_offset_seconds: 0 }),
  credentials_provider: z.strictObject({
    port: port(),
    role_alias: identifier().default('fort-iot-role'),
    lifetime_seconds: intRange(1, 43_200).default(3600).describe('AWS: 900..43200; shorter in tests'),
    device_ca: filePath().describe('CA of device certificates (mutual TLS)'),
  }).optional(),
});
export type DevCloudConfig = z.output<typeof devCloudConfigSchema>;

export function loadDevCloudConfig(file: string): DevCloudConfig {
  const { dir, config } = loadTomlConfig(file, devCloudConfigSchema);
  const abs = (p: string) => resolveFrom(dir, p);
  return {
    ...config,
    server: { ...config.server, tls: resolveTlsFrom(dir, config.server.tls) },
    iot: config.iot && { ...config.iot, ...(config.iot.static_credentials_file ? { static_credentials_file: abs(config.iot.static_credentials_file) } : {}) },
    credentials_provider: config.credentials_provider && { ...config.credentials_provider, device_ca: abs(config.credentials_provider.device_ca) },
  };
}
