/**
 * Restart strategies: after a job failure, restart and after what delay, or fail the job. Pure:
 * the JobManager passes the failure time and waits `delayMs` itself; randomness (jitter) comes
 * from an injected source. After Flink's `RestartBackoffTimeStrategy` implementations
 * (exponential-delay, fixed-delay, failure-rate, none).
 */
import { EngineError } from '../errors/index.js';

/** Returns a number in [0, 1), like Math.random. Inject a fake in tests. */
export type RandomSource = () => number;

/**
 * `ATTEMPTS_EXHAUSTED` (fixed delay), `FAILURE_RATE_EXCEEDED` (failure rate),
 * `RESTARTS_DISABLED` (none).
 */
export type NoRestartReason = 'ATTEMPTS_EXHAUSTED' | 'FAILURE_RATE_EXCEEDED' | 'RESTARTS_DISABLED';

export type RestartDecision = { restart: true; delayMs: number } | { restart: false; reason: NoRestartReason };

export interface RestartStrategy {
  /** A failure happened at `nowMs` (ms since the epoch, non-decreasing between calls). */
  onFailure(nowMs: number): RestartDecision;
}

/**
 * Exponential delay. Defaults are Flink 1.15–1.18's (Flink 1.19, FLIP-364, changed the maximum to
 * 1 min and the multiplier to 1.5): initial 1 s, max 5 min, multiplier 2, reset after 1 h, jitter 0.1.
 */
export interface ExponentialDelayConfig {
  /** delay of the first restart, ms; > 0. Default 1000 */
  initialBackoffMs?: number;
  /** delays never exceed this, ms; >= initialBackoffMs. Default 300000 */
  maxBackoffMs?: number;
  /** growth per failure; >= 1. Default 2 */
  multiplier?: number;
  /** the backoff returns to the initial one when the job ran this long without failure, ms. Default 3600000 */
  resetBackoffThresholdMs?: number;
  /** each delay moves by a uniform amount in [-f·d, f·d), clamped to [initial, max]; in [0, 1]. Default 0.1 */
  jitterFactor?: number;
}

/**
 * Never gives up. The backoff b starts at `initialBackoffMs`; each failure within
 * `resetBackoffThresholdMs + b` of the previous one (the job ran less than the threshold after its
 * last restart delay) multiplies it by `multiplier`, up to `maxBackoffMs`; a later failure resets
 * it. The returned delay is b plus jitter (not accumulated into b, unlike Flink), integer ms.
 */
export class ExponentialDelayRestartStrategy implements RestartStrategy {
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly multiplier: number;
  readonly resetBackoffThresholdMs: number;
  readonly jitterFactor: number;
  private backoffMs: number;
  private lastFailureMs: number | null = null;

  /** @throws EngineError `SPEC_INVALID` for values out of range */
  constructor(
    cfg: ExponentialDelayConfig,
    private readonly random: RandomSource,
  ) {
    this.initialBackoffMs = cfg.initialBackoffMs ?? 1000;
    this.maxBackoffMs = cfg.maxBackoffMs ?? 300_000;
    this.multiplier = cfg.multiplier ?? 2;
    this.resetBackoffThresholdMs = cfg.resetBackoffThresholdMs ?? 3_600_000;
    this.jitterFactor = cfg.jitterFactor ?? 0.1;
    const problems: string[] = [];
    if (!(this.initialBackoffMs > 0)) problems.push('initialBackoffMs: must be > 0');
    if (!(this.maxBackoffMs >= this.initialBackoffMs)) problems.push('maxBackoffMs: must be >= initialBackoffMs');
    if (!(this.multiplier >= 1)) problems.push('multiplier: must be >= 1');
    if (!(this.resetBackoffThresholdMs > 0)) problems.push('resetBackoffThresholdMs: must be > 0');
    if (!(this.jitterFactor >= 0 && this.jitterFactor <= 1)) problems.push('jitterFactor: must be in [0, 1]');
    invalid('exponential-delay', problems);
    this.backoffMs = this.initialBackoffMs;
  }

