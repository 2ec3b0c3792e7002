import type { PkiPaths } from '../../lib/pki/layout.js';
import type { PolicyInput } from '../../dev-cloud/cloud-api/policy.js';
import { createAdminClient, type AdminReload } from '../../lib/admin-client.js';
import { loadTlsMaterial } from '../../lib/tls.js';
import type { ProcessSpec } from '../../scripts/supervisor/process.js';
import { testDevCloud } from './dev-cloud.js';
import { eventually, startAgent, startEngine, testInstallation, type TestInstallation } from './fort.js';

export interface EngineStackOptions {
  fortId: string;
  policy: PolicyInput;
  iot?: boolean;
  logLevel?: string;
  /** Origins the dev cloud's redirect login may send tokens to (the fort's own viewer). */
  fortOrigins?: (inst: TestInstallation) => string[];
  /** How the engine is supervised, e.g. restarted as its unit does. */
  engine?: Partial<ProcessSpec>;
  /** Before anything starts: e.g. the app sources written into `inst.layout.sourcesDir`. */
  prepare?: (inst: TestInstallation) => void | Promise<void>;
}

/**
 * One fort installation with fort-engine on loopback, as tests drive it: the dev cloud (user
 * tokens, authorisation by `policy`), the real engine and agent processes, and the operator's
 * admin client (fortctl's trust-zone identity). `stop()` ends all of it.
 */
export async function startEngineStack(pki: PkiPaths, o: EngineStackOptions) {
  const inst = await testInstallation(pki, {
    fortId: o.fortId,
    cloudAuth: true,
    engine: true,
    ...(o.iot ? { iot: true } : {}),
    logLevel: o.logLevel ?? 'info',
  });
  await o.prepare?.(inst);
  const dev = await testDevCloud(pki, {
    ports: inst.layout.ports,
    policy: o.policy,
    ...(o.fortOrigins ? { fortOrigins: o.fortOrigins(inst) } : {}),
  });
  const engine = await startEngine(inst.files.engine, o.engine);
  const agent = await startAgent(inst.files.agent);
  await Promise.all([engine.waitReady(20_000), agent.waitReady(20_000)]);
  const admin = createAdminClient({
    url: `https://127.0.0.1:${inst.layout.ports.admin}`,
    tls: loadTlsMaterial({ ca: pki.trustZone.ca, cert: pki.trustZone.fortctlCert, key: pki.trustZone.fortctlKey }),
    timeoutMs: 30_000,
  });
  /** The app's reloads once one of them succeeded (a failed one fails the wait, with the list). */
  const reloaded = (appId: string, timeoutMs = 60_000): Promise<AdminReload> =>
    eventually(
      async () => {
        const r = (await admin.reloads({ app: appId })).body.reloads;
        if (r.some((x) => x.state === 'failed')) throw new Error(JSON.stringify(r));
        return r.find((x) => x.state === 'succeeded');
      },
      timeoutMs,
      `a reload of ${appId} to succeed`,
    );
  return {
    inst,
    dev,
    engine,
    agent,
    admin,
    clientApi: `https://127.0.0.1:${inst.layout.ports.clientApi}`,
    reloaded,
    /** Registers an app as the operator does and waits for its first reload to succeed. */
    async loadApp(toml: string, appId: string, timeoutMs?: number): Promise<AdminReload> {
      const added = await admin.addApp(toml, 'toml');
      if (added.statusCode >= 300) throw new Error(`app ${appId} refused: ${JSON.stringify(added.body)}`);
      await admin.startReload(appId);
      return reloaded(appId, timeoutMs);
    },
    async stop() {
      admin.close();
      await agent.stop();
      await engine.stop();
      await dev.stop();
      inst.cleanup();
    },
  };
}
export type EngineStack = Awaited<ReturnType<typeof startEngineStack>>;
