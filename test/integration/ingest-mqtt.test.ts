/**
 * `fluxo ingest mqtt` against a real Mosquitto broker and a real Redis (both private, on free
 * ports): readings published with QoS 1 land in the stream exactly once, also when the bridge is
 * SIGKILLed mid-run and restarted (the broker keeps the persistent session's unacknowledged
 * messages and redelivers them; the dedupe marker drops those already stored).
 */
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreContext, storeMessage } from '../../client/ingest-mqtt.js';
import { streamLayout } from '../../core/streams/layout.js';
import { startMosquitto, type TestMosquitto } from '../support/mosquitto.js';
import { startProcess, waitFor } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const T0 = 1717200000000;

async function entries(redis: Redis, name: string, partitions: number): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (const key of streamLayout(name, partitions).keys)
    for (const [, fields] of await redis.xrange(key, '-', '+'))
      out.push(JSON.parse(fields[1]) as Record<string, unknown>);
  return out;
}

describe('fluxo ingest mqtt', () => {
  let redis: TestRedis;
  let broker: TestMosquitto;
  let client: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    broker = await startMosquitto();
    client = new Redis(redis.url);
  });
  afterAll(async () => {
    client?.disconnect();
    await broker?.stop();
    await redis?.stop();
  });

  it('drops a redelivered (DUP) message that is stored already, and nothing else', async () => {
    const c: StoreContext = {
      filter: 'home/+/+/temperature',
      fields: ['house', 'sensor'],
      valueField: 'temperature',
      keyField: 'sensor',
      layout: streamLayout('dedupe', 2),
      clientId: 'c1',
      ttlS: '60',
    };
    const msg = Buffer.from('{"temperature":21.5,"ts":1}');
    const t = 'home/h1/s1/temperature';
    expect(await storeMessage(client, c, t, msg, { messageId: 7, dup: false })).toBe('stored');
    expect(await storeMessage(client, c, t, msg, { messageId: 7, dup: true })).toBe('duplicates');
    // the same payload as a new message (not DUP, or another packet id) is a new reading
    expect(await storeMessage(client, c, t, msg, { messageId: 8, dup: true })).toBe('stored');
    expect(await storeMessage(client, c, t, msg, { messageId: 7, dup: false })).toBe('stored');
    expect(await storeMessage(client, c, 'home/h1/s1/humidity', msg, { messageId: 9 })).toBe('rejected');
    expect(await entries(client, 'dedupe', 2)).toHaveLength(3);
    expect(await client.xlen(c.layout.rejectedKey)).toBe(1);
  });

  it('stores every QoS 1 reading exactly once across a SIGKILL of the bridge', async () => {
    const N = 3000;
    const args = [
      'ingest',
      'mqtt',
      '--broker',
      broker.url,
      '--topic',
      'home/+/+/+/temperature',
      '--fields',
      'house,room,sensor',
      '--value-field',
      'temperature',
      '--stream',
      'readings',
      '--partitions',
      '3',
      '--redis',
      redis.url,
    ];
    let bridge = startProcess('ingest', args);
    const stored = async () => (await entries(client, 'readings', 3)).length;
    const pub = await mqtt.connectAsync(broker.url, { clientId: 'publisher' });
    // the bridge's session exists before publishing starts (its subscription is persistent)
    await waitFor(async () => (await client.hget('fluxo:stream:readings:meta', 'partitions')) === '3', {
      timeoutMs: 15_000,
      message: 'bridge started',
    });
    await new Promise((r) => setTimeout(r, 300));
    const publish = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const topic = `home/h${i % 3}/room${i % 4}/s${i % 10}/temperature`;
        await pub.publishAsync(topic, JSON.stringify({ ts: T0 + i * 1000, temperature: 20 + (i % 50) / 10, seq: i }), {
          qos: 1,
        });
      }
    };
    await publish(0, N / 2);
    await waitFor(async () => (await stored()) >= N / 4, { timeoutMs: 30_000, message: 'a quarter stored' });
    bridge.signal('SIGKILL');
    await bridge.waitForExit();
    expect(bridge.exited?.signal).toBe('SIGKILL');
    // published while the bridge is down: the broker keeps them for its persistent session
    await publish(N / 2, N);
    bridge = startProcess('ingest again', args);
    let have = 0;
    await waitFor(
      async () => {
        have = await stored();
        return have >= N;
      },
      { timeoutMs: 60_000, message: () => `all ${N} stored (have ${have})\n${bridge.describe()}` },
    );
    await new Promise((r) => setTimeout(r, 500)); // any late duplicate would land by now
    bridge.signal('SIGTERM');
    await bridge.waitForExit();
    await pub.endAsync();

    const all = await entries(client, 'readings', 3);
    expect(all).toHaveLength(N);
    expect(new Set(all.map((e) => e.seq)).size).toBe(N);
    // topic levels became fields; one sensor's readings are in one partition, in publish order
    const first = all.find((e) => e.seq === 7);
    expect(first).toMatchObject({ house: 'h1', room: 'room3', sensor: 's7', temperature: 20.7, timestamp: T0 + 7000 });
    const layout = streamLayout('readings', 3);
    for (let s = 0; s < 10; s++) {
      const [, fields] = (await client.xrange(layout.keyFor(`s${s}`), '-', '+')).find(
        ([, f]) => (JSON.parse(f[1]) as { sensor: string }).sensor === `s${s}`,
      ) ?? [undefined, []];
      expect(fields.length).toBeGreaterThan(0);
    }
  }, 120_000);
});
