import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { MqttLink } from '../../../agent/iot/link.js';
import { eachMessage, testLink, testProviderCredentials } from '../../helpers/iot-link.js';
import { staticCredentials, type CredentialSource } from '../../../agent/iot/credentials.js';
import { writeSecretFile } from '../../../lib/files.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';
import { eventually, tempDir, testPki } from '../../helpers/fort.js';
import { DEV_STATIC_KEY, testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';

const FORT = 'fort-dev-1';

describe('IoT link through the dev bridge (real WSS, TLS, SigV4 check)', () => {
  let pki: PkiPaths;
  let dev: TestDevCloud;
  const links: MqttLink[] = [];
  beforeAll(async () => {
    pki = await testPki();
    dev = await testDevCloud(pki);
  });
  afterAll(async () => {
    await Promise.all(links.map((l) => l.stop()));
    await dev.stop();
  });

  const link = (
    credentials: CredentialSource,
    onMessage: (topic: string, payload: Buffer) => void = () => {},
    thingName = FORT,
  ) => {
    const l = testLink(dev, credentials, { onMessages: eachMessage(onMessage), thingName });
    links.push(l);
    return l;
  };
  const connected = (l: MqttLink) =>
    new Promise<void>((resolve) => (l.state === 'connected' ? resolve() : l.events.once('connected', resolve)));

  it('connects with static credentials, subscribes, receives an event and announces presence', async () => {
    const got: string[] = [];
    const l = link(staticCredentials(dev.staticFile), (topic, payload) => got.push(`${topic} ${payload.toString()}`));
    l.start();
    await connected(l);
    await dev.bridge.publish(`forts/${FORT}/events`, '{"hello":1}');
    await eventually(() => (got.length ? got : undefined), 5000, 'the event');
    expect(got).toEqual([`forts/${FORT}/events {"hello":1}`]);
    await eventually(
      () =>
        dev.bridge.messages.find(
          (m) => m.topic === `forts/${FORT}/presence` && m.payload.toString().includes('presence.online'),
        ),
      5000,
      'online presence',
    );
    await l.publish(`forts/${FORT}/status`, '{"ok":true}');
    expect(dev.bridge.messages.some((m) => m.topic === `forts/${FORT}/status` && m.clientId === FORT)).toBe(true);
    await l.stop();
    expect(l.state).toBe('stopped');
  });

  it('withholds the PUBACK when the handler throws, so the broker redelivers after reconnect', async () => {
    let calls = 0;
    const l = link(staticCredentials(dev.staticFile), () => {
      calls += 1;
      if (calls === 1) throw new Error('disk full');
    });
    l.start();
    await connected(l);
    await dev.bridge.publish(`forts/${FORT}/events`, '{"n":1}');
    await eventually(() => (calls >= 2 ? true : undefined), 10_000, 'the redelivery');
    expect(l.stats().connects).toBeGreaterThanOrEqual(2);
    await l.stop();
  });

  it('reconnects after a network drop and after a duplicate client id kicks it', async () => {
    const l = link(staticCredentials(dev.staticFile));
    l.start();
    await connected(l);
    const before = l.stats().connects;
    const reconnected = new Promise<void>((r) => l.events.once('connected', r));
    dev.bridge.dropConnections();
    await reconnected;
    expect(l.stats().connects).toBe(before + 1);

    const intruder = link(staticCredentials(dev.staticFile));
    intruder.start();
    await connected(intruder);
    await intruder.stop(); // the intruder leaves; our link must come back by itself
    await eventually(
      () => (l.stats().connects >= before + 2 && l.state === 'connected' ? true : undefined),
      10_000,
      'reconnect after the kick',
    );
    await l.stop();
  });

  it('backs off on refused credentials instead of storming the bridge', async () => {
    const dir = tempDir('badcreds');
    const file = join(dir, 'creds.json');
    writeSecretFile(file, JSON.stringify({ ...DEV_STATIC_KEY, secretAccessKey: 'wrong-secret-wrong-secret-wrong' }));
    const rejectedBefore = dev.bridge.stats.upgradesRejected;
    const l = link(staticCredentials(file));
    l.start();
    const windowStart = Date.now();
    await eventually(
      () => (dev.bridge.stats.upgradesRejected - rejectedBefore >= 3 ? true : undefined),
      15_000,
      'three refused attempts',
    );
    const elapsed = Date.now() - windowStart;
    await l.stop();
    const attempts = dev.bridge.stats.upgradesRejected - rejectedBefore;
    expect(dev.bridge.stats.lastRejection).toBe('signature mismatch');
    // Never faster than one CONNECT per second per client id.
    expect(attempts).toBeLessThanOrEqual(Math.floor(elapsed / 1000) + 1);
    expect(l.stats().lastError).toMatch(/403/);
  });

  it('gets temporary credentials from the provider over device mTLS and recovers when the bridge forgets them', async () => {
    const creds = testProviderCredentials(dev, pki);
    const l = link(creds);
    l.start();
    await connected(l);
    expect(creds.clockSkewMs()).toBeDefined();
    expect(Math.abs(creds.clockSkewMs()!)).toBeLessThan(2000);
    // A bridge restart forgets every temporary key: the old ones are now refused.
    await dev.restart();
    await eventually(
      () => (l.state === 'connected' && l.stats().connects >= 2 ? true : undefined),
      20_000,
      'reconnect with fresh credentials',
    );
    await l.stop();
  });
});

describe('IoT link and the connection lifetime limit', () => {
  it('reconnects promptly each time the bridge ends a connection at its maximum lifetime', async () => {
    const pki = await testPki();
    const dev = await testDevCloud(pki, { maxConnectionSeconds: 1 });
    const l = testLink(dev, staticCredentials(dev.staticFile));
    try {
      l.start();
      const t0 = Date.now();
      await eventually(() => (l.stats().connects >= 3 ? true : undefined), 15_000, 'three connections');
      // 1 s lifetime, one CONNECT per second at most: ≥ 2 s for three connections, and every
      // attempt succeeded, so a lifetime disconnect never led into backoff.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
      expect(l.stats().connectAttempts).toBe(l.stats().connects);
    } finally {
      await l.stop();
      await dev.stop();
    }
  });
});

describe('IoT link and expiring temporary credentials', () => {
  it('stays up past expiry (AWS checks credentials at connect) and reconnects with fresh ones, never the expired', async () => {
    const pki = await testPki();
    const dev = await testDevCloud(pki, { lifetimeSeconds: 2 });
    const creds = testProviderCredentials(dev, pki);
    const issued: string[] = [];
    const source: CredentialSource = {
      get: async () => {
        const c = await creds.get();
        if (!issued.includes(c.accessKeyId)) issued.push(c.accessKeyId);
        return c;
      },
      invalidate: () => creds.invalidate(),
      clockSkewMs: () => creds.clockSkewMs(),
    };
    const l = testLink(dev, source);
    try {
      l.start();
      await eventually(() => (l.state === 'connected' ? true : undefined), 10_000, 'first connection');
      const first = (await creds.get()).expiration!;
      // The session outlives its credentials.
      await eventually(
        () => (Date.now() > first.getTime() + 200 ? true : undefined),
        10_000,
        'the credentials to expire',
      );
      expect(l.state).toBe('connected');
      const rejected = dev.bridge.stats.upgradesRejected;
      dev.bridge.dropConnections();
      await eventually(
        () => (l.stats().connects >= 2 && l.state === 'connected' ? true : undefined),
        10_000,
        'reconnect',
      );
      expect(dev.bridge.stats.upgradesRejected).toBe(rejected);
      expect(issued.length).toBeGreaterThanOrEqual(2);
    } finally {
      await l.stop();
      await dev.stop();
    }
  });
});
