import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose';
import { FortError } from '../../lib/errors.js';
import { generatePki } from '../../lib/pki/generate.js';
import type { PkiPaths } from '../../lib/pki/layout.js';
import { loadTlsMaterial } from '../../lib/tls.js';
import { apiSection } from '../../agent/api/config.js';
import { fortAudience, userTokenVerifier } from '../../agent/api/data-deps.js';
import { buildClientApi } from '../../agent/api/server.js';
import { createAppCatalog } from '../../agent/apps/catalog.js';
import { createPageCache } from '../../agent/apps/page-cache.js';
import { createVersionReader } from '../../agent/apps/version-reader.js';
import { createAuditReader } from '../../agent/audit/reader.js';
import { createAuditWriter } from '../../agent/audit/writer.js';
import { createDenialCounter } from '../../agent/audit/denials.js';
import { createAuthorizer } from '../../agent/cloud/authorizer.js';
import type { AuthorizeQuestion, CloudAction, CloudClient } from '../../agent/cloud/client.js';
import { createAgentMetrics } from '../../agent/metrics.js';
import { reloadsSection } from '../../agent/reloads/config.js';
import { startReloadService } from '../../agent/reloads/service.js';
import { seedApp } from './apps.js';
import { tempDir } from './fort.js';
import { collectingLogger, tempStores } from './inject.js';
import { testIssuer } from './jwt.js';

export const CLOUD_ISSUER = 'https://cloud.test';
export const TENANT = 't1';
/** The fort the rig is: user tokens are minted for it (aud fort:<id>). */
export const FORT_ID = 'fort-test-1';

/** The client zone alone (its CA and the client API's certificate), in a temp dir. */
export const clientZonePki = (): Promise<PkiPaths> => generatePki({ out: tempDir('pki'), zones: ['clientZone'] });

/** What the cloud lets each user do: action → app ids. */
export type Grants = Record<string, Partial<Record<CloudAction, string[]>>>;

/**
 * The cloud's `POST /api/v1/authorize` in process, behind the interface the agent's cloud client
 * gives the authoriser: a question `{user, tenant, action, resource}` gets `{allow, ttl}`
 * (dev-cloud/CLOUD-API.md) from the grants, for this fort's tenant only. Records every question;
 * while `down`, fails as an unreachable cloud does.
 */
export function cloudAuthorizeStandIn(grants: Grants, ttl = 60) {
  const asked: AuthorizeQuestion[] = [];
  const state = { down: false };
  const authorize: CloudClient['authorize'] = async (q) => {
    asked.push(q);
    if (state.down)
      throw new FortError('FORT_ERR_UPSTREAM', 'cloud API unreachable: connect ECONNREFUSED', { fatal: false });
    return { allow: q.tenant === TENANT && (grants[q.user]?.[q.action] ?? []).includes(q.resource), ttl };
  };
  return { authorize, asked, state };
}

/** alice may see the sales space (and ask about an app this fort does not have); bob nothing. */
export const GRANTS: Grants = {
  alice: {
    'app.list': ['sales-2026', 'empty-2026'],
    'app.read': ['sales-2026', 'empty-2026', 'ghost-2026'],
    'app.reload': ['sales-2026'],
  },
};

export interface ClientApiRigOptions {
  /** `[api]` keys beyond the port, TLS files and `[api.auth]`, as agent.toml would give them (e.g. rate_limit). */
  api?: Record<string, unknown>;
  /** The user-token keys; default the test issuer's JWKS, in memory. */
  keys?: JWTVerifyGetKey;
  /** false: no `[api.auth]`/`[cloud]`, so the data routes answer 503. */
  data?: boolean;
}

/**
 * The client API as the agent builds it, on real components: `[api]` parsed by the agent's
 * schema, user tokens verified as `[api.auth]` says against keys of a test issuer (real ES256
 * JWTs), the authoriser and its decision cache asking the cloud stand-in, the app catalog,
 * version files and page cache over a real SQLite store with seeded apps, the audit trail in
 * its own SQLite file, and the reload service (never started: requests are queued, never run).
 */
export async function clientApiRig(pki: PkiPaths, opts: ClientApiRigOptions = {}) {
  const { log, lines } = collectingLogger('client-api');
  const stores = tempStores('client-api', log);
  const orders = Array.from({ length: 250 }, (_, i) => [i + 1, `c${i % 7}`, (i * 13) % 1000]);
  seedApp(stores.db, stores.appsDir, {
    id: 'sales-2026',
    name: 'Sales 2026',
    space: 'sales',
    tables: { orders: { columns: ['id', 'customer', 'amount'], rows: orders } },
  });
  seedApp(stores.db, stores.appsDir, { id: 'empty-2026', name: 'Empty 2026', space: 'sales' });
  seedApp(stores.db, stores.appsDir, {
    id: 'hr-2026',
    name: 'HR 2026',
    space: 'hr',
    tables: { salaries: { columns: ['who', 'salary'], rows: [['x', 1]] } },
  });

  const issuer = await testIssuer({ issuer: CLOUD_ISSUER, audience: fortAudience(FORT_ID), tenant: TENANT });
  const cz = pki.clientZone;
  const config = apiSection().parse({
    port: 8443,
    tls: { cert: cz.clientApiCert, key: cz.clientApiKey },
    cors_origins: ['https://hub.example'],
    auth: { issuer: CLOUD_ISSUER, tenant: TENANT },
    ...opts.api,
  });
  const cloud = cloudAuthorizeStandIn(GRANTS);
  const reader = createVersionReader({});
  const audit = createAuditWriter({ db: stores.auditDb, log });
  const denials = createDenialCounter({ audit, log });
  const reloads = startReloadService({
    db: stores.db,
    config: reloadsSection().parse(undefined),
    appsDir: stores.appsDir,
    fortId: 'fort-test-1',
    log,
  });
  const draining = { now: false };
  const data = {
    catalog: createAppCatalog({ db: stores.db, appsDir: stores.appsDir }),
    reader,
    pages: createPageCache({
      reader,
      maxBytes: config.page_cache_mib * 1024 * 1024,
      maxPageBytes: config.max_answer_mib * 1024 * 1024,
    }),
    authorizer: createAuthorizer({ ask: cloud.authorize, maxEntries: 1000, log }),
    audit,
    denials,
    reloads,
    verifyToken: userTokenVerifier(config.auth!, opts.keys ?? createLocalJWKSet(issuer.jwks), FORT_ID),
    queryLimits: { perUser: config.queries_per_user, exportMaxRows: config.export_max_rows },
  };
  const app = await buildClientApi({
    config,
    tls: loadTlsMaterial(config.tls),
    isDraining: () => draining.now,
    version: '1.2.3',
    ...(opts.data === false ? {} : { data }),
    metrics: createAgentMetrics(),
    log,
  });
  await app.ready();
  const auditReader = createAuditReader(stores.auditDb);
  return {
    app,
    issuer,
    cloud,
    lines,
    draining,
    reloads,
    /** The audit trail so far (the minute's refusal tallies and pending group commits written first). */
    audit() {
      denials.flush();
      audit.flush();
      return auditReader.since(new Date(0), 1000);
    },
    async close() {
      await app.close();
      await reloads.stop();
      denials.close();
      audit.close();
      reader.close();
      stores.close();
    },
  };
}
export type ClientApiRig = Awaited<ReturnType<typeof clientApiRig>>;
