/** The fort's named shadow topic (AWS IoT: `$aws/things/<thing>/shadow/name/<name>/update`). */
export const SHADOW_UPDATE = /^\$aws\/things\/([^/]+)\/shadow\/name\/fort\/update$/;
/** AWS IoT's limit on a shadow document's state. */
export const MAX_SHADOW_BYTES = 8 * 1024;

export interface StoredShadow {
  thing: string;
  state: { reported: Record<string, unknown> };
  /** Incremented by every accepted update, as AWS IoT does. */
  version: number;
  clientToken?: string;
  updatedAt: string;
}

/**
 * What forts reported in their `fort` named shadow, kept in memory by thing. An update that is
 * not `{state: {reported: {...}}}` is refused (the bridge answers on `.../update/rejected`). The
 * reported state is replaced whole: the fort always sends all of it.
 */
export function createShadowStore(now: () => Date) {
  const shadows = new Map<string, StoredShadow>();
  return {
    /** The stored shadow, or why the update was refused. */
    update(thing: string, payload: Buffer): StoredShadow | { rejected: string } {
      let doc: unknown;
      try {
        doc = JSON.parse(payload.toString('utf8'));
      } catch {
        return { rejected: 'not JSON' };
      }
      const d = doc as { state?: { reported?: unknown }; clientToken?: unknown };
      const reported = d?.state?.reported;
      if (!reported || typeof reported !== 'object' || Array.isArray(reported))
        return { rejected: 'expected {"state": {"reported": {...}}}' };
      const next: StoredShadow = {
        thing,
        state: { reported: reported as Record<string, unknown> },
        version: (shadows.get(thing)?.version ?? 0) + 1,
        ...(typeof d.clientToken === 'string' ? { clientToken: d.clientToken } : {}),
        updatedAt: now().toISOString(),
      };
      shadows.set(thing, next);
      return next;
    },
    get: (thing: string) => shadows.get(thing),
    list: () => [...shadows.values()],
  };
}
export type ShadowStore = ReturnType<typeof createShadowStore>;
