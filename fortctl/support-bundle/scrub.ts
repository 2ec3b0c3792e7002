import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { redactSecrets } from '../../lib/logger.js';

const CENSOR = '[redacted]';

/**
 * What must never leave the host in a bundle, by shape, whatever field it sits in: PEM private
 * keys, JWTs (user tokens, client assertions), bearer credentials, passwords in URLs, AWS secret
 * and session keys. A second line of defence behind the loggers' own redaction: a bundle is
 * mailed to support, so a secret a bug once logged must not travel with it.
 */
const SHAPES: [RegExp, string][] = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, CENSOR],
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, CENSOR],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${CENSOR}`],
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s:@"']+:[^@\s/"']*@/gi, `$1${CENSOR}@`],
  [
    /\b(aws_secret_access_key|secretAccessKey|sessionToken|aws_session_token)(["']?\s*[:=]\s*["']?)[A-Za-z0-9/+=]{16,}/gi,
    `$1$2${CENSOR}`,
  ],
];

export function scrubText(text: string): string {
  let out = text;
  for (const [shape, by] of SHAPES) out = out.replace(shape, by);
  return out;
}

/** A log line: a pino JSON line has its secret-named fields censored too; then every shape above. */
export function scrubLogLine(line: string): string {
  if (line.startsWith('{')) {
    try {
      return scrubText(JSON.stringify(redactSecrets(JSON.parse(line) as unknown)));
    } catch {
      // not JSON after all: scrubbed as text
    }
  }
  return scrubText(line);
}

const SECRET_KEY = /(password|passphrase|secret|token|credential)/i;

/** A config file: values of secret-named keys censored, every string scrubbed; paths to key files stay (they are not keys). */
export function scrubToml(text: string): string {
  const walk = (v: unknown, key = ''): unknown => {
    if (typeof v === 'string')
      return SECRET_KEY.test(key) && !v.startsWith('/') && !/^https:\/\//.test(v) ? CENSOR : scrubText(v);
    if (Array.isArray(v)) return v.map((x) => walk(x, key));
    if (v && typeof v === 'object' && !(v instanceof Date))
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  try {
    return stringifyToml(walk(parseToml(text)));
  } catch {
    // Unparsable (that is worth knowing too): the text, scrubbed line by line.
    return text.split('\n').map(scrubText).join('\n');
  }
}
