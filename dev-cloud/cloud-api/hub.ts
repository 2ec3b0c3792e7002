import type { DevCloudServer } from '../server.js';
import { HUB_HTML, HUB_JS } from './hub-page.js';

/**
 * `connect-src https:` because the fort URL is whatever the developer types in; everything
 * else is same-origin or nothing, and no inline script or style runs.
 */
const CSP =
  "default-src 'none'; script-src 'self'; connect-src 'self' https:; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function registerHub(app: DevCloudServer) {
  const headers = {
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-cache',
  };
  app.get('/hub', async (_req, reply) => reply.headers(headers).type('text/html; charset=utf-8').send(HUB_HTML));
  app.get('/hub/app.js', async (_req, reply) =>
    reply.headers(headers).type('text/javascript; charset=utf-8').send(HUB_JS),
  );
}
