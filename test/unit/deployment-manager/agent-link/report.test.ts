import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pino } from 'pino';
import { createAgentReporter, reportingStateFile } from '../../../../deployment-manager/agent-link/report.js';
import { createStateFile, initialState, type UpdateState } from '../../../../deployment-manager/update/state.js';
import { summarize, updateStateSchema, type UpdateSummary } from '../../../../lib/update-state.js';
import { tempDir } from '../../../helpers/fort.js';

const log = pino({ level: 'silent' });

/** An agent admin API in memory: `down` refuses the connection, each report waits for `release` when `hold` is set. */
function fakeAgent() {
  const got: UpdateSummary[] = [];
  const agent = {
    got,
    down: false,
    hold: undefined as Promise<void> | undefined,
    async reportUpdateState(s: UpdateSummary) {
      await agent.hold;
      if (agent.down) throw new Error('agent admin API: unreachable: ECONNREFUSED');
      got.push(s);
      return { statusCode: 204, body: {} };
    },
  };
  return agent;
}

describe('deployment manager → agent update-state reports', () => {
  const base = initialState(new Date('2026-01-01T00:00:00Z'));
  /** A deployment with every field a step may require. */
  const deployment = {
    id: 'd0',
    artifactName: 'fort-1.0.1',
    source: 'server' as const,
    uri: 'https://updates/x',
    artifactFile: '/staging/d0.mender',
    downloaded: 0,
    payload: '/staging/d0.payload/r.tgz',
    target: '1.0.1',
    deadline: '2026-01-01T00:02:00.000Z',
    reason: 'why',
    attempts: 0,
    steps: 0,
  };
  const at = (step: UpdateState['step'], installed = '1.0.0'): UpdateState =>
    updateStateSchema.parse({ ...base, step, installed, deployment: step === 'idle' ? null : deployment });

  it('reports every saved state, the newest only while one is on its way', async () => {
    const agent = fakeAgent();
    let release!: () => void;
    agent.hold = new Promise((r) => (release = r));
    const file = createStateFile(join(tempDir('report'), 'state.json'));
    const reporter = createAgentReporter({ client: agent, load: () => file.load(), log });
    const reporting = reportingStateFile(file, reporter);
    reporting.save(at('downloading'));
    reporting.save(at('verifying'));
    reporting.save(at('installing'));
    release();
    await reporter.settled();
    expect(agent.got.map((s) => s.step)).toEqual(['downloading', 'installing']);
    expect(file.load().step).toBe('installing');
  });

  it('reports again after a good health check when the last report failed, from the state file', async () => {
    const agent = fakeAgent();
    let state = at('switching');
    const reporter = createAgentReporter({ client: agent, load: () => state, log });
    agent.down = true;
    reporter.changed(state);
    await reporter.settled();
    expect(agent.got).toEqual([]);
    agent.down = false;
    state = at('health_checking');
    reporter.agentHealthy({ uptimeSeconds: 1 });
    await reporter.settled();
    expect(agent.got.map((s) => s.step)).toEqual(['health_checking']);
  });

  it('reports again when the agent started after the last report got through, and not otherwise', async () => {
    const agent = fakeAgent();
    let t = 1_000_000;
    const reporter = createAgentReporter({ client: agent, load: () => at('idle', '1.0.1'), log, now: () => t });
    reporter.changed(at('idle', '1.0.1'));
    await reporter.settled();
    t += 60_000;
    reporter.agentHealthy({ uptimeSeconds: 3600 }); // the same agent, up since before the report
    await reporter.settled();
    expect(agent.got).toHaveLength(1);
    reporter.agentHealthy({ uptimeSeconds: 20 }); // restarted 40 s after the report: it forgot
    await reporter.settled();
    expect(agent.got).toHaveLength(2);
    t += 30_000;
    reporter.agentHealthy({ uptimeSeconds: 50 });
    await reporter.settled();
    expect(agent.got).toHaveLength(2);
  });

  it('tells the agent neither the pending server reports nor file paths', () => {
    const s: UpdateState = {
      ...base,
      step: 'downloading',
      installed: '1.0.0',
      reports: [{ deploymentId: 'd', status: 'downloading' }],
      deployment: {
        id: 'd',
        artifactName: 'fort-1.0.1',
        source: 'server',
        uri: 'https://updates/x?sig=secret',
        artifactFile: '/var/lib/fort/staging/d.mender',
        downloaded: 7,
        payload: '/var/lib/fort/staging/d.payload/r.tar',
        target: null,
        deadline: null,
        reason: null,
        attempts: 0,
        steps: 0,
      },
    };
    expect(summarize(s)).toEqual({
      step: 'downloading',
      installed: '1.0.0',
      installedArtifact: null,
      previous: null,
      deployment: {
        id: 'd',
        artifactName: 'fort-1.0.1',
        source: 'server',
        downloaded: 7,
        target: null,
        deadline: null,
        reason: null,
      },
      lastError: null,
      updatedAt: s.updatedAt,
    });
  });
});
