import { describe, expect, it } from 'vitest';
import {
  RateTracker,
  ratesBetween,
  type sampleOf,
  vertexRates,
  vertexWatermark,
  zeroRates,
} from '../../../jobmanager/rates.js';

const sample = (atMs: number, c: Partial<ReturnType<typeof sampleOf>> = {}) => ({
  atMs,
  recordsIn: 0,
  recordsOut: 0,
  busyMs: 0,
  backpressuredMs: 0,
  recordsOutByEdge: {},
  ...c,
});

describe('ratesBetween', () => {
  it('divides counter deltas by the interval: 500 records in 500 ms is 1000/s', () => {
    const r = ratesBetween(
      sample(1000, { recordsIn: 100, recordsOut: 50, recordsOutByEdge: { '0': 50 } }),
      sample(1500, { recordsIn: 600, recordsOut: 300, recordsOutByEdge: { '0': 300 } }),
    );
    expect(r.recordsInPerSec).toBe(1000);
    expect(r.recordsOutPerSec).toBe(500);
    expect(r.recordsOutPerSecByEdge).toEqual({ '0': 500 });
  });

  it('busy and backpressured ratios are the share of the interval, clamped to 0..1', () => {
    const r = ratesBetween(
      sample(0, { busyMs: 100, backpressuredMs: 0 }),
      sample(1000, { busyMs: 500, backpressuredMs: 250 }),
    );
    expect(r.busyRatio).toBeCloseTo(0.4);
    expect(r.backpressuredRatio).toBeCloseTo(0.25);
    // measured on another clock: a little over the interval is still 1, never more
    expect(ratesBetween(sample(0), sample(1000, { busyMs: 1010 })).busyRatio).toBe(1);
  });

  it('a counter going backwards or a zero interval gives no negative or infinite rate', () => {
    expect(ratesBetween(sample(0, { recordsIn: 10 }), sample(1000, { recordsIn: 5 })).recordsInPerSec).toBe(0);
    expect(ratesBetween(sample(1000, { recordsIn: 1 }), sample(1000, { recordsIn: 9 }))).toEqual(zeroRates());
  });
});

describe('RateTracker', () => {
  it('needs two samples, then rates follow the last interval', () => {
    const t = new RateTracker();
    t.observe('j:1:source-0', { recordsIn: 0, sampledAtMs: 1000 }, 1000);
    expect(t.rates('j:1:source-0', 1000).recordsInPerSec).toBe(0);
    t.observe('j:1:source-0', { recordsIn: 2000, sampledAtMs: 2000 }, 2000);
    expect(t.rates('j:1:source-0', 2000).recordsInPerSec).toBe(2000);
    t.observe('j:1:source-0', { recordsIn: 2500, sampledAtMs: 3000 }, 3000);
    expect(t.rates('j:1:source-0', 3000).recordsInPerSec).toBe(500);
  });

  it('a repeated sample (same sampledAtMs: a heartbeat without fresh counters) changes nothing', () => {
    const t = new RateTracker();
    t.observe('k', { recordsIn: 0, sampledAtMs: 0 }, 0);
    t.observe('k', { recordsIn: 1000, sampledAtMs: 1000 }, 1000);
    t.observe('k', { recordsIn: 1000, sampledAtMs: 1000 }, 1500);
    expect(t.rates('k', 1500).recordsInPerSec).toBe(1000);
  });

  it('a sample closer than minIntervalMs replaces the newest one instead of making a tiny interval', () => {
    const t = new RateTracker({ minIntervalMs: 250 });
    t.observe('k', { recordsIn: 0, sampledAtMs: 0 }, 0);
    t.observe('k', { recordsIn: 1000, sampledAtMs: 1000 }, 1000);
    t.observe('k', { recordsIn: 1100, sampledAtMs: 1100 }, 1100);
    expect(t.rates('k', 1100).recordsInPerSec).toBeCloseTo(1000);
  });

  it('rates of a subtask that stopped reporting fall to 0; forget drops a job attempt', () => {
    const t = new RateTracker({ staleMs: 3000 });
    t.observe('j:1:a', { recordsIn: 0, sampledAtMs: 0 }, 0);
    t.observe('j:1:a', { recordsIn: 100, sampledAtMs: 1000 }, 1000);
    expect(t.rates('j:1:a', 3999).recordsInPerSec).toBe(100);
    expect(t.rates('j:1:a', 4001).recordsInPerSec).toBe(0);
    t.forget('j:1:');
    expect(t.rates('j:1:a', 1000).recordsInPerSec).toBe(0);
  });

  it('counters without sampledAtMs are timed by when the JobManager got them', () => {
    const t = new RateTracker();
    t.observe('k', { recordsIn: 0 }, 10_000);
    t.observe('k', { recordsIn: 500 }, 10_500);
    expect(t.rates('k', 10_500).recordsInPerSec).toBe(1000);
  });
});

describe('vertex aggregates', () => {
  it('sums rates and averages ratios over subtasks', () => {
    const v = vertexRates([
      {
        recordsInPerSec: 10,
        recordsOutPerSec: 5,
        busyRatio: 0.2,
        backpressuredRatio: 0,
        recordsOutPerSecByEdge: { '1': 5 },
      },
      {
        recordsInPerSec: 30,
        recordsOutPerSec: 15,
        busyRatio: 0.6,
        backpressuredRatio: 0.5,
        recordsOutPerSecByEdge: { '1': 15 },
      },
    ]);
    expect(v).toEqual({
      recordsInPerSec: 40,
      recordsOutPerSec: 20,
      busyRatio: 0.4,
      backpressuredRatio: 0.25,
      recordsOutPerSecByEdge: { '1': 20 },
    });
    expect(vertexRates([]).busyRatio).toBe(0);
  });

  it('the vertex watermark is the minimum finite subtask watermark', () => {
    expect(vertexWatermark([300, 100, null, 200])).toBe(100);
    expect(vertexWatermark([null, undefined])).toBeNull();
    expect(vertexWatermark([Number.POSITIVE_INFINITY, 5])).toBe(5);
  });
});
