import { z } from 'zod';

/** Reusable config field types whose messages read well after `field.path: `. */
export const port = () =>
  z
    .int({ error: 'expected integer 1..65535' })
    .min(1, { error: 'expected integer 1..65535' })
    .max(65535, { error: 'expected integer 1..65535' });

export const intRange = (min: number, max: number) => {
  const error = `expected integer ${min}..${max}`;
  return z.int({ error }).min(min, { error }).max(max, { error });
};

export const nonEmpty = (what = 'a non-empty string') =>
  z
    .string({ error: `expected ${what}` })
    .trim()
    .min(1, { error: `expected ${what}` });

export const filePath = () => nonEmpty('a file path');

export const host = () => nonEmpty('a host name or IP address');

export const httpsUrl = () => z.url({ protocol: /^https$/, error: 'expected an https:// URL' });

/** An origin a browser sends (scheme, host, port; no path): what CORS compares exactly. */
export const httpsOrigin = () =>
  nonEmpty('an https origin').refine((s) => /^https:\/\/[^/?#@\s]+$/.test(s), {
    error: 'expected an origin like https://hub.example.com[:port] (no path)',
  });

export const logLevel = () =>
  z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'], {
    error: 'expected one of fatal, error, warn, info, debug, trace',
  });

export const identifier = () =>
  z.string({ error: 'expected an identifier' }).regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, {
    error: 'expected 1-128 characters of letters, digits, ".", "_", "-" (not starting with a symbol)',
  });

/** TLS files of one endpoint; `ca` is the only root its peer may chain to. */
export const tlsFiles = () =>
  z.strictObject({
    ca: filePath().describe('PEM CA bundle the peer certificate must chain to'),
    cert: filePath().describe('PEM certificate (leaf first, then intermediates)'),
    key: filePath().describe('PEM private key; must be mode 0600'),
  });

/** `[log]`, shared by every process. */
export const logSection = () =>
  z.strictObject({ level: logLevel().default('info').describe('pino log level') }).default({ level: 'info' });

/** `[lifecycle]`, shared by the daemons. */
export const lifecycleSection = () =>
  z
    .strictObject({
      stop_timeout_seconds: intRange(1, 600)
        .default(10)
        .describe(
          'Longest a graceful stop (SIGTERM or, for the agent, a drain) may take before the process exits anyway',
        ),
    })
    .default({ stop_timeout_seconds: 10 });
