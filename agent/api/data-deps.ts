import type Database from 'better-sqlite3';
import type { JWTVerifyGetKey } from 'jose';
import type { Logger } from '../../lib/logger.js';
import type { ProxySettings } from '../../lib/proxy.js';
import { createAppCatalog } from '../apps/catalog.js';
import { createVersionReader } from '../apps/version-reader.js';
import { createPageCache } from '../apps/page-cache.js';
import { createAuditWriter } from '../audit/writer.js';
import { createDenialCounter } from '../audit/denials.js';
import { cloudEndpoint, type CloudConfig } from '../cloud/config.js';
import { startCloudService } from '../cloud/service.js';
import type { HealthRegistry } from '../health.js';
import type { ApiConfig } from './config.js';
import type { AppsRoutesDeps } from './apps-routes.js';
import { createUserTokenVerifier } from './user-token.js';

/** A fort's own user-token audience: the cloud mints a user's token for one fort (CLOUD-API.md). */
export const fortAudience = (fortId: string) => `fort:${fortId}`;

/** The user-token checks `[api.auth]` asks for, against the keys that sign user tokens. */
export function userTokenVerifier(auth: NonNullable<ApiConfig['auth']>, keys: JWTVerifyGetKey, fortId: string) {
  return createUserTokenVerifier({
    issuer: auth.issuer,
    audience: auth.audience ?? fortAudience(fortId),
    tenant: auth.tenant,
    algorithms: auth.algorithms,
    clockToleranceSeconds: auth.clock_tolerance_seconds,
    maxTokenBytes: auth.max_token_bytes,
    cacheSize: auth.verified_cache_size,
    cacheMaxAgeSeconds: auth.verified_cache_seconds,
    keys,
  });
}

/**
 * What the client API's data routes need: user-token verification against the cloud's
 * JWKS, cloud authorisation, the app catalog and version files, and the audit trail.
 */
export function createDataDeps(deps: {
  api: ApiConfig & { auth: NonNullable<ApiConfig['auth']> };
  cloud: CloudConfig;
  fortId: string;
  appsDir: string;
  db: Database.Database;
  auditDb: Database.Database;
  reloads: AppsRoutesDeps['reloads'];
  proxy?: ProxySettings | undefined;
  health: HealthRegistry;
  log: Logger;
}) {
  const { auth } = deps.api;
  const cloud = startCloudService({ config: deps.cloud, fortId: deps.fortId, proxy: deps.proxy, log: deps.log });
  const jwksUrl = auth.jwks_url ? new URL(auth.jwks_url) : cloudEndpoint(deps.cloud.url, '.well-known/jwks.json');
  const verifyToken = userTokenVerifier(
    auth,
    cloud.userKeys({
      url: jwksUrl,
      cooldownSeconds: auth.jwks_cooldown_seconds,
      cacheSeconds: auth.jwks_cache_seconds,
    }),
    deps.fortId,
  );
  deps.health.set('audit', 'ready', 'writable');
  const audit = createAuditWriter({
    db: deps.auditDb,
    log: deps.log.child({ module: 'audit' }),
    onWritable: (writable, detail) => deps.health.set('audit', writable ? 'ready' : 'degraded', detail),
  });
  const denials = createDenialCounter({ audit, log: deps.log.child({ module: 'client-api' }) });
  const reader = createVersionReader({});
  const pages = createPageCache({
    reader,
    maxBytes: deps.api.page_cache_mib * 1024 * 1024,
    maxPageBytes: deps.api.max_answer_mib * 1024 * 1024,
  });
  deps.health.setInfo('cloud', () => ({ client: cloud.client.stats(), authorizer: cloud.authorizer.stats() }));
  deps.health.setInfo('pageCache', () => pages.stats());
  return {
    data: {
      catalog: createAppCatalog({ db: deps.db, appsDir: deps.appsDir }),
      reloads: deps.reloads,
      reader,
      pages,
      authorizer: cloud.authorizer,
      audit,
      denials,
      verifyToken,
      queryLimits: { perUser: deps.api.queries_per_user, exportMaxRows: deps.api.export_max_rows },
    },
    /** Asks the cloud to revoke this fort. */
    unpair: () => cloud.client.unpair(),
    /** Registers new keys with the cloud. */
    rotate: (body: { jwt_public_key: string; csr: string }) => cloud.client.rotate(body),
    /** A certificate for the deployment manager's key. */
    deviceCertificate: (csr: string) => cloud.client.deviceCertificate(csr),
    close() {
      denials.close();
      audit.close();
      pages.clear();
      reader.close();
      cloud.close();
    },
  };
}
