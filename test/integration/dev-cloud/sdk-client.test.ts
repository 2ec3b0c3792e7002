import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { auth, iot, mqtt } from 'aws-iot-device-sdk-v2';
import { testPki } from '../../helpers/fort.js';
import { DEV_STATIC_KEY, testDevCloud, type TestDevCloud } from '../../helpers/dev-cloud.js';
import type { PkiPaths } from '../../../lib/pki/layout.js';

/**
 * An independent client: the AWS IoT Device SDK v2 (aws-crt, native) connects to the dev
 * bridge over WSS with its own SigV4 presigning. If our bridge only accepted what our own
 * presigner produces, this would fail.
 */
describe('dev IoT bridge accepts the AWS IoT Device SDK v2 client', () => {
  let pki: PkiPaths;
  let dev: TestDevCloud;
  beforeAll(async () => {
    pki = await testPki();
    dev = await testDevCloud(pki);
  });
  afterAll(async () => {
    await dev.stop();
  });

  const connection = (secretAccessKey: string) => {
    const port = Number(dev.endpoint.split(':')[1]);
    const config = iot.AwsIotMqttConnectionConfigBuilder.new_with_websockets({
      region: 'eu-west-1',
      credentials_provider: auth.AwsCredentialsProvider.newStatic(DEV_STATIC_KEY.accessKeyId, secretAccessKey),
    })
      .with_endpoint('localhost')
      .with_port(port)
      .with_certificate_authority(readFileSync(pki.cloudServer.ca, 'utf8'))
      .with_client_id('sdk-thing')
      .with_clean_session(true)
      .build();
    return new mqtt.MqttClient().new_connection(config);
  };

  it('connects with SigV4, subscribes and receives a QoS 1 message', async () => {
    const conn = connection(DEV_STATIC_KEY.secretAccessKey);
    await conn.connect();
    let deliver: (s: string) => void = () => {};
    const received = new Promise<string>((resolve) => (deliver = resolve));
    await conn.subscribe('forts/sdk-thing/events', mqtt.QoS.AtLeastOnce, (_topic, payload) =>
      deliver(Buffer.from(payload).toString()),
    );
    await dev.bridge.publish('forts/sdk-thing/events', '{"from":"bridge"}');
    expect(await received).toBe('{"from":"bridge"}');
    expect(dev.bridge.stats.upgradesAccepted).toBeGreaterThanOrEqual(1);
    await conn.disconnect();
  });

  it('is refused when the SDK signs with the wrong secret', async () => {
    const before = dev.bridge.stats.upgradesRejected;
    const conn = connection('not-the-secret-not-the-secret-000000');
    await expect(conn.connect()).rejects.toThrow();
    expect(dev.bridge.stats.upgradesRejected).toBe(before + 1);
    expect(dev.bridge.stats.lastRejection).toBe('signature mismatch');
  });
});
