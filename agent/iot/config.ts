import { z } from 'zod';
import { filePath, httpsUrl, identifier, intRange, nonEmpty } from '../../lib/config/fields.js';
import { resolveFrom, resolveTlsFrom } from '../../lib/config/load.js';

const staticCredentials = z.strictObject({
  source: z.literal('static'),
  file: filePath().describe('0600 JSON file {"accessKeyId", "secretAccessKey"}'),
});

const providerCredentials = z.strictObject({
  source: z.literal('provider'),
  url: httpsUrl().describe('IoT credentials provider, e.g. https://<prefix>.credentials.iot.<region>.amazonaws.com'),
  role_alias: identifier().describe('Role alias the credentials are issued for'),
  refresh_before_seconds: intRange(30, 3600).default(300).describe('Refresh this long before the credentials expire'),
  timeout_seconds: intRange(1, 120).default(10).describe('Timeout of one credentials request'),
  tls: z.strictObject({
    ca: filePath().describe("CA the provider's server certificate must chain to"),
    cert: filePath().describe("Device certificate (from the cloud's device CA)"),
    key: filePath().describe('Device private key; must be mode 0600'),
  }),
});

/** `[iot]` of agent.toml: the outbound link through which the cloud pushes events. */
export const iotSection = () =>
  z.strictObject({
    endpoint: nonEmpty('host[:port] of the IoT data endpoint').describe(
      'IoT data endpoint host[:port] (port 443 when omitted)',
    ),
    region: identifier().describe('AWS region the endpoint is in (part of the SigV4 scope)'),
    thing_name: identifier().optional().describe('MQTT client id / thing name (default: fort.id)'),
    ca: filePath().optional().describe("CA bundle for the endpoint's certificate (default: system roots)"),
    protocol_version: z
      .union([z.literal(4), z.literal(5)], { error: 'expected 4 (MQTT 3.1.1) or 5' })
      .default(4)
      .describe('MQTT protocol version: 4 (3.1.1) or 5; AWS IoT takes both, the dev bridge 3.1.1'),
    keepalive_seconds: intRange(30, 1200).default(300).describe('MQTT keepalive (AWS allows 30..1200)'),
    reconnect_base_ms: intRange(100, 60_000).default(1000).describe('First reconnect backoff ceiling (full jitter)'),
    reconnect_cap_ms: intRange(1000, 600_000).default(120_000).describe('Largest reconnect backoff'),
    outbox_max_messages: intRange(10, 10_000_000)
      .default(100_000)
      .describe('Outbox bound; the oldest status messages are dropped (and counted) beyond it'),
    publish_rate_per_second: intRange(1, 100).default(50).describe('Publish rate limit (AWS: ~100/s per connection)'),
    dedup_hours: intRange(2, 24 * 365)
      .default(168)
      .describe(
        "How long event ids are remembered to drop redeliveries; must outlast the broker's persistent session (AWS: 1 h), else a late redelivery runs twice",
      ),
    credentials: z
      .discriminatedUnion('source', [staticCredentials, providerCredentials], {
        error: 'expected source = "static" or "provider"',
      })
      .describe('Where SigV4 credentials come from'),
  });

export type IotConfig = z.output<ReturnType<typeof iotSection>>;

export function resolveIotPaths(dir: string, iot: IotConfig): IotConfig {
  const credentials =
    iot.credentials.source === 'static'
      ? { ...iot.credentials, file: resolveFrom(dir, iot.credentials.file) }
      : { ...iot.credentials, tls: resolveTlsFrom(dir, iot.credentials.tls) };
  return { ...iot, ...(iot.ca ? { ca: resolveFrom(dir, iot.ca) } : {}), credentials };
}
