import type { ProxyConfig } from '../proxy.js';
import type { TlsFilePaths } from '../tls.js';

/**
 * What `fortctl doctor` reads of the daemons' configurations, as their `--check-config` prints
 * them (lib/config/check.ts): the parts of agent/config.ts's AgentConfig and
 * deployment-manager/config.ts's DeploymentManagerConfig it checks, and nothing of their code.
 * test/unit/lib/config-views.test.ts keeps each daemon's type assignable to its view.
 */

/** The fort id of a fort neither configured with one nor paired (the agent's health says it too). */
export const UNPAIRED = 'unpaired';

interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

export interface AgentConfigView {
  fort: { id: string };
  /** Absent until the fort is paired. */
  identity?: { tenant: string; paired_at: string } | undefined;
  admin: { tls: TlsFiles };
  /** The client API's files name no CA: browsers present no client certificate. */
  api: { tls: TlsFilePaths };
  iot?:
    | {
        endpoint: string;
        ca?: string | undefined;
        credentials: { source: 'static'; file: string } | { source: 'provider'; url: string; tls: TlsFiles };
      }
    | undefined;
  cloud?: { url: string; ca?: string | undefined; private_key: string } | undefined;
  proxy?: ProxyConfig | undefined;
}

export interface DeploymentManagerConfigView {
  agent: { tls: TlsFiles };
  updates?:
    | {
        server?: { url: string; tls: TlsFiles; auth_key: string } | undefined;
        /** The loader always fills identity_dir in. */
        paired?: { identity_dir?: string | undefined } | undefined;
      }
    | undefined;
}
