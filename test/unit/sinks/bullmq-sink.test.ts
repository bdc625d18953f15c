/**
 * The bullmq sink against a private redis-server: one job per row, ids deterministic, and a replay
 * of the same rows (recovery, or a job resubmitted from a savepoint) adds nothing.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BullMqSink, bullJobId } from '../../../core/sinks/bullmq-sink.js';
import type { Row } from '../../../core/spec/types.js';
import { startRedis, type TestRedis } from '../../support/redis.js';

const alerts: Row[] = [
  { sensor: 's1', ts: 1717200001000, value: 31, rule: 'jump', detail: '+6.0 °C' },
  { sensor: 's1', ts: 1717200061000, value: 40, rule: 'rate', detail: '9 °C/min' },
  { sensor: 'room:2', ts: 1717200001000, value: 31, rule: 'jump', detail: '+5.5 °C' },
];

describe('bullmq sink', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  it('derives ids from the job name and the alert, without ":"', () => {
    expect(bullJobId('spikes', alerts[0])).toBe('spikes|s1|1717200001000|jump');
    expect(bullJobId('spikes', alerts[2])).toBe('spikes|room_2|1717200001000|jump');
    expect(bullJobId('rooms', { key: 'kitchen', windowStart: 0, avg: 1 })).toBe('rooms|kitchen|0');
  });

  it('queues each alert once, also when the same rows are written again', async () => {
    let rows = 0;
    for (let attempt = 0; attempt < 2; attempt++) {
      const sink = new BullMqSink({ type: 'bullmq', queue: 'alerts' }, 'spikes', redis.url, () => rows++);
      for (const a of alerts) sink.processElement(a);
      sink.processWatermark();
      await sink.endOfInput();
    }
    expect(rows).toBe(6);
    const q = new Queue('alerts', { connection: { host: '127.0.0.1', port: redis.port } });
    try {
      const jobs = await q.getJobs(['waiting']);
      expect(jobs.map((j) => j.id).sort()).toEqual(alerts.map((a) => bullJobId('spikes', a)).sort());
      expect(jobs.find((j) => j.id === 'spikes|s1|1717200061000|rate')?.data).toEqual(alerts[1]);
    } finally {
      await q.close();
    }
  });

  it('fails with SINK_IO naming the queue when Redis is gone', async () => {
    const sink = new BullMqSink(
      { type: 'bullmq', queue: 'nowhere', url: 'redis://127.0.0.1:1' },
      'x',
      redis.url,
      () => {},
      { timeoutMs: 1500 },
    );
    sink.processElement(alerts[0]);
    await expect(sink.endOfInput()).rejects.toThrow(/cannot add alerts to BullMQ queue nowhere/);
  }, 30_000);
});
