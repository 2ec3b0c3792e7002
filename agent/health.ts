export type ModuleState = 'starting' | 'ready' | 'degraded' | 'failed' | 'stopped';

export interface ModuleHealth {
  state: ModuleState;
  detail?: string;
  since: string;
  info?: Record<string, unknown>;
}

/**
 * Each module reports its own state; the admin API and the watchdog read the whole.
 * `degraded` (e.g. the cloud link is down) still counts as ready: the agent keeps serving
 * the private network, and an update must not be rolled back for an internet outage.
 */
export function createHealthRegistry(now: () => Date = () => new Date()) {
  const modules = new Map<string, ModuleHealth>();
  const infos = new Map<string, () => Record<string, unknown>>();
  const refreshers: (() => void)[] = [];
  let draining = false;
  return {
    set(name: string, state: ModuleState, detail?: string) {
      const prev = modules.get(name);
      if (prev && prev.state === state && prev.detail === detail) return;
      modules.set(name, { state, since: now().toISOString(), ...(detail ? { detail } : {}) });
    },
    /** Live figures of a module (link stats, backlog sizes), read at every health request. */
    setInfo(name: string, info: () => Record<string, unknown>) {
      infos.set(name, info);
    },
    /** Runs before every snapshot: a module whose state is one cheap look away (free disk) is never stale. */
    refreshOnRead(refresh: () => void) {
      refreshers.push(refresh);
    },
    setDraining() {
      draining = true;
    },
    get draining() {
      return draining;
    },
    snapshot() {
      for (const refresh of refreshers) refresh();
      const entries: Record<string, ModuleHealth> = {};
      for (const [name, m] of modules) {
        const info = infos.get(name);
        entries[name] = info ? { ...m, info: info() } : m;
      }
      const states = [...modules.values()].map((m) => m.state);
      const live = !states.includes('failed');
      const ready = live && !draining && states.every((s) => s === 'ready' || s === 'degraded');
      const degraded = states.includes('degraded');
      return { live, ready, degraded, draining, modules: entries };
    },
  };
}
export type HealthRegistry = ReturnType<typeof createHealthRegistry>;
