import { readFileSync } from 'node:fs';
import type { ClientRequestArgs } from 'node:http';
import type https from 'node:https';
import { BlockList, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { HttpsProxyAgent } from 'hpagent';
import { z } from 'zod';
import { ConfigError, FortError } from './errors.js';
import { assertPrivateFileMode } from './files.js';
import { filePath, nonEmpty } from './config/fields.js';
import { resolveFrom } from './config/load.js';

/**
 * An HTTP proxy every outbound link (IoT bridge, credentials provider, later the cloud API
 * and the update server) tunnels through with CONNECT. The TLS session to the target runs
 * inside the tunnel, end to end: the proxy sees host and port, never the traffic, and the
 * target's certificate is verified exactly as without a proxy.
 */
export interface ProxySettings {
  /** http://host:port, never with credentials in it. */
  url: URL;
  /** Hosts that bypass the proxy (curl NO_PROXY semantics, see bypassesProxy). */
  noProxy: string[];
  username?: string;
  password?: string;
}

/** `[proxy]` as it appears in a config file (paths already absolute after resolveProxyPaths). */
export interface ProxyConfig {
  url?: string;
  no_proxy?: string[];
  username?: string;
  password_file?: string;
}

/** HTTPS_PROXY / NO_PROXY as read by lib/runtime-env.ts. */
export interface ProxyEnv {
  httpsProxy?: string;
  noProxy?: string;
}

const CREDENTIALS_IN_URL =
  'credentials in the proxy URL are not accepted: set proxy.username and put the password in proxy.password_file (mode 0600)';

/** What is wrong with a proxy URL, or undefined; never echoes the URL (it may hold a password). */
export function proxyUrlProblem(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'expected an http:// proxy URL such as http://proxy.example.com:3128';
  }
  if (url.username || url.password) return CREDENTIALS_IN_URL;
  if (url.protocol === 'https:')
    return 'https:// proxies are not supported: expected http://host:port (the TLS session to the target runs end to end inside the CONNECT tunnel)';
  if (url.protocol !== 'http:' || !url.hostname)
    return 'expected an http:// proxy URL such as http://proxy.example.com:3128';
  if (url.pathname !== '/' || url.search || url.hash)
    return 'expected http://host:port with no path, query or fragment';
  return undefined;
}

/** `[proxy]` of a daemon's config file; reused by every process with outbound links. */
export const proxySection = () =>
  z
    .strictObject({
      url: nonEmpty('an http:// proxy URL')
        .superRefine((value, ctx) => {
          const problem = proxyUrlProblem(value);
          // The value may carry a password: the config error must not repeat it.
          if (problem) ctx.addIssue({ code: 'custom', message: problem, params: { redactValue: true } });
        })
        .optional()
        .describe(
          'HTTP proxy for every outbound HTTPS/WSS link, http://host:port (CONNECT tunnel; TLS to the target stays end to end). Default: $HTTPS_PROXY / $https_proxy',
        ),
      no_proxy: z
        .array(nonEmpty('a host name, domain or IP address'), {
          error: 'expected a list of host names, domains or IP addresses',
        })
        .optional()
        .describe(
          'Hosts reached directly (curl NO_PROXY rules): exact host or IP, a CIDR range such as "10.0.0.0/8", "example.com" or ".example.com" for the domain and its subdomains, "*" for every host. Default: $NO_PROXY / $no_proxy',
        ),
      username: z
        .string({ error: 'expected a user name' })
        .regex(/^[^:\s]+$/, { error: 'expected a user name without ":" or spaces' })
        .optional()
        .describe("User for the proxy's Basic authentication"),
      password_file: filePath()
        .optional()
        .describe('File holding the proxy password (trimmed); must be mode 0600. Needs username'),
    })
    .superRefine((value, ctx) => {
      if (value.password_file !== undefined && value.username === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['password_file'],
          message: 'needs proxy.username (the user the password belongs to)',
        });
      }
    });

export function resolveProxyPaths(dir: string, proxy: ProxyConfig): ProxyConfig {
  return proxy.password_file === undefined ? proxy : { ...proxy, password_file: resolveFrom(dir, proxy.password_file) };
}

