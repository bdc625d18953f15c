/**
 * Capped exponential backoff with jitter, for reconnects across a real network (a TaskManager
 * registering again with its JobManager, a retried report to it).
 *
 * Retry n (0-based) waits `min(maxMs, initialMs · multiplier^n)`, randomised by ±`jitter` of
 * itself and capped at `maxMs` again: with the defaults 200, 400, 800, 1600, 2000, 2000, … ms,
 * each ±20 %. The jitter spreads the retries of many TaskManagers that lost the same JobManager at
 * the same moment (a JobManager restart, a healed partition) so they do not all knock at once; the
 * cap keeps one that was away for long from waiting long after the way is clear again. gRPC's
 * connection backoff (doc/connection-backoff.md in grpc/grpc) has the same shape with 1 s, ×1.6,
 * ±20 %, 120 s; our grpc-js channels reconnect with it, capped at 5 s (`channelOptions`).
 */

/** Returns a number in [0, 1), like Math.random. Inject a fake in tests. */
export type RandomSource = () => number;

export interface BackoffOptions {
  /** delay before the first retry, ms. Default 200 */
  initialMs?: number;
  /** the cap: no delay is longer, ms. Default 2000 */
  maxMs?: number;
  /** growth per retry, ≥ 1. Default 2 */
  multiplier?: number;
  /** the delay is randomised by ± this fraction of itself, in [0, 1]. Default 0.2 */
  jitter?: number;
}

/** The defaults: 200 ms, ×2, capped at 2 s, ±20 %. */
export const DEFAULT_BACKOFF: Readonly<Required<BackoffOptions>> = Object.freeze({
  initialMs: 200,
  maxMs: 2000,
  multiplier: 2,
  jitter: 0.2,
});

function resolve(opts: BackoffOptions): Required<BackoffOptions> {
  const o = { ...DEFAULT_BACKOFF, ...opts };
  const problems: string[] = [];
  if (!(o.initialMs > 0)) problems.push(`initialMs must be > 0, got ${o.initialMs}`);
  if (!(o.maxMs >= o.initialMs)) problems.push(`maxMs must be ≥ initialMs, got ${o.maxMs}`);
  if (!(o.multiplier >= 1)) problems.push(`multiplier must be ≥ 1, got ${o.multiplier}`);
  if (!(o.jitter >= 0 && o.jitter <= 1)) problems.push(`jitter must be in [0, 1], got ${o.jitter}`);
  if (problems.length > 0) throw new RangeError(`invalid backoff: ${problems.join('; ')}`);
  return o;
}

/**
 * The delay of retry `retry` (0-based), integer ms in `[1, maxMs]`.
 * @throws RangeError on invalid options or a negative retry
 */
export function backoffDelay(retry: number, opts: BackoffOptions = {}, random: RandomSource = Math.random): number {
  if (!(Number.isInteger(retry) && retry >= 0)) throw new RangeError(`retry must be an integer ≥ 0, got ${retry}`);
  const o = resolve(opts);
  // a power that overflows to Infinity is capped like any other
  const base = Math.min(o.maxMs, o.initialMs * o.multiplier ** retry);
  const factor = 1 - o.jitter + 2 * o.jitter * random();
  return Math.max(1, Math.min(o.maxMs, Math.round(base * factor)));
}

/**
 * A stateful schedule: `next()` gives the delay before the next retry and moves on; `reset()`
 * after a success starts again at `initialMs`. Not shared between independent retry loops.
 */
export class Backoff {
  private readonly opts: Required<BackoffOptions>;
  private retry = 0;

  /** @throws RangeError on invalid options */
  constructor(
    opts: BackoffOptions = {},
    private readonly random: RandomSource = Math.random,
  ) {
    this.opts = resolve(opts);
  }

  /** Retries handed out since the last reset. */
  get retries(): number {
    return this.retry;
  }

  /** The delay before the next retry, ms; counts the retry. */
  next(): number {
    return backoffDelay(this.retry++, this.opts, this.random);
  }

  reset(): void {
    this.retry = 0;
  }
}
