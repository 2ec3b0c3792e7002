import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../../lib/errors.js';
import { formatIssues } from '../../lib/config/format.js';

export const ACTIONS = ['app.list', 'app.read', 'app.reload'] as const;
export type Action = (typeof ACTIONS)[number];

const name = (what: string) =>
  z
    .string({ error: `expected ${what}` })
    .min(1, { error: `expected ${what}` })
    .max(256, { error: `expected ${what} of at most 256 characters` });
const action = z.enum(ACTIONS, { error: `expected one of ${ACTIONS.join(', ')}` });
const list = <T extends z.ZodType>(item: T, what: string) => z.array(item, { error: `expected a list of ${what}` });
const map = <T extends z.ZodType>(key: z.ZodString, value: T, what: string) =>
  z.record(key, value, { error: `expected a table of ${what}` });

const tenantSchema = z
  .strictObject({
    /** Forts (client ids) that may ask about this tenant. */
    forts: list(name('a fort id'), 'fort ids').default([]),
    users: map(
      name('a user name'),
      z.strictObject({ groups: list(name('a group name'), 'group names').default([]) }),
      'users',
    ).default({}),
    /** space → grantee (a group, or `user:<name>`) → actions. */
    spaces: map(
      name('a space name'),
      map(name('a group or user:<name>'), list(action, 'actions'), 'grantees'),
      'spaces',
    ).default({}),
    apps: map(name('an app id'), z.strictObject({ space: name('a space name') }), 'apps').default({}),
  })
  .superRefine((t, ctx) => {
    // A dangling space reference would silently deny; say so at load instead.
    for (const [id, app] of Object.entries(t.apps)) {
      if (!Object.hasOwn(t.spaces, app.space))
        ctx.addIssue({ code: 'custom', path: ['apps', id, 'space'], message: 'names a space that is not in spaces' });
    }
  });

/** The dev cloud's policy file (format: dev-cloud/CLOUD-API.md "Policy"). */
export const policySchema = z.strictObject({
  decision_ttl_seconds: z
    .int({ error: 'expected integer 0..86400' })
    .min(0, { error: 'expected integer 0..86400' })
    .max(86_400, { error: 'expected integer 0..86400' })
    .default(60),
  tenants: map(name('a tenant id'), tenantSchema, 'tenants').default({}),
});
export type Policy = z.output<typeof policySchema>;
export type PolicyInput = z.input<typeof policySchema>;

export const EMPTY_POLICY: Policy = policySchema.parse({});

/** Validate a policy object; every problem is reported at once, naming the field. */
export function parsePolicy(raw: unknown, what = 'policy'): Policy {
  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(what, formatIssues(parsed.error.issues, raw));
  return parsed.data;
}

export function loadPolicyFile(file: string): Policy {
  const what = basename(file);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(what, [`cannot read policy ${file}: ${reason}`]);
  }
  return parsePolicy(raw, what);
}

export interface AuthorizeRequest {
  user: string;
  tenant: string;
  action: Action;
  resource: string;
}

/**
 * Allowed when the tenant lists the asking fort and the app's space grants the action to one
 * of the user's groups or to `user:<name>`. Anything unknown denies.
 */
export function decide(policy: Policy, fortId: string, req: AuthorizeRequest): boolean {
  const tenant = own(policy.tenants, req.tenant);
  if (!tenant || !tenant.forts.includes(fortId)) return false;
  const user = own(tenant.users, req.user);
  const app = own(tenant.apps, req.resource);
  const space = app && own(tenant.spaces, app.space);
  if (!user || !space) return false;
  const grantees = [...user.groups, `user:${req.user}`];
  return grantees.some((g) => own(space, g)?.includes(req.action) ?? false);
}

/** Record lookup that ignores inherited keys (a user named `constructor` is just unknown). */
function own<T>(rec: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(rec, key) ? rec[key] : undefined;
}
