/**
 * Rates and ratios the REST API and /metrics show, computed by the JobManager from the deltas of
 * the counters tasks report with each heartbeat (core/runtime/transport.ts `TaskCounters`).
 * Pure code: the caller passes the clock.
 */
import type { TaskCounters } from '../core/runtime/transport.js';

/** What one counter report of one subtask contributes: when the task read its counters, and the counters. */
export interface CounterSample {
  /** ms since the epoch: the counters' `sampledAtMs` (the TaskManager's clock), else when the JobManager got them */
  atMs: number;
  recordsIn: number;
  recordsOut: number;
  /** ms the subtask spent processing, since it started */
  busyMs: number;
  /** ms the subtask spent waiting for downstream capacity, since it started */
  backpressuredMs: number;
  /** records out per output edge id */
  recordsOutByEdge: Record<string, number>;
}

/** Per-second rates and 0..1 ratios of one subtask over its last measuring interval. */
export interface SubtaskRates {
  recordsInPerSec: number;
  recordsOutPerSec: number;
  /** share of the interval spent processing, 0..1 */
  busyRatio: number;
  /** share of the interval spent waiting for downstream credits / sink capacity, 0..1 */
  backpressuredRatio: number;
  /** records out per second per output edge id */
  recordsOutPerSecByEdge: Record<string, number>;
}

/** All zero: a subtask with fewer than two samples, a stale one, or one that does not run. */
export function zeroRates(): SubtaskRates {
  return { recordsInPerSec: 0, recordsOutPerSec: 0, busyRatio: 0, backpressuredRatio: 0, recordsOutPerSecByEdge: {} };
}

const clamp01 = (x: number): number => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);
/** a counter that went backwards (a new attempt reusing the key) counts as no progress */
const delta = (a: number | undefined, b: number | undefined): number => Math.max(0, (b ?? 0) - (a ?? 0));

/**
 * Rates between two samples of the same subtask: Δcounter / Δt (per second), and Δbusy / Δt,
 * Δbackpressured / Δt clamped to 0..1 (they are measured on the task's clock, Δt on the
 * JobManager's, so a sample may stray a little above 1). Zero rates when `cur` is not after `prev`.
 */
export function ratesBetween(prev: CounterSample, cur: CounterSample): SubtaskRates {
  const dtMs = cur.atMs - prev.atMs;
  if (!(dtMs > 0)) return zeroRates();
  const perSec = (a: number | undefined, b: number | undefined): number => (delta(a, b) * 1000) / dtMs;
  const byEdge: Record<string, number> = {};
  for (const [edge, n] of Object.entries(cur.recordsOutByEdge)) byEdge[edge] = perSec(prev.recordsOutByEdge[edge], n);
  return {
    recordsInPerSec: perSec(prev.recordsIn, cur.recordsIn),
    recordsOutPerSec: perSec(prev.recordsOut, cur.recordsOut),
    busyRatio: clamp01(delta(prev.busyMs, cur.busyMs) / dtMs),
    backpressuredRatio: clamp01(delta(prev.backpressuredMs, cur.backpressuredMs) / dtMs),
    recordsOutPerSecByEdge: byEdge,
  };
}

/** A sample of `counters` received at `atMs`, timed by their `sampledAtMs` if set (counters of older TaskManagers may lack the newer fields: 0). */
export function sampleOf(counters: Partial<TaskCounters>, atMs: number): CounterSample {
  return {
    atMs: counters.sampledAtMs || atMs,
    recordsIn: counters.recordsIn ?? 0,
    recordsOut: counters.recordsOut ?? 0,
    busyMs: counters.busyMs ?? 0,
    backpressuredMs: counters.backpressuredMs ?? 0,
    recordsOutByEdge: { ...(counters.recordsOutByEdge ?? {}) },
  };
}

export interface RateTrackerOptions {
  /**
   * Samples closer than this to the newest one replace it instead of starting a new interval
   * (a state report right after a heartbeat would otherwise give a tiny, noisy interval). Default 250 ms
   */
  minIntervalMs?: number;
  /** rates of a subtask whose newest sample is older than this are 0 (it stopped reporting). Default 5000 ms */
  staleMs?: number;
}

/**
 * The last two counter samples of every subtask, by a caller-chosen key (the JobManager uses
 * `<job id>:<attempt>:<task id>`, so a new attempt starts from nothing).
 */
export class RateTracker {
  private readonly samples = new Map<string, { prev?: CounterSample; cur: CounterSample; receivedAtMs: number }>();
  private readonly minIntervalMs: number;
  private readonly staleMs: number;

  constructor(o: RateTrackerOptions = {}) {
    this.minIntervalMs = o.minIntervalMs ?? 250;
    this.staleMs = o.staleMs ?? 5000;
  }

  /**
   * Records the counters `key` reported, received at `nowMs`. The same sample again (a heartbeat
   * repeating counters the task has not re-read since) only marks the subtask as alive.
   */
  observe(key: string, counters: Partial<TaskCounters>, nowMs: number): void {
    const s = sampleOf(counters, nowMs);
    const e = this.samples.get(key);
    if (!e) {
      this.samples.set(key, { cur: s, receivedAtMs: nowMs });
      return;
    }
    e.receivedAtMs = nowMs;
    if (s.atMs === e.cur.atMs) return;
    if (s.atMs - e.cur.atMs < this.minIntervalMs) e.cur = s;
    else {
      e.prev = e.cur;
      e.cur = s;
    }
  }

  /** The rates of `key` over its last interval; zeros with fewer than two samples or a stale newest one. */
  rates(key: string, nowMs: number): SubtaskRates {
    const e = this.samples.get(key);
    if (!e?.prev || nowMs - e.receivedAtMs > this.staleMs) return zeroRates();
    return ratesBetween(e.prev, e.cur);
  }

  /** Drops every key that starts with `prefix` (a job attempt ended). */
  forget(prefix: string): void {
    for (const k of this.samples.keys()) if (k.startsWith(prefix)) this.samples.delete(k);
  }
}

/** Vertex-level view over its subtasks: sums of rates, means of ratios (0 without subtasks). */
export function vertexRates(subtasks: readonly SubtaskRates[]): Omit<SubtaskRates, 'recordsOutPerSecByEdge'> & {
  recordsOutPerSecByEdge: Record<string, number>;
} {
  const n = subtasks.length;
  const byEdge: Record<string, number> = {};
  let inS = 0;
  let outS = 0;
  let busy = 0;
  let bp = 0;
  for (const r of subtasks) {
    inS += r.recordsInPerSec;
    outS += r.recordsOutPerSec;
    busy += r.busyRatio;
    bp += r.backpressuredRatio;
    for (const [e, v] of Object.entries(r.recordsOutPerSecByEdge)) byEdge[e] = (byEdge[e] ?? 0) + v;
  }
  return {
    recordsInPerSec: inS,
    recordsOutPerSec: outS,
    busyRatio: n > 0 ? busy / n : 0,
    backpressuredRatio: n > 0 ? bp / n : 0,
    recordsOutPerSecByEdge: byEdge,
  };
}

/**
 * The watermark of a vertex: the minimum over its subtasks' finite watermarks (ms), or null
 * when none has one yet. +∞ (input ended) counts as none.
 */
export function vertexWatermark(watermarks: readonly (number | null | undefined)[]): number | null {
  let min = Number.POSITIVE_INFINITY;
  for (const w of watermarks) if (typeof w === 'number' && Number.isFinite(w) && w < min) min = w;
  return Number.isFinite(min) ? min : null;
}
