import type { UpdateStateView, UpdateSummary } from '../lib/update-state.js';

/**
 * The deployment manager's update state as it last reported it. In memory only: the deployment
 * manager reports again after every change and whenever it sees the agent started since its
 * last report (the agent restarts in the middle of every update).
 */
export function createUpdateStateHolder(now: () => Date = () => new Date()) {
  let view: UpdateStateView = { state: null, reportedAt: null };
  return {
    set(state: UpdateSummary): void {
      view = { state, reportedAt: now().toISOString() };
    },
    get: (): UpdateStateView => view,
  };
}
export type UpdateStateHolder = ReturnType<typeof createUpdateStateHolder>;
