/**
 * Dashboard data (jobmanager/dashboard.ts) over a private Redis: the latest window per key of a
 * redis sink's hashes, series, heat map cells, and alerts from a BullMQ queue; plus the pure
 * shaping helpers.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bullConnection } from '../../core/sinks/bullmq-sink.js';
import type { JobSpec } from '../../core/spec/types.js';
import { aggregateFields, Dashboard, parseHashName, querySensors, sensorRow } from '../../jobmanager/dashboard.js';
import { startRedis, type TestRedis, uniquePrefix } from '../support/redis.js';

let redis: TestRedis;
let client: Redis;
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

const spec = (sink: JobSpec['sink'], keyFields: string[]): JobSpec =>
  ({
    name: 'dash',
    steps: [
      { kind: 'keyBy', fields: keyFields },
      { kind: 'window', window: { type: 'tumbling', sizeMs: 60_000 } },
      {
        kind: 'aggregate',
        aggregates: [
          { output: 'n', kind: 'count' },
          { output: 'mean', kind: 'avg', field: 'temperature' },
          { output: 'max', kind: 'max', field: 'temperature' },
        ],
      },
    ],
    sink,
  }) as unknown as JobSpec;

describe('dashboard shaping (pure)', () => {
  it('hash names: window results, running aggregates, the fence', () => {
    expect(parseHashName('temps', 'temps:h1|kitchen:60000')).toEqual({ key: 'h1|kitchen', windowStart: 60000 });
    expect(parseHashName('temps', 'temps:a:b')).toEqual({ key: 'a:b', windowStart: null });
    expect(parseHashName('temps', 'temps:fluxo-fence')).toBeNull();
    expect(parseHashName('temps', 'other:x:1')).toBeNull();
  });

  it('aggregates are found by output name, else by kind; the key splits into its fields', () => {
    const s = spec({ type: 'redis', keyPrefix: 'p' }, ['house', 'room']);
    const aggs = aggregateFields(s);
    expect(aggs).toEqual({ avg: 'mean', min: null, max: 'max', count: 'n' });
    const row = sensorRow(
      'h1|kitchen',
      { key: 'h1|kitchen', windowStart: '0', windowEnd: '60000', mean: '21.5', max: '23', n: '6' },
      ['house', 'room'],
      aggs,
      61_200,
    );
    expect(row).toEqual({
      key: 'h1|kitchen',
      fields: { house: 'h1', room: 'kitchen' },
      windowStart: 0,
      windowEnd: 60000,
      avg: 21.5,
      min: null,
      max: 23,
      count: 6,
      freshnessMs: 1200,
    });
  });

  it('search, sort (nulls last), order and paging', () => {
    const mk = (key: string, avg: number | null) =>
      ({
        key,
        fields: {},
        windowStart: 0,
        windowEnd: 0,
        avg,
        min: null,
        max: null,
        count: null,
        freshnessMs: 0,
      }) as const;
    const rows = [mk('b-kitchen', 20), mk('a-kitchen', 25), mk('c-bath', null), mk('d-kitchen', 18)];
    expect(querySensors(rows, { sort: 'avg', order: 'desc' }).sensors.map((r) => r.key)).toEqual([
      'a-kitchen',
      'b-kitchen',
      'd-kitchen',
      'c-bath',
    ]);
    const page = querySensors(rows, { search: 'KIT', sort: 'key', offset: 1, limit: 1 });
    expect(page.total).toBe(3);
    expect(page.sensors.map((r) => r.key)).toEqual(['b-kitchen']);
  });
});

describe('Dashboard over Redis', () => {
  it('sensors: the latest window of every key (10,000 keys), series and heat map', async () => {
    const prefix = `${uniquePrefix('dash')}temps`;
    const pipe = client.pipeline();
    const N = 10_000;
    for (let i = 0; i < N; i++) {
      const house = `h${Math.floor(i / 10)}`;
      const room = `r${i % 10}`;
      const key = `${house}|${room}`;
      for (const ws of [0, 60_000]) {
        pipe.hset(`${prefix}:${key}:${ws}`, {
          key,
          house,
          room,
          windowStart: ws,
          windowEnd: ws + 60_000,
          n: 6,
          mean: ws === 0 ? 10 : 20 + (i % 7),
          max: 30,
        });
      }
    }
    pipe.hset(`${prefix}:fluxo-fence`, { job: 'x', epoch: 1 });
    await pipe.exec();
    const d = new Dashboard({ redisUrl: redis.url });
    try {
      const s = spec({ type: 'redis', keyPrefix: prefix, url: redis.url }, ['house', 'room']);
      const t0 = Date.now();
      const all = await d.sensors(s, { limit: 5, sort: 'avg', order: 'desc' }, 200_000);
      const firstMs = Date.now() - t0;
      expect(all.total).toBe(N);
      expect(all.sensors).toHaveLength(5);
      for (const r of all.sensors) {
        expect(r.windowStart).toBe(60_000);
        expect(r.avg).toBe(26);
        expect(r.freshnessMs).toBe(200_000 - 120_000);
      }
      // the second request within the cache time does not scan again
      const t1 = Date.now();
      const hit = await d.sensors(s, { search: 'h7|r3' }, 200_000);
      expect(Date.now() - t1).toBeLessThan(Math.max(200, firstMs));
      expect(hit.sensors.map((r) => r.key)).toEqual(['h7|r3']);
      expect(hit.sensors[0].fields).toEqual({ house: 'h7', room: 'r3' });

      const series = await d.series(s, 'h7|r3');
      expect(series.points.map((p) => [p.windowStart, p.avg])).toEqual([
        [0, 10],
        [60_000, 20 + (73 % 7)],
      ]);
      expect((await d.series(s, 'h7|r3', 1)).points.map((p) => p.windowStart)).toEqual([60_000]);

      const heat = await d.heatmap(s, 200_000);
      expect(heat.levels).toEqual(['house', 'room']);
      expect(heat.cells).toHaveLength(N);
      expect(heat.cells.find((c) => c.house === 'h7' && c.room === 'r3')).toEqual({
        house: 'h7',
        room: 'r3',
        avg: 20 + (73 % 7),
        windowStart: 60_000,
      });
    } finally {
      await d.close();
    }
  });

  it('alerts: the newest first from the bullmq queue; a job without such a sink is 404', async () => {
    const queueName = `alerts-${Date.now()}`;
    const q = new Queue(queueName, { connection: bullConnection(redis.url) });
    for (let i = 0; i < 5; i++)
      await q.add('alert', { sensor: `s${i}`, ts: 1000 * i, value: 20 + i, rule: 'jump', detail: `Δ ${i}` });
    await q.close();
    const d = new Dashboard({ redisUrl: redis.url });
    try {
      const s = spec({ type: 'bullmq', queue: queueName, url: redis.url }, ['sensorId']);
      const { alerts } = await d.alerts(s, 3);
      expect(alerts).toEqual([
        { sensor: 's4', ts: 4000, value: 24, rule: 'jump', detail: 'Δ 4' },
        { sensor: 's3', ts: 3000, value: 23, rule: 'jump', detail: 'Δ 3' },
        { sensor: 's2', ts: 2000, value: 22, rule: 'jump', detail: 'Δ 2' },
      ]);
      await expect(d.sensors(s, {})).rejects.toMatchObject({ code: 'NOT_FOUND', status: 404 });
    } finally {
      await d.close();
    }
  });
});
