export type ModuleState = 'starting' | 'ready' | 'degraded' | 'failed' | 'stopped';

export interface ModuleHealth {
  state: ModuleState;
  detail?: string;
  since: string;
}

/** Each module reports its own state; the admin API and the watchdog read the whole. */
export function createHealthRegistry(now: () => Date = () => new Date()) {
  const modules = new Map<string, ModuleHealth>();
  let draining = false;
  return {
    set(name: string, state: ModuleState, detail?: string) {
      const prev = modules.get(name);
      if (prev && prev.state === state && prev.detail === detail) return;
      modules.set(name, { state, since: now().toISOString(), ...(detail ? { detail } : {}) });
    },
    setDraining() {
      draining = true;
    },
    get draining() {
      return draining;
    },
    /** Alive: no module failed. Ready: every module ready and not draining. */
    snapshot() {
      const entries = Object.fromEntries(modules);
      const states = [...modules.values()].map((m) => m.state);
      const live = !states.includes('failed');
      const ready = live && !draining && states.every((s) => s === 'ready');
      return { live, ready, draining, modules: entries };
    },
  };
}
export type HealthRegistry = ReturnType<typeof createHealthRegistry>;
