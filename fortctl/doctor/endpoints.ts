import { readFileSync } from 'node:fs';
import type { AgentConfigView } from '../../lib/config/views.js';
import { resolveProxy, type ProxyConfig, type ProxyEnv, type ProxySettings, type TunnelTls } from '../../lib/proxy.js';
import { fail, ok, reason, warn, type Check } from './check.js';
import { probeHttps } from './probe.js';
import type { UpdateServer } from './update-server.js';

/** An outbound HTTPS/WSS link of the installation, with the trust and identity its service uses. */
export interface Endpoint {
  name: string;
  url: URL;
  /** CA bundle file the server must chain to; undefined = system roots. */
  ca?: string;
  /** Client certificate and key files (mutual TLS). */
  client?: { cert: string; key: string };
  /** Set when the service would tunnel through it (NO_PROXY is applied per host when probing). */
  proxy?: ProxySettings;
}

/**
 * The agent's links (IoT data endpoint, credentials provider, cloud API) and the deployment
 * manager's update server, each with the proxy its process would use: the agent's [proxy]
 * else HTTPS_PROXY; the deployment manager only HTTPS_PROXY. The pairing endpoint is known only
 * to `fortctl pair`. A proxy that cannot be set up is a check of its own.
 */
export function outboundEndpoints(
  agent: AgentConfigView | undefined,
  update: UpdateServer | undefined,
  env: ProxyEnv,
): { endpoints: Endpoint[]; checks: Check[] } {
  const checks: Check[] = [];
  const proxyOf = (who: string, config: ProxyConfig | undefined): ProxySettings | undefined => {
    try {
      const p = resolveProxy(config, env);
      if (p)
        checks.push(
          ok(
            `proxy ${who}`,
            `http://${p.url.host}${p.username ? ` as ${p.username}` : ''}${p.noProxy.length ? `, not for ${p.noProxy.join(', ')}` : ''}`,
          ),
        );
      return p;
    } catch (err) {
      checks.push(fail(`proxy ${who}`, reason(err)));
      return undefined;
    }
  };
  const endpoints: Endpoint[] = [];
  if (agent && (agent.iot || agent.cloud)) {
    const proxy = proxyOf('agent', agent.proxy);
    const iot = agent.iot;
    if (iot)
      endpoints.push({
        name: 'IoT endpoint',
        url: new URL(`https://${iot.endpoint}/mqtt`),
        ...(iot.ca ? { ca: iot.ca } : {}),
        ...(proxy ? { proxy } : {}),
      });
    if (iot?.credentials.source === 'provider') {
      const c = iot.credentials;
      endpoints.push({
        name: 'credentials provider',
        url: new URL(c.url),
        ca: c.tls.ca,
        client: { cert: c.tls.cert, key: c.tls.key },
        ...(proxy ? { proxy } : {}),
      });
    }
    if (agent.cloud)
      endpoints.push({
        name: 'cloud API',
        url: new URL(agent.cloud.url),
        ...(agent.cloud.ca ? { ca: agent.cloud.ca } : {}),
        ...(proxy ? { proxy } : {}),
      });
  }
  if (update?.url === null)
    checks.push(ok('update server', 'the cloud names none for this fort (updates by `install FILE` only)'));
  else if (update) {
    const proxy = proxyOf('deployment manager', undefined);
    endpoints.push({
      name: 'update server',
      url: new URL(update.url),
      ca: update.tls.ca,
      client: { cert: update.tls.cert, key: update.tls.key },
      ...(proxy ? { proxy } : {}),
    });
  }
  return { endpoints, checks };
}

/** The host clock against one server's `Date` header: ours minus theirs, ms. */
export interface Skew {
  endpoint: string;
  skewMs: number;
}

/** Reachable with its TLS identity: a check, and the clock skew its answer showed. */
export async function endpointCheck(e: Endpoint, timeoutMs: number): Promise<{ check: Check; skew?: Skew }> {
  let tls: TunnelTls;
  try {
    tls = {
      ...(e.ca ? { ca: readFileSync(e.ca) } : {}),
      ...(e.client ? { cert: readFileSync(e.client.cert), key: readFileSync(e.client.key) } : {}),
    };
  } catch (err) {
    return { check: fail(e.name, `${e.url.origin}: cannot read its TLS files: ${reason(err)}`) };
  }
  const r = await probeHttps(e.url, tls, e.proxy, timeoutMs);
  const trust = e.ca ? `CA ${e.ca}` : 'system roots';
  if (!r.ok)
    return {
      check: fail(
        e.name,
        `${e.url.origin}: ${r.reason}; trusting ${trust}${e.client ? `, client certificate ${e.client.cert}` : ''}`,
      ),
    };
  const via = r.viaProxy && e.proxy ? ` through proxy ${e.proxy.url.host}` : '';
  const detail = `${e.url.origin}${via}: TLS verified against ${trust}${r.server ? ` (server CN=${r.server})` : ''}${e.client ? ', client certificate accepted' : ''}; HTTP ${r.status} in ${r.ms} ms`;
  const check = r.status >= 500 ? warn(e.name, detail) : ok(e.name, detail);
  return r.date === undefined ? { check } : { check, skew: { endpoint: e.name, skewMs: r.receivedAt - r.date } };
}
