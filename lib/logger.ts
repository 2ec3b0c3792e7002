import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Field paths whose values never reach a log line. pino's redaction matches exact paths
 * (one wildcard level), so secrets are listed both at top level and one object deep.
 */
const SECRET_KEYS = [
  'authorization', 'Authorization', 'token', 'accessToken', 'access_token', 'refreshToken', 'idToken',
  'sessionToken', 'secretAccessKey', 'password', 'passphrase', 'key', 'privateKey', 'signature',
  'clientAssertion', 'client_assertion', 'cookie', 'x-men-signature', 'X-MEN-Signature', 'jwt',
];
export const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.headers.${k}`),
  'req.headers.authorization',
  'req.headers.cookie',
];

export interface LoggerOptions {
  level: string;
  name: string;
  destination?: DestinationStream;
}

/** JSON lines to stdout: journald stores them, `journalctl -o cat | jq` reads them. */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
