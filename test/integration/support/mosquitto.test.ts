import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type TestMosquitto } from '../../support/mosquitto.js';

describe('test support: private mosquitto', () => {
  let broker: TestMosquitto;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(() => broker?.stop());

  it('delivers a QoS 1 message published on its port', async () => {
    const sub = await mqtt.connectAsync(broker.url);
    const pub = await mqtt.connectAsync(broker.url);
    try {
      const got = new Promise<string>((resolve) => sub.on('message', (_t, m) => resolve(m.toString())));
      await sub.subscribeAsync('home/+/+/temperature', { qos: 1 });
      await pub.publishAsync('home/h1/kitchen/temperature', '21.5', { qos: 1 });
      expect(await got).toBe('21.5');
    } finally {
      await sub.endAsync();
      await pub.endAsync();
    }
  });
});
