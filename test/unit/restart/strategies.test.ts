import { describe, expect, it } from 'vitest';
import {
  ExponentialDelayRestartStrategy,
  FailureRateRestartStrategy,
  FixedDelayRestartStrategy,
  restartStrategy,
} from '../../../core/restart/strategies.js';

const middle = () => 0.5; // zero jitter: -offset + floor(0.5 · 2 · offset) = 0
const lowest = () => 0;
const highest = () => 0.999;

describe('exponential delay (defaults: 1 s, ×2, max 5 min, reset after 1 h, jitter 0.1)', () => {
  it('doubles the delay for failures close together: 1 s, 2 s, 4 s', () => {
    const s = new ExponentialDelayRestartStrategy({}, middle);
    expect(s.onFailure(0)).toEqual({ restart: true, delayMs: 1000 });
    expect(s.onFailure(10_000)).toEqual({ restart: true, delayMs: 2000 });
    expect(s.onFailure(20_000)).toEqual({ restart: true, delayMs: 4000 });
  });

  it('resets to 1 s once the job ran 1 h after its last restart delay (20 s + 4 s + 1 h)', () => {
    const s = new ExponentialDelayRestartStrategy({}, middle);
    s.onFailure(0);
    s.onFailure(10_000);
    s.onFailure(20_000); // backoff 4000
    const t = 20_000 + 4000 + 3_600_000;
    const early = new ExponentialDelayRestartStrategy({}, middle);
    early.onFailure(0);
    early.onFailure(10_000);
    early.onFailure(20_000);
    expect(early.onFailure(t - 1)).toEqual({ restart: true, delayMs: 8000 });
    expect(s.onFailure(t)).toEqual({ restart: true, delayMs: 1000 });
  });

  it('caps the delay at 5 min: the 10th close failure waits 300 s, not 2^9 s = 512 s', () => {
    const s = new ExponentialDelayRestartStrategy({}, middle);
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      const d = s.onFailure(i * 1000);
      if (d.restart) delays.push(d.delayMs);
    }
    expect(delays.slice(-3)).toEqual([128_000, 256_000, 300_000]);
  });

  it('adds jitter in [-10%, +10%) of the backoff, never below the initial or above the maximum', () => {
    const low = new ExponentialDelayRestartStrategy({}, lowest);
    expect(low.onFailure(0)).toEqual({ restart: true, delayMs: 1000 }); // 900 clamped to 1000
    expect(low.onFailure(1)).toEqual({ restart: true, delayMs: 1800 }); // 2000 - 200
    const high = new ExponentialDelayRestartStrategy({}, highest);
    high.onFailure(0);
    expect(high.onFailure(1)).toEqual({ restart: true, delayMs: 2199 }); // 2000 - 200 + floor(0.999 · 400)
    const capped = new ExponentialDelayRestartStrategy({ initialBackoffMs: 300_000 }, highest);
    expect(capped.onFailure(0)).toEqual({ restart: true, delayMs: 300_000 });
  });

  it('rejects a maximum below the initial backoff', () => {
    expect(() => new ExponentialDelayRestartStrategy({ initialBackoffMs: 5000, maxBackoffMs: 1000 }, middle)).toThrow(
      expect.objectContaining({ code: 'SPEC_INVALID' }),
    );
  });
});

describe('fixed delay', () => {
  it('restarts twice after 500 ms with attempts 2, then gives up', () => {
    const s = new FixedDelayRestartStrategy({ attempts: 2, delayMs: 500 });
    expect(s.onFailure(0)).toEqual({ restart: true, delayMs: 500 });
    expect(s.onFailure(1_000_000)).toEqual({ restart: true, delayMs: 500 });
    expect(s.onFailure(2_000_000)).toEqual({ restart: false, reason: 'ATTEMPTS_EXHAUSTED' });
  });
});

describe('failure rate (2 failures per 60 s)', () => {
  const cfg = { maxFailuresPerInterval: 2, failureRateIntervalMs: 60_000, delayMs: 1000 };

  it('fails the job at a third failure within 60 s', () => {
    const s = new FailureRateRestartStrategy(cfg);
    expect(s.onFailure(0)).toEqual({ restart: true, delayMs: 1000 });
    expect(s.onFailure(10_000)).toEqual({ restart: true, delayMs: 1000 });
    expect(s.onFailure(50_000)).toEqual({ restart: false, reason: 'FAILURE_RATE_EXCEEDED' });
  });

  it('forgets a failure exactly 60 s old', () => {
    const s = new FailureRateRestartStrategy(cfg);
    s.onFailure(0);
    s.onFailure(10_000);
    expect(s.onFailure(60_000)).toEqual({ restart: true, delayMs: 1000 }); // window (0, 60000]: 10000, 60000
    expect(s.onFailure(69_999)).toEqual({ restart: false, reason: 'FAILURE_RATE_EXCEEDED' });
  });
});

describe('none', () => {
  it('never restarts', () => {
    expect(restartStrategy({ type: 'none' }).onFailure(0)).toEqual({ restart: false, reason: 'RESTARTS_DISABLED' });
  });

  it('builds each strategy from its config', () => {
    expect(restartStrategy({ type: 'fixed-delay', attempts: 1, delayMs: 5 }).onFailure(0)).toEqual({
      restart: true,
      delayMs: 5,
    });
    expect(restartStrategy({ type: 'exponential-delay' }, middle).onFailure(0)).toEqual({
      restart: true,
      delayMs: 1000,
    });
  });
});
