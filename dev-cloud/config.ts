import { Cron } from 'croner';
import { z } from 'zod';
import { loadTomlConfig, resolveFrom, resolveTlsFrom } from '../lib/config/load.js';
import { filePath, host, httpsUrl, identifier, intRange, logSection, nonEmpty, port } from '../lib/config/fields.js';

/** `https://host[:port]` and nothing else: browsers compare origins exactly. */
const httpsOrigin = () =>
  httpsUrl().refine((s) => URL.canParse(s) && new URL(s).origin === s, {
    error: 'expected an https origin such as https://127.0.0.1:8443 (no path, no trailing slash)',
  });

/** A croner pattern: 5 fields, or 6 with seconds first (`0 0 * * * *`), or a nickname such as `@hourly`. */
const cronPattern = () =>
  nonEmpty('a cron pattern').superRefine((s, ctx) => {
    try {
      new Cron(s, { paused: true }).stop();
    } catch (err) {
      const why = (err as Error).message
        .replace(/^CronPattern: /, '')
        .replace(/ \('.*'\)/, '')
        .replace(/\.$/, '');
      ctx.addIssue({ code: 'custom', message: `expected a cron pattern (5 fields, or 6 with seconds first): ${why}` });
    }
  });

const schedulerSection = () =>
  z
    .strictObject({
      schedules: z
        .array(
          z.strictObject({
            id: identifier()
              .optional()
              .describe('Sent as data.scheduleId; default schedule-<n> (n from 1, in file order)'),
            fort: identifier().describe('Fort id the reload.requested event goes to (forts/<fort>/events)'),
            app: identifier().describe('App to reload (data.appId)'),
            cron: cronPattern().describe(
              "When (croner syntax, the cloud's local time; a 6th leading field is seconds)",
            ),
          }),
        )
        .default([])
        .superRefine((list, ctx) => {
          const seen = new Set<string>();
          list.forEach((s, i) => {
            const id = s.id ?? `schedule-${i + 1}`;
            if (seen.has(id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate schedule id ${id}` });
            seen.add(id);
          });
        })
        .transform((list) => list.map((s, i) => ({ ...s, id: s.id ?? `schedule-${i + 1}` }))),
    })
    .describe('Reload scheduler: publishes reload.requested on a cron schedule; needs [iot]');

const menderSection = () =>
  z
    .strictObject({
      port: port().describe(
        'Update server (Mender device API) port: mutual TLS, client certificates from device_ca only',
      ),
      device_ca: filePath().describe(
        'CA of device certificates (the fort authenticates and downloads with its device certificate)',
      ),
      artifacts_dir: filePath().describe('Uploaded artifacts (<id>.mender); the ones there at start are served again'),
      public_url: httpsUrl()
        .refine((s) => !s.endsWith('/'), { error: 'expected an https URL without a trailing slash' })
        .optional()
        .describe('Base URL of download links; default https://<server.host>:<port>'),
      download_link_seconds: intRange(1, 604_800)
        .default(300)
        .describe('Lifetime of presigned download links (source.expire)'),
      token_seconds: intRange(1, 604_800).default(3600).describe('Lifetime of device JWTs'),
      retry: z
        .strictObject({
          pending_seconds: intRange(1, 86_400)
            .default(60)
            .describe('Retry-After of the 401 a device awaiting acceptance gets'),
          unavailable_seconds: intRange(1, 86_400)
            .default(30)
            .describe('Retry-After of the 503s while unavailable (fault injection)'),
        })
        .default({ pending_seconds: 60, unavailable_seconds: 30 })
        .describe('Retry hints sent to devices'),
    })
    .describe('Mender-compatible update server (shared/PROTOCOLS.md "Mender device API"); absent = not served');

/** dev-cloud.toml: the local stand-in for the cloud endpoints (developer/test only). */
export const devCloudConfigSchema = z
  .strictObject({
    log: logSection(),
    server: z.strictObject({
      host: host().default('127.0.0.1'),
      port: port().describe('Cloud API (HTTPS) port'),
      tls: z.strictObject({
        cert: filePath().describe('Server certificate from the dev cloud server CA (stands in for public roots)'),
        key: filePath(),
      }),
    }),
    iot: z
      .strictObject({
        port: port().describe('IoT bridge (MQTT over WSS) port'),
        region: identifier().default('eu-west-1'),
        max_connection_seconds: intRange(1, 86_400).default(86_400).describe('AWS closes SigV4 connections after 24 h'),
        static_credentials_file: filePath()
          .optional()
          .describe('0600 JSON {"accessKeyId","secretAccessKey"} the bridge accepts'),
      })
      .optional(),
    testing: z
      .strictObject({
        clock_offset_seconds: z
          .int()
          .min(-86_400)
          .max(86_400)
          .default(0)
          .describe('Pretend the cloud clock is off by this much (to test fort clock-skew handling)'),
      })
      .default({ clock_offset_seconds: 0 }),
    cloud_api: z
      .strictObject({
        issuer: httpsUrl()
          .refine((s) => !s.endsWith('/'), { error: 'expected an https URL without a trailing slash' })
          .optional()
          .describe(
            'iss of user tokens; the token endpoint (the aud of client assertions) is <issuer>/oauth/token. Default https://<server.host>:<server.port>',
          ),
        access_token_seconds: intRange(30, 3600)
          .default(600)
          .describe('Lifetime of the access tokens forts get from /oauth/token'),
        user_token_seconds: intRange(1, 86_400)
          .default(3600)
          .describe('Lifetime of dev user tokens when a login does not ask for one'),
        policy: filePath()
          .optional()
          .describe('JSON policy file (format: dev-cloud/CLOUD-API.md); absent = every decision is allow: false'),
        fort_origins: z
          .array(httpsOrigin())
          .default([])
          .describe('Fort client API origins the redirect login (GET /dev/v1/login) may send a token to'),
        clients: z
          .array(
            z.strictObject({
              id: identifier().describe('Client id: the fort id'),
              public_key: filePath().describe('PEM public key of its client assertions (P-256: ES256, Ed25519: EdDSA)'),
            }),
          )
          .default([])
          .describe('Forts registered at the token endpoint'),
      })
      .optional()
      .describe('Cloud API: token endpoint, authorisation, user tokens, hub; absent = not served'),
    credentials_provider: z
      .strictObject({
        port: port(),
        role_alias: identifier().default('fort-iot-role'),
        lifetime_seconds: intRange(1, 43_200).default(3600).describe('AWS: 900..43200; shorter in tests'),
        device_ca: filePath().describe('CA of device certificates (mutual TLS)'),
      })
      .optional(),
    scheduler: schedulerSection().optional(),
    mender: menderSection().optional(),
    pairing: z
      .strictObject({
        state_dir: filePath().describe('Where paired forts are kept (forts.json), across restarts'),
        device_ca: filePath().describe('CA that signs the device certificates of paired forts (PEM)'),
        device_ca_key: filePath().describe('Its private key (PKCS#8 PEM); must be mode 0600'),
        server_ca: filePath().describe("CA of the dev cloud's server certificates, sent to paired forts"),
        artifact_key: filePath().optional().describe('Public key that signs update artifacts, sent to paired forts'),
        code_seconds: intRange(60, 604_800)
          .default(600)
          .describe('Lifetime of a pairing code when its request does not say'),
        attempts_per_minute: intRange(1, 10_000).default(10).describe('Pairing attempts per source address per minute'),
        device_cert_days: intRange(1, 3650).default(365).describe('Validity of issued device certificates'),
        device_cert_seconds: intRange(10, 315_360_000)
          .optional()
          .describe(
            'Validity of issued device certificates in seconds, instead of device_cert_days: certificates that live minutes, to watch forts renew them',
          ),
        key_overlap_seconds: intRange(1, 604_800)
          .default(3600)
          .describe(
            'After a fort rotates its keys, how long its old JWT key and device certificate are still accepted',
          ),
      })
      .optional()
      .describe('Pairing endpoint (one-time codes → fort identity); needs [cloud_api]'),
  })
  .superRefine((c, ctx) => {
    // The value is not echoed back: the whole section would be.
    if (c.pairing && !c.cloud_api)
      ctx.addIssue({
        code: 'custom',
        path: ['pairing'],
        params: { redactValue: true },
        message: 'needs a [cloud_api] section (paired forts get their tokens there)',
      });
    if (c.scheduler && !c.iot)
      ctx.addIssue({
        code: 'custom',
        path: ['scheduler'],
        params: { redactValue: true },
        message: 'needs an [iot] section (reload.requested goes out over the IoT bridge)',
      });
  });
export type DevCloudConfig = z.output<typeof devCloudConfigSchema>;

export function loadDevCloudConfig(file: string): DevCloudConfig {
  const { dir, config } = loadTomlConfig(file, devCloudConfigSchema);
  const abs = (p: string) => resolveFrom(dir, p);
  return {
    ...config,
    server: { ...config.server, tls: resolveTlsFrom(dir, config.server.tls) },
    iot: config.iot && {
      ...config.iot,
      ...(config.iot.static_credentials_file
        ? { static_credentials_file: abs(config.iot.static_credentials_file) }
        : {}),
    },
    credentials_provider: config.credentials_provider && {
      ...config.credentials_provider,
      device_ca: abs(config.credentials_provider.device_ca),
    },
    mender: config.mender && {
      ...config.mender,
      device_ca: abs(config.mender.device_ca),
      artifacts_dir: abs(config.mender.artifacts_dir),
    },
    pairing: config.pairing && {
      ...config.pairing,
      state_dir: abs(config.pairing.state_dir),
      device_ca: abs(config.pairing.device_ca),
      device_ca_key: abs(config.pairing.device_ca_key),
      server_ca: abs(config.pairing.server_ca),
      ...(config.pairing.artifact_key ? { artifact_key: abs(config.pairing.artifact_key) } : {}),
    },
    cloud_api: config.cloud_api && {
      ...config.cloud_api,
      ...(config.cloud_api.policy ? { policy: abs(config.cloud_api.policy) } : {}),
      clients: config.cloud_api.clients.map((c) => ({ ...c, public_key: abs(c.public_key) })),
    },
  };
}

/** The configured issuer, or this server's own URL. */
export function cloudApiIssuer(config: Pick<DevCloudConfig, 'server' | 'cloud_api'>): string {
  const h = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  return config.cloud_api?.issuer ?? `https://${h}:${config.server.port}`;
}