  onFailure(nowMs: number): RestartDecision {
    if (this.lastFailureMs === null || nowMs - this.lastFailureMs >= this.resetBackoffThresholdMs + this.backoffMs) {
      this.backoffMs = this.initialBackoffMs;
    } else {
      this.backoffMs = Math.min(this.backoffMs * this.multiplier, this.maxBackoffMs);
    }
    this.lastFailureMs = nowMs;
    const offset = Math.floor(this.backoffMs * this.jitterFactor);
    const jitter = offset === 0 ? 0 : -offset + Math.floor(this.random() * 2 * offset);
    const delayMs = Math.round(Math.max(this.initialBackoffMs, Math.min(this.backoffMs + jitter, this.maxBackoffMs)));
    return { restart: true, delayMs };
  }
}

/** Fixed delay: restarts `attempts` times in the job's life, each after `delayMs`; then gives up. */
export class FixedDelayRestartStrategy implements RestartStrategy {
  private failures = 0;

  /** @throws EngineError `SPEC_INVALID` unless attempts is an integer >= 0 and delayMs >= 0 */
  constructor(readonly cfg: { attempts: number; delayMs: number }) {
    const problems: string[] = [];
    if (!Number.isInteger(cfg.attempts) || cfg.attempts < 0) problems.push('attempts: must be an integer >= 0');
    if (!(cfg.delayMs >= 0)) problems.push('delayMs: must be >= 0');
    invalid('fixed-delay', problems);
  }

  onFailure(_nowMs: number): RestartDecision {
    this.failures++;
    return this.failures <= this.cfg.attempts
      ? { restart: true, delayMs: this.cfg.delayMs }
      : { restart: false, reason: 'ATTEMPTS_EXHAUSTED' };
  }
}

/**
 * Failure rate: restarts after `delayMs` as long as at most `maxFailuresPerInterval` failures fell
 * in the last `failureRateIntervalMs` (the window (now − interval, now], this one included); the
 * next failure inside the window fails the job.
 */
export class FailureRateRestartStrategy implements RestartStrategy {
  private readonly failures: number[] = [];

  /** @throws EngineError `SPEC_INVALID` for values out of range */
  constructor(readonly cfg: { maxFailuresPerInterval: number; failureRateIntervalMs: number; delayMs: number }) {
    const problems: string[] = [];
    if (!Number.isInteger(cfg.maxFailuresPerInterval) || cfg.maxFailuresPerInterval < 1)
      problems.push('maxFailuresPerInterval: must be an integer >= 1');
    if (!(cfg.failureRateIntervalMs > 0)) problems.push('failureRateIntervalMs: must be > 0');
    if (!(cfg.delayMs >= 0)) problems.push('delayMs: must be >= 0');
    invalid('failure-rate', problems);
  }

  onFailure(nowMs: number): RestartDecision {
    this.failures.push(nowMs);
    while (this.failures.length > 0 && this.failures[0] <= nowMs - this.cfg.failureRateIntervalMs)
      this.failures.shift();
    return this.failures.length <= this.cfg.maxFailuresPerInterval
      ? { restart: true, delayMs: this.cfg.delayMs }
      : { restart: false, reason: 'FAILURE_RATE_EXCEEDED' };
  }
}

/** No restarts: every failure fails the job. */
export class NoRestartStrategy implements RestartStrategy {
  onFailure(_nowMs: number): RestartDecision {
    return { restart: false, reason: 'RESTARTS_DISABLED' };
  }
}

/** A restart strategy as configured (spec or cluster config). */
export type RestartStrategyConfig =
  | ({ type: 'exponential-delay' } & ExponentialDelayConfig)
  | { type: 'fixed-delay'; attempts: number; delayMs: number }
  | { type: 'failure-rate'; maxFailuresPerInterval: number; failureRateIntervalMs: number; delayMs: number }
  | { type: 'none' };

/** Builds the strategy for `cfg`. @throws EngineError `SPEC_INVALID` for values out of range */
export function restartStrategy(cfg: RestartStrategyConfig, random: RandomSource = Math.random): RestartStrategy {
  switch (cfg.type) {
    case 'exponential-delay':
      return new ExponentialDelayRestartStrategy(cfg, random);
    case 'fixed-delay':
      return new FixedDelayRestartStrategy(cfg);
    case 'failure-rate':
      return new FailureRateRestartStrategy(cfg);
    case 'none':
      return new NoRestartStrategy();
  }
}

function invalid(strategy: string, problems: string[]): void {
  if (problems.length > 0)
    throw new EngineError('SPEC_INVALID', `invalid ${strategy} restart strategy: ${problems.join('; ')}`, { problems });
}
