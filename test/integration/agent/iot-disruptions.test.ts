import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { httpsRequest } from '../../helpers/https.js';
import { eventually, startAgent, testInstallation, testPki, type TestInstallation } from '../../helpers/fort.js';
import { connectBareClient, testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import type { Supervised } from '../../../scripts/supervisor/process.js';

const FORT = 'fort-dev-1';

interface LinkInfo {
  state: string;
  connects: number;
  connectAttempts: number;
  lastError?: string;
}

describe('IoT link under disruption (real agent process, real bridge)', () => {
  let pki: PkiPaths;
  let inst: TestInstallation;
  let dev: TestDevCloud | undefined;
  let agent: Supervised | undefined;
  beforeAll(async () => {
    pki = await testPki();
    inst = await testInstallation(pki, { fortId: FORT, iot: true });
  });
  afterAll(async () => {
    await agent?.stop();
    await dev?.stop();
    inst.cleanup();
  });

  const link = async (): Promise<LinkInfo> => {
    const tls = {
      ca: readFileSync(pki.trustZone.ca),
      cert: readFileSync(pki.trustZone.fortctlCert),
      key: readFileSync(pki.trustZone.fortctlKey),
    };
    const res = await httpsRequest(`https://127.0.0.1:${inst.layout.ports.admin}/admin/v1/health`, tls);
    return (JSON.parse(res.body) as { modules: Record<string, { info: LinkInfo }> }).modules['iot-link']!.info;
  };
  const connectedAfter = (connects: number, what: string) =>
    eventually(
      async () => {
        const l = await link();
        return l.state === 'connected' && l.connects > connects ? l : undefined;
      },
      30_000,
      what,
    );

  it('connects once the bridge comes up when started during an outage, without a restart', async () => {
    agent = await startAgent(inst.files.agent);
    await agent.waitReady(20_000); // serving locally although the cloud is unreachable
    const down = await eventually(
      async () => {
        const l = await link();
        return l.connectAttempts >= 3 ? l : undefined;
      },
      20_000,
      'three failed attempts',
    );
    expect(down.state).not.toBe('connected');
    expect(down.lastError).toMatch(/ECONNREFUSED|credentials provider|connect/i);
    dev = await testDevCloud(pki, { ports: inst.layout.ports });
    await connectedAfter(0, 'the link after the outage');
  });

  it('loses no event and handles none twice: 1 000 events across 5 disruptions', async () => {
    const d = dev!;
    const sent: string[] = [];
    const publishBatch = async (n: number) => {
      const batch = Array.from({ length: n }, () => ({
        v: 1,
        id: randomUUID(),
        type: 'ping',
        fortId: FORT,
        ts: new Date().toISOString(),
        data: {},
      }));
      for (const e of batch) {
        sent.push(e.id);
        await d.bridge.publish(`forts/${FORT}/events`, JSON.stringify(e));
      }
    };
    const pongIds = () => {
      const byPing = new Map<string, Set<string>>();
      for (const m of d.bridge.messages) {
        if (m.topic !== `forts/${FORT}/status`) continue;
        const p = JSON.parse(m.payload.toString()) as { id: string; type: string; data: { pingId: string } };
        if (p.type === 'pong') byPing.set(p.data.pingId, (byPing.get(p.data.pingId) ?? new Set()).add(p.id));
      }
      return byPing;
    };
    // Pongs survive bridge restarts here, not in the broker's in-memory log.
    const seen = new Map<string, Set<string>>();
    const allAnswered = (what: string) =>
      eventually(
        () => {
          for (const [k, v] of pongIds()) seen.set(k, new Set([...(seen.get(k) ?? []), ...v]));
          return sent.every((id) => seen.has(id)) ? true : undefined;
        },
        60_000,
        what,
      );

    await publishBatch(200);
    // 1. Network drop: events published while the persistent session is offline are queued.
    let before = (await link()).connects;
    d.bridge.dropConnections();
    await publishBatch(200);
    await connectedAfter(before, 'reconnect after the drop');
    await allAnswered('pongs after the drop');

    // 2. Duplicate client id: another client takes over the session, then leaves.
    before = (await link()).connects;
    const intruder = await connectBareClient(d, FORT, { clean: false });
    await new Promise<void>((resolve) => intruder.end(true, {}, () => resolve()));
    await connectedAfter(before, 'reconnect after the kick');
    await publishBatch(200);
    await allAnswered('pongs after the kick');

    // 3. Temporary credentials revoked (as after a cloud-side outage) and the link cut.
    before = (await link()).connects;
    d.cloud.credentialStore.revokeAll();
    d.bridge.dropConnections();
    await connectedAfter(before, 'reconnect with fresh credentials');
    await publishBatch(200);
    await allAnswered('pongs after the credential revocation');

    // 4. and 5. Bridge restarts. The dev broker keeps sessions in memory (AWS keeps them
    // an hour), so each batch is answered before the next restart and sent after resubscription.
    for (const round of [4, 5]) {
      await allAnswered(`pongs before bridge restart ${round}`);
      before = (await link()).connects;
      await d.restart();
      await connectedAfter(before, `reconnect after bridge restart ${round}`);
      await publishBatch(100);
    }
    await allAnswered('every pong');
    expect(sent).toHaveLength(1000);
    for (const id of sent) expect(seen.get(id)?.size, `event ${id} handled exactly once`).toBe(1);
  }, 180_000);
});
