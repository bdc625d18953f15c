/**
 * The synthetic sensor source (`type: generator`): bounded, deterministic, no I/O.
 *
 * Reading n (0 ≤ n < count) belongs to sensor k = n mod sensors, cycle c = floor(n / sensors):
 * - sensorId `sensor-00042` (k zero-padded to 5 digits), room `room-<floor(k/2) mod 5>`,
 *   house `house-<floor(k/10)>` (2 sensors per room, 5 rooms per house);
 * - timestamp = startMs + floor(n · 1000 / ratePerSec) + jitter, jitter in [0, jitterMs]
 *   drawn from a hash of (seed, n);
 * - temperature: a mean-reverting random walk per sensor around a per-sensor base in
 *   [19, 23) °C, one step per cycle, steps drawn from a hash of (seed, k, c); rounded to 0.01.
 * Randomness is a counter-based hash (murmur3/mulberry32 finaliser), never Math.random, so a
 * reading's values depend only on (seed, n) — not on how the generator is split.
 *
 * Splits: the spec's `splits` S is fixed; generator split s owns the sensors k ≡ s (mod S) and
 * emits their readings in increasing n. A reader may own several generator splits (read one
 * after the other) or none. The union over all splits is the same for every S and every job
 * parallelism.
 */
import type { GeneratorSourceSpec, Row } from '../spec/types.js';
import { checkRules, compileRules } from './decode.js';
import type { SourceBatch, SourcePosition, SourceReader } from './types.js';

/** Uniform [0, 1) from three 32-bit integers; pure and deterministic. */
export function hash01(seed: number, a: number, b: number): number {
  let h = (seed ^ 0x85ebca6b) | 0;
  h = Math.imul(h ^ (a | 0), 0xcc9e2d51);
  h = (h << 15) | (h >>> 17);
  h = Math.imul(h, 0x1b873593);
  h = Math.imul(h ^ (b | 0), 0xcc9e2d51);
  h = (h << 13) | (h >>> 19);
  h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

const JITTER_SALT = 0x2545f491;
const BASE_SALT = 0x6a09e667;

/** Base temperature of sensor k, in [19, 23) °C. */
export function sensorBase(seed: number, k: number): number {
  return 19 + 4 * hash01(seed ^ BASE_SALT, k, 0);
}

/** One step of sensor k's walk: t' = t + 0.1 · (base − t) + (u − 0.5) · 0.4, u = hash01(seed, k, c). */
export function walkStep(seed: number, k: number, c: number, t: number, base: number): number {
  return t + 0.1 * (base - t) + (hash01(seed, k, c) - 0.5) * 0.4;
}

export class GeneratorReader implements SourceReader {
  readonly description: string;
  private readonly rules: ReturnType<typeof compileRules>;
  private readonly splitsOwned: number[];
  private at = 0;
  /** generated readings of the current split so far (= 0-based index of the next) */
  private q = 0;
  private c = 0;
  private j = 0;
  private ks: number[] = [];
  private ids: string[] = [];
  private rooms: string[] = [];
  private houses: string[] = [];
  private bases = new Float64Array(0);
  private temps = new Float64Array(0);
  private started = false;
  private restoreSkip = 0;

  /** @throws EngineError `EXPR_INVALID` when a validate rule does not compile. */
  constructor(
    private readonly spec: GeneratorSourceSpec,
    splitsOwned: number[],
    restore?: SourcePosition,
  ) {
    this.splitsOwned = [...splitsOwned].sort((a, b) => a - b);
    this.rules = compileRules(spec);
    this.description = `generator seed ${spec.seed}, splits ${this.splitsOwned.join(', ') || 'none'} of ${spec.splits}`;
    if (restore) {
      while (this.at < this.splitsOwned.length && (this.splitsOwned[this.at] as number) < restore.split) this.at++;
      if (this.splitsOwned[this.at] === restore.split) this.restoreSkip = restore.nextLine - 1;
    }
  }

  private startSplit(): void {
    const s = this.splitsOwned[this.at] as number;
    const S = this.spec.splits;
    const seed = this.spec.seed;
    const ks: number[] = [];
    for (let k = s; k < this.spec.sensors; k += S) ks.push(k);
    this.ks = ks;
    this.ids = ks.map((k) => `sensor-${String(k).padStart(5, '0')}`);
    this.rooms = ks.map((k) => `room-${Math.floor(k / 2) % 5}`);
    this.houses = ks.map((k) => `house-${Math.floor(k / 10)}`);
    this.bases = Float64Array.from(ks, (k) => sensorBase(seed, k));
    this.temps = Float64Array.from(this.bases);
    this.q = 0;
    this.c = 0;
    this.j = 0;
    this.started = true;
    const skip = this.restoreSkip;
    this.restoreSkip = 0;
    for (let i = 0; i < skip && this.advance(undefined); i++);
  }

  /**
   * Generates the next reading of the current split into `out` (or only advances the walk when
   * `out` is undefined). Returns false when the split is exhausted.
   */
  private advance(out: SourceBatch | undefined): boolean {
    const m = this.ks.length;
    if (m === 0) return false;
    const { sensors, count, seed, startMs, ratePerSec, jitterMs } = this.spec;
    const k = this.ks[this.j] as number;
    const n = this.c * sensors + k;
    if (n >= count) return false;
    const j = this.j;
    const t = walkStep(seed, k, this.c, this.temps[j] as number, this.bases[j] as number);
    this.temps[j] = t;
    this.q++;
    if (++this.j === m) {
      this.j = 0;
      this.c++;
    }
    if (out === undefined) return true;
    let ts = startMs + Math.floor((n * 1000) / ratePerSec);
    if (jitterMs > 0) ts += Math.floor(hash01(seed ^ JITTER_SALT, n, n / 4294967296) * (jitterMs + 1));
    const row: Row = {
      sensorId: this.ids[j] as string,
      timestamp: ts,
      temperature: Math.round(t * 100) / 100,
      room: this.rooms[j] as string,
      house: this.houses[j] as string,
    };
    const et = this.spec.eventTime;
    let reason: string | null = ts >= et.minMs && ts < et.maxMs ? null : 'timestamp out of range';
    if (reason === null && this.rules.length > 0) reason = checkRules(this.rules, row);
    if (reason === null) {
      out.rows.push(row);
      out.timestamps.push(ts);
    } else {
      out.deadLetters.push({
        reason,
        source: `generator:${this.splitsOwned[this.at]}:${this.q}`,
        raw: `${row.sensorId},${ts},${row.temperature}`,
      });
    }
    return true;
  }

  async poll(out: SourceBatch, maxLines: number): Promise<boolean> {
    out.rows.length = 0;
    out.timestamps.length = 0;
    out.deadLetters.length = 0;
    let lines = 0;
    while (lines < maxLines && this.at < this.splitsOwned.length) {
      if (!this.started) this.startSplit();
      if (this.advance(out)) {
        lines++;
        continue;
      }
      this.at++;
      this.started = false;
    }
    out.linesRead = lines;
    return this.at < this.splitsOwned.length;
  }

  position(): SourcePosition {
    if (this.at >= this.splitsOwned.length) {
      const last = this.splitsOwned[this.splitsOwned.length - 1];
      return { split: last === undefined ? 0 : last + 1, nextLine: 1, byteOffset: 0 };
    }
    const split = this.splitsOwned[this.at] as number;
    if (!this.started) return { split, nextLine: this.restoreSkip + 1, byteOffset: 0 };
    return { split, nextLine: this.q + 1, byteOffset: 0 };
  }

  async close(): Promise<void> {
    this.at = this.splitsOwned.length;
  }
}
