import { createAdminClient, linkErrorCode, type AdminClient } from '../../lib/admin-client.js';
import { loadTlsMaterial } from '../../lib/tls.js';
import type { FortctlConfig } from '../config.js';
import { fail, ok, reason, warn, type Check } from './check.js';
import { describeFailure } from './probe.js';

/** The agent over its admin API with fortctl's own identity, as every other fortctl command reaches it. */
export async function adminCheck(config: FortctlConfig, timeoutMs: number): Promise<Check> {
  const name = 'admin API';
  const url = config.admin.url;
  let admin: AdminClient;
  try {
    admin = createAdminClient({ url, tls: loadTlsMaterial(config.admin.tls), timeoutMs });
  } catch (err) {
    return fail(name, `${url}: fortctl's certificate cannot be used: ${reason(err)}`);
  }
  try {
    const { statusCode, body } = await admin.health();
    if (statusCode === 403)
      return fail(
        name,
        `${url}: the agent refused fortctl's certificate (403): add its common name to admin.allowed_clients`,
      );
    const summary = `${url}: agent ${body.fortId} version ${body.version} ${body.status}, up ${body.uptimeSeconds} s`;
    const notReady = Object.entries(body.modules ?? {})
      .filter(([, m]) => m.state !== 'ready')
      .map(([n, m]) => `${n} ${m.state}${m.detail ? ` (${m.detail})` : ''}`);
    const detail = notReady.length > 0 ? `${summary}; ${notReady.join('; ')}` : summary;
    if (body.status === 'healthy') return ok(name, detail);
    return body.status === 'unhealthy' ? fail(name, detail) : warn(name, detail);
  } catch (err) {
    // The TLS or socket error under the admin client's, in the same words as the other endpoints.
    const cause = err instanceof Error && err.cause instanceof Error && linkErrorCode(err) ? err.cause : err;
    return fail(name, `${url}: ${cause instanceof Error ? describeFailure(cause, timeoutMs) : reason(err)}`);
  } finally {
    admin.close();
  }
}
