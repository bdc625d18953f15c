import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay, DEFAULT_BACKOFF } from '../../../core/rpc/backoff.js';

const middle = () => 0.5; // factor 1: no jitter
const lowest = () => 0; // factor 1 − jitter
const highest = () => 0.999_999; // factor ≈ 1 + jitter

describe('backoffDelay (defaults: 200 ms, ×2, capped at 2 s, ±20 %)', () => {
  it('doubles from 200 ms and stays at the 2 s cap: 200, 400, 800, 1600, 2000, 2000', () => {
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, {}, middle))).toEqual([200, 400, 800, 1600, 2000, 2000]);
    expect(DEFAULT_BACKOFF).toEqual({ initialMs: 200, maxMs: 2000, multiplier: 2, jitter: 0.2 });
  });

  it('jitters each delay by ±20 % of itself: retry 2 (800 ms) lies in [640, 960]', () => {
    expect(backoffDelay(2, {}, lowest)).toBe(640);
    expect(backoffDelay(2, {}, highest)).toBe(960);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(2);
      expect(d).toBeGreaterThanOrEqual(640);
      expect(d).toBeLessThanOrEqual(960);
    }
  });

  it('never exceeds the cap, also with jitter upwards (2000 · 1.2 is cut to 2000)', () => {
    expect(backoffDelay(10, {}, highest)).toBe(2000);
    expect(backoffDelay(10, {}, lowest)).toBe(1600);
    expect(backoffDelay(3, {}, highest)).toBe(1920); // 1600 · 1.2, under the cap
  });

  it('survives huge retry counts (the power overflows to Infinity, the cap holds)', () => {
    expect(backoffDelay(5000, { multiplier: 10 }, middle)).toBe(2000);
    expect(backoffDelay(Number.MAX_SAFE_INTEGER, {}, middle)).toBe(2000);
  });

  it('takes other schedules: gRPC connection backoff 1 s, ×1.6, max 120 s, ±20 %', () => {
    const grpc = { initialMs: 1000, multiplier: 1.6, maxMs: 120_000, jitter: 0.2 };
    expect([0, 1, 2, 3].map((n) => backoffDelay(n, grpc, middle))).toEqual([1000, 1600, 2560, 4096]);
    expect(backoffDelay(20, grpc, middle)).toBe(120_000);
  });

  it('without jitter the schedule is exact', () => {
    expect([0, 1, 2].map((n) => backoffDelay(n, { jitter: 0 }, highest))).toEqual([200, 400, 800]);
  });

  it('refuses nonsense options and retries', () => {
    expect(() => backoffDelay(-1)).toThrow(/retry must be an integer/);
    expect(() => backoffDelay(1.5)).toThrow(/retry must be an integer/);
    expect(() => backoffDelay(0, { initialMs: 0 })).toThrow(/initialMs must be > 0/);
    expect(() => backoffDelay(0, { initialMs: 500, maxMs: 100 })).toThrow(/maxMs must be ≥ initialMs/);
    expect(() => backoffDelay(0, { multiplier: 0.5 })).toThrow(/multiplier must be ≥ 1/);
    expect(() => backoffDelay(0, { jitter: 1.5 })).toThrow(/jitter must be in \[0, 1\]/);
  });
});

describe('Backoff (stateful schedule)', () => {
  it('hands out the schedule retry after retry and starts again after reset()', () => {
    const b = new Backoff({}, middle);
    expect([b.next(), b.next(), b.next()]).toEqual([200, 400, 800]);
    expect(b.retries).toBe(3);
    b.reset();
    expect(b.retries).toBe(0);
    expect(b.next()).toBe(200);
  });

  it('spreads many TaskManagers retrying at once: 100 first retries are not all equal', () => {
    const first = new Set(Array.from({ length: 100 }, () => new Backoff().next()));
    expect(first.size).toBeGreaterThan(10);
    for (const d of first) expect(d >= 160 && d <= 240).toBe(true);
  });

  it('with the largest jitter upwards, reaches the cap at the 5th retry and stays there', () => {
    const b = new Backoff({}, highest);
    const delays = Array.from({ length: 7 }, () => b.next());
    expect(delays).toEqual([240, 480, 960, 1920, 2000, 2000, 2000]);
  });
});
