import { randomBytes } from 'node:crypto';

export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
  thingName: string;
}

/**
 * The keys the bridge accepts: one static dev key pair, plus temporary credentials the
 * credentials provider issued. Kept in memory, so a bridge restart invalidates every
 * temporary key — exactly the "credentials rejected after an outage" case agents must survive.
 */
export function createCredentialStore(opts: {
  staticKey?: { accessKeyId: string; secretAccessKey: string };
  now?: () => Date;
}) {
  const now = opts.now ?? (() => new Date());
  const issued = new Map<string, IssuedCredentials>();
  return {
    issue(thingName: string, lifetimeSeconds: number): IssuedCredentials {
      const creds: IssuedCredentials = {
        accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
        secretAccessKey: randomBytes(30).toString('base64'),
        sessionToken: randomBytes(96).toString('base64'),
        expiration: new Date(now().getTime() + lifetimeSeconds * 1000),
        thingName,
      };
      issued.set(creds.accessKeyId, creds);
      return creds;
    },
    lookup(accessKeyId: string): { secretAccessKey: string; sessionToken?: string; expiration?: Date } | undefined {
      if (opts.staticKey && accessKeyId === opts.staticKey.accessKeyId)
        return { secretAccessKey: opts.staticKey.secretAccessKey };
      const c = issued.get(accessKeyId);
      return c && { secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken, expiration: c.expiration };
    },
    /** Drop the temporary keys issued to one thing (a revoked fort). */
    revokeThing(thingName: string) {
      for (const [k, c] of issued) if (c.thingName === thingName) issued.delete(k);
    },
    /** Drop every temporary key (tests: credentials rejected after an outage). */
    revokeAll() {
      issued.clear();
    },
  };
}
export type CredentialStore = ReturnType<typeof createCredentialStore>;
