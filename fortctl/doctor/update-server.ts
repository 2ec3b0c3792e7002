import type { DeploymentManagerConfigView } from '../../lib/config/views.js';
import { readUpdateIdentity } from '../../lib/update-identity-file.js';
import { fail, reason, warn, type Check } from './check.js';

/** The update server the deployment manager talks to, and the identity it talks with. */
export interface UpdateServer {
  /** Null: the cloud names none for this fort (`install FILE` only). */
  url: string | null;
  tls: { ca: string; cert: string; key: string };
  /** Mender device auth key; the deployment manager makes it at its first start. */
  authKey: string;
}

/** From [updates.server], or from the identity [updates.paired] obtained through the agent; a check when there is nothing to test. */
export function updateServer(dm: DeploymentManagerConfigView): UpdateServer | Check | undefined {
  const u = dm.updates;
  if (!u) return undefined;
  if (u.server) return { url: u.server.url, tls: u.server.tls, authKey: u.server.auth_key };
  // The loader always fills identity_dir in.
  const dir = u.paired?.identity_dir;
  if (!dir) return undefined;
  try {
    const id = readUpdateIdentity(dir);
    if (!id)
      return warn(
        'update server',
        `no update identity in ${dir} yet: the deployment manager gets one through the agent once the fort is paired`,
      );
    return { url: id.url, tls: { ca: id.files.ca, cert: id.files.cert, key: id.files.key }, authKey: id.files.authKey };
  } catch (err) {
    return fail('update server', `update identity in ${dir} is unreadable: ${reason(err)}`);
  }
}
