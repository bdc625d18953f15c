import { describe, expect, it } from 'vitest';
import { loadClusterConfig } from '../../../core/config/index.js';

describe('cluster config: checkpoint defaults', () => {
  it('has none unless FLUXO_CHECKPOINT_INTERVAL_MS is set', () => {
    expect(loadClusterConfig({}).checkpoint).toBeNull();
  });

  it('fills the spec defaults around the interval', () => {
    expect(loadClusterConfig({ FLUXO_CHECKPOINT_INTERVAL_MS: '500' }).checkpoint).toEqual({
      intervalMs: 500,
      timeoutMs: 60_000,
      minPauseMs: 0,
      retained: 3,
      tolerableFailures: 0,
      mode: 'exactly-once',
    });
    const c = loadClusterConfig({
      FLUXO_CHECKPOINT_INTERVAL_MS: '2000',
      FLUXO_CHECKPOINT_MODE: 'at-least-once',
      FLUXO_CHECKPOINT_TOLERABLE_FAILURES: '10',
      FLUXO_CHECKPOINT_MIN_PAUSE_MS: '0',
    }).checkpoint;
    expect(c?.mode).toBe('at-least-once');
    expect(c?.tolerableFailures).toBe(10);
  });

  it('refuses bad values, naming every variable', () => {
    expect(() =>
      loadClusterConfig({
        FLUXO_CHECKPOINT_INTERVAL_MS: '1000',
        FLUXO_CHECKPOINT_MODE: 'twice',
        FLUXO_CHECKPOINT_RETAINED: 'x',
      }),
    ).toThrow(
      /FLUXO_CHECKPOINT_RETAINED: expected a positive integer.*FLUXO_CHECKPOINT_MODE: must be exactly-once or at-least-once/,
    );
  });

  it('refuses other checkpoint settings without the interval', () => {
    expect(() => loadClusterConfig({ FLUXO_CHECKPOINT_MODE: 'bogus' })).toThrow(
      /FLUXO_CHECKPOINT_MODE is set but FLUXO_CHECKPOINT_INTERVAL_MS is not/,
    );
  });
});