/** NO_PROXY as curl reads it: comma separated (whitespace tolerated). */
export function splitNoProxy(value: string | undefined): string[] {
  return (value ?? '').split(/[\s,]+/).filter((s) => s.length > 0);
}

/**
 * The proxy to use, if any. The config file wins field by field; what it leaves out comes
 * from HTTPS_PROXY / NO_PROXY. Credentials only ever come from the config (user name) and a
 * 0600 file (password), never from a URL.
 */
export function resolveProxy(config: ProxyConfig | undefined, env: ProxyEnv): ProxySettings | undefined {
  const fromConfig = config?.url !== undefined;
  const raw = fromConfig ? config?.url : env.httpsProxy?.trim() || undefined;
  const noProxy = config?.no_proxy ?? splitNoProxy(env.noProxy);
  if (raw === undefined) {
    if (config?.username !== undefined || config?.password_file !== undefined) {
      throw new ConfigError('[proxy]', [
        'username and password_file are set but there is no proxy URL (set proxy.url or HTTPS_PROXY)',
      ]);
    }
    return undefined;
  }
  // curl and most tools take HTTPS_PROXY=host:port as http://host:port.
  const candidate = fromConfig || /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  const problem = proxyUrlProblem(candidate);
  if (problem)
    throw fromConfig
      ? new ConfigError('[proxy]', [`url: ${problem}`])
      : new ConfigError('environment', [`HTTPS_PROXY: ${problem}`]);
  const parsed = new URL(candidate);
  const settings: ProxySettings = { url: new URL(`http://${parsed.host}`), noProxy };
  if (config?.username !== undefined) {
    settings.username = config.username;
    settings.password = config.password_file === undefined ? '' : readPasswordFile(config.password_file);
  }
  return settings;
}

function readPasswordFile(file: string): string {
  assertPrivateFileMode(file, 'proxy password file');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('[proxy]', [
      `password_file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    ]);
  }
  const password = text.trim();
  if (!password) throw new ConfigError('[proxy]', [`password_file: ${file} is empty`]);
  return password;
}

/** Lower case, no brackets, port or trailing dot: `[::1]:443` → `::1`, `Example.COM.:8443` → `example.com`. */
function bareHost(value: string): string {
  let h = value.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    h = end < 0 ? h.slice(1) : h.slice(1, end);
  } else if (h.indexOf(':') === h.lastIndexOf(':')) {
    // At most one colon: host:port (a bare IPv6 address has several).
    const colon = h.indexOf(':');
    if (colon >= 0) h = h.slice(0, colon);
  }
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/**
 * curl's NO_PROXY rules: `*` bypasses every host; an IP address matches only itself; a name
 * matches itself and its subdomains, with or without a leading dot (`example.com` and
 * `.example.com` both match `example.com` and `api.example.com`, not `badexample.com`).
 * Ports are ignored on both sides; case does not matter. As in curl ≥ 7.86, a CIDR range
 * (`10.0.0.0/8`, `fd00::/8`) matches the IP addresses inside it; names are not resolved for it.
 */
export function bypassesProxy(host: string, noProxy: string[]): boolean {
  const h = bareHost(host);
  if (!h) return false;
  const hostIsIp = isIP(h) !== 0;
  for (const raw of noProxy) {
    if (raw.trim() === '*') return true;
    const cidr = /^\[?([0-9a-f:.]+)\]?\/(\d{1,3})$/i.exec(raw.trim());
    if (cidr) {
      if (hostIsIp && inCidr(h, cidr[1]!, Number(cidr[2]))) return true;
      continue;
    }
    let entry = bareHost(raw);
    if (entry.startsWith('*.')) entry = entry.slice(2);
    else if (entry.startsWith('.')) entry = entry.slice(1);
    if (!entry) continue;
    if (hostIsIp || isIP(entry) !== 0) {
      if (h === entry) return true;
      continue;
    }
    if (h === entry || h.endsWith(`.${entry}`)) return true;
  }
  return false;
}

function inCidr(ip: string, network: string, prefix: number): boolean {
  const family = isIP(network);
  if (family === 0 || prefix > (family === 4 ? 32 : 128) || isIP(ip) !== family) return false;
  const range = new BlockList();
  range.addSubnet(network, prefix, family === 4 ? 'ipv4' : 'ipv6');
  return range.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/** The proxy refused the tunnel (status) or could not be reached. */
export class ProxyError extends FortError {
  readonly status: number | undefined;
  constructor(message: string, status: number | undefined, cause: unknown) {
    super('FORT_ERR_PROXY', message, { fatal: false, cause });
    this.status = status;
  }
}

/** hpagent reports a refused CONNECT as `Bad response: <status>`; say what it means. */
export function describeProxyFailure(err: Error, proxy: URL, target: string): Error {
  const where = `proxy ${proxy.host}`;
  const status = /^Bad response: (\d{3})$/.exec(err.message)?.[1];
  if (status === '407') {
    return new ProxyError(
      `proxy authentication required (407): ${where} refused CONNECT ${target} without valid credentials; check proxy.username and proxy.password_file`,
      407,
      err,
    );
  }
  if (status === '401') {
    // Not standard, but what e.g. tinyproxy answers when the credentials are wrong.
    return new ProxyError(
      `proxy authentication failed (401): ${where} refused the credentials for CONNECT ${target}; check proxy.username and proxy.password_file`,
      401,
      err,
    );
  }
  if (status) return new ProxyError(`${where} refused CONNECT ${target} (${status})`, Number(status), err);
  // Network failure on the way to the proxy (the message keeps ECONNREFUSED, ...).
  return new ProxyError(`${where}: ${err.message}`, undefined, err);
}

export interface TunnelTls {
  /** CA bundle the target's certificate must chain to; undefined = system roots. */
  ca?: Buffer | string;
  /** Client certificate + key for mutual TLS with the target. */
  cert?: Buffer | string;
  key?: Buffer | string;
}

/** hpagent's CONNECT agent with Basic proxy auth and failures that say what went wrong. */
class TunnelAgent extends HttpsProxyAgent {
  readonly #proxy: URL;
  constructor(settings: ProxySettings, tls: TunnelTls) {
    const auth =
      settings.username === undefined
        ? undefined
        : `Basic ${Buffer.from(`${settings.username}:${settings.password ?? ''}`).toString('base64')}`;
    super({
      proxy: settings.url,
      ...(auth ? { proxyRequestOptions: { headers: { 'proxy-authorization': auth } } } : {}),
      // Only keys that are set: the agent's options override each request's, so an
      // undefined `ca` here would throw away a CA the request carries.
      ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
      ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
      ...(tls.key !== undefined ? { key: tls.key } : {}),
    });
    this.#proxy = settings.url;
  }

  override createConnection(
    options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const target = `${options.host ?? options.hostname ?? ''}:${options.port ?? ''}`;
    return super.createConnection(options, (err, stream) =>
      callback?.(err ? describeProxyFailure(err, this.#proxy, target) : null, stream),
    );
  }
}

/**
 * An agent that tunnels to `target` (https: or wss:) through the proxy, or undefined when
 * there is no proxy or NO_PROXY exempts the host. Certificate verification stays on.
 */
export function proxyAgentFor(
  target: URL,
  settings: ProxySettings | undefined,
  tls: TunnelTls = {},
): https.Agent | undefined {
  if (!settings) return undefined;
  if (target.protocol !== 'https:' && target.protocol !== 'wss:')
    throw new Error(`proxyAgentFor: only https: and wss: targets are tunnelled, got ${target.protocol}`);
  if (bypassesProxy(target.host, settings.noProxy)) return undefined;
  return new TunnelAgent(settings, tls);
}

/** For logs: where the proxy is and whether it authenticates, never the password. */
export function describeProxy(settings: ProxySettings): { proxy: string; noProxy: string[]; username?: string } {
  return {
    proxy: settings.url.host,
    noProxy: settings.noProxy,
    ...(settings.username !== undefined ? { username: settings.username } : {}),
  };
}
