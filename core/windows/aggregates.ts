/**
 * Window aggregates compiled into a flat accumulator layout.
 *
 * Each window's accumulator is `stride` consecutive doubles in a caller-owned `number[]` at
 * `base`. Slot 0 is always the number of rows added. Then, per distinct input field, only the
 * slots its aggregates need: non-null count, sum (`SUM_SLOTS` partials), min, max. Example for
 * `count, avg(t), min(t), max(t)`: `[rows, t.n, t.sum ×4, t.min, t.max]` (stride 8).
 *
 * Sums are exact until the result is read: floating-point addition is not associative, so a plain
 * running sum would depend on the order readings arrive in, and that order differs between runs
 * when a window's readings come over several channels (and after a restore). The sum is kept as
 * Shewchuk's non-overlapping partials (J. R. Shewchuk, "Adaptive Precision Floating-Point
 * Arithmetic and Fast Robust Geometric Predicates", 1997; the algorithm of Python's `math.fsum`),
 * whose total is the exact sum, and is rounded once, correctly, when the window fires: the same
 * readings give the same `sum` and `avg` bits in any order. `SUM_SLOTS` partials cover values
 * spanning about 200 binary orders of magnitude in one window; beyond that the two smallest are
 * added (rounded), which no sensor data comes near.
 *
 * Semantics (SQL-like): `count` without a field counts rows; `count(f)` counts rows where `f` is
 * a number. `sum`, `avg`, `min`, `max` ignore values that are not numbers (null, missing); when a
 * window saw no number for the field they give `null`. `avg = sum / count of numbers`.
 * `count` is an integer.
 */
import { EngineError } from '../errors/index.js';
import type { AggregateSpec, Row } from '../spec/types.js';

/** Doubles a sum keeps: its non-overlapping partials, increasing magnitude, 0 = unused. */
export const SUM_SLOTS = 4;

/**
 * Adds `x` exactly to the partials at `p[base .. base + SUM_SLOTS)` (Shewchuk's grow-expansion,
 * as in Python's msum). A non-finite value makes the sum non-finite (Infinity, or NaN for +∞ + −∞).
 */
export function addToSum(p: number[], base: number, x: number): void {
  const first = p[base];
  if (!Number.isFinite(first)) {
    p[base] = first + x; // NaN or ±Infinity stays (or becomes NaN)
    return;
  }
  if (!Number.isFinite(x)) {
    p[base] = x;
    for (let j = 1; j < SUM_SLOTS; j++) p[base + j] = 0;
    return;
  }
  let i = 0;
  let j = 0;
  for (; j < SUM_SLOTS; j++) {
    let y = p[base + j];
    if (y === 0) break;
    if (Math.abs(x) < Math.abs(y)) {
      const t = x;
      x = y;
      y = t;
    }
    const hi = x + y;
    const lo = y - (hi - x);
    if (lo !== 0) p[base + i++] = lo;
    x = hi;
  }
  if (i === SUM_SLOTS) {
    // no slot left for x: fold the two smallest partials into one (the only rounding)
    p[base + 1] += p[base];
    for (let k = 0; k < SUM_SLOTS - 1; k++) p[base + k] = p[base + k + 1];
    i = SUM_SLOTS - 1;
  }
  p[base + i++] = x;
  for (; i < j; i++) p[base + i] = 0;
}

/** The correctly rounded total of the partials at `p[base ..]` (Python's math.fsum ending). */
export function readSum(p: number[], base: number): number {
  if (!Number.isFinite(p[base])) return p[base];
  let n = 0;
  while (n < SUM_SLOTS && p[base + n] !== 0) n++;
  if (n === 0) return 0;
  let hi = p[base + --n];
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = p[base + --n];
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  if (n > 0 && ((lo < 0 && p[base + n - 1] < 0) || (lo > 0 && p[base + n - 1] > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi;
}

interface FieldSlots {
  name: string;
  n: number;
  sum: number;
  min: number;
  max: number;
}

enum Out {
  Rows = 0,
  Count = 1,
  Sum = 2,
  Avg = 3,
  Min = 4,
  Max = 5,
}

export interface AggregateLayout {
  /** doubles per window */
  readonly stride: number;
  /** output field names, in spec order */
  readonly outputs: readonly string[];
  /** writes an empty accumulator at `acc[base .. base + stride)` */
  init(acc: number[], base: number): void;
  /** adds one row */
  add(acc: number[], base: number, row: Row): void;
  /** merges accumulator `src[srcBase..]` into `dst[dstBase..]` (session merges) */
  merge(dst: number[], dstBase: number, src: number[], srcBase: number): void;
  /** writes each aggregate's result into `out` under its `output` name */
  writeResult(acc: number[], base: number, out: Row): void;
}

class CompiledAggregates implements AggregateLayout {
  readonly stride: number;
  readonly outputs: readonly string[];
  private readonly fields: FieldSlots[];
  private readonly outKind: Out[];
  private readonly outSlotA: number[];
  private readonly outSlotB: number[];
  private readonly initial: number[];

  constructor(specs: AggregateSpec[]) {
    const problems: string[] = [];
    const seen = new Set<string>();
    const byField = new Map<string, FieldSlots>();
    let next = 1;
    const slotsFor = (name: string): FieldSlots => {
      let f = byField.get(name);
      if (!f) {
        f = { name, n: next++, sum: -1, min: -1, max: -1 };
        byField.set(name, f);
      }
      return f;
    };
    this.outKind = [];
    this.outSlotA = [];
    this.outSlotB = [];
    specs.forEach((s, i) => {
      if (seen.has(s.output)) problems.push(`aggregates[${i}].output: duplicate output name '${s.output}'`);
      seen.add(s.output);
      if (s.kind === 'count') {
        if (s.field === undefined) {
          this.push(Out.Rows, 0, -1);
        } else {
          this.push(Out.Count, slotsFor(s.field).n, -1);
        }
        return;
      }
      if (s.field === undefined) {
        problems.push(`aggregates[${i}].field: ${s.kind} needs a field`);
        return;
      }
      const f = slotsFor(s.field);
      switch (s.kind) {
        case 'sum':
        case 'avg':
          if (f.sum < 0) {
            f.sum = next;
            next += SUM_SLOTS;
          }
          this.push(s.kind === 'sum' ? Out.Sum : Out.Avg, f.n, f.sum);
          break;
        case 'min':
          if (f.min < 0) f.min = next++;
          this.push(Out.Min, f.n, f.min);
          break;
        case 'max':
          if (f.max < 0) f.max = next++;
          this.push(Out.Max, f.n, f.max);
          break;
        default:
          problems.push(`aggregates[${i}].kind: unknown aggregate '${String((s as AggregateSpec).kind)}'`);
      }
    });
    if (problems.length > 0)
      throw new EngineError('SPEC_INVALID', `invalid aggregates: ${problems.join('; ')}`, { problems });
    this.stride = next;
    this.outputs = specs.map((s) => s.output);
    this.fields = [...byField.values()];
    this.initial = new Array<number>(next).fill(0);
    for (const f of this.fields) {
      if (f.min >= 0) this.initial[f.min] = Number.POSITIVE_INFINITY;
      if (f.max >= 0) this.initial[f.max] = Number.NEGATIVE_INFINITY;
    }
  }

  private push(kind: Out, a: number, b: number): void {
    this.outKind.push(kind);
    this.outSlotA.push(a);
    this.outSlotB.push(b);
  }

  init(acc: number[], base: number): void {
    const init = this.initial;
    for (let i = 0; i < init.length; i++) acc[base + i] = init[i];
  }

  add(acc: number[], base: number, row: Row): void {
    acc[base]++;
    const fields = this.fields;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      const v = row[f.name];
      if (typeof v !== 'number') continue;
      acc[base + f.n]++;
      if (f.sum >= 0) addToSum(acc, base + f.sum, v);
      if (f.min >= 0 && v < acc[base + f.min]) acc[base + f.min] = v;
      if (f.max >= 0 && v > acc[base + f.max]) acc[base + f.max] = v;
    }
  }

  merge(dst: number[], dstBase: number, src: number[], srcBase: number): void {
    dst[dstBase] += src[srcBase];
    for (const f of this.fields) {
      dst[dstBase + f.n] += src[srcBase + f.n];
      if (f.sum >= 0)
        for (let j = 0; j < SUM_SLOTS && src[srcBase + f.sum + j] !== 0; j++)
          addToSum(dst, dstBase + f.sum, src[srcBase + f.sum + j]);
      if (f.min >= 0) dst[dstBase + f.min] = Math.min(dst[dstBase + f.min], src[srcBase + f.min]);
      if (f.max >= 0) dst[dstBase + f.max] = Math.max(dst[dstBase + f.max], src[srcBase + f.max]);
    }
  }

  writeResult(acc: number[], base: number, out: Row): void {
    for (let i = 0; i < this.outKind.length; i++) {
      const a = this.outSlotA[i];
      const b = this.outSlotB[i];
      const name = this.outputs[i];
      const n = acc[base + a];
      switch (this.outKind[i]) {
        case Out.Rows:
        case Out.Count:
          out[name] = n;
          break;
        case Out.Sum:
          out[name] = n > 0 ? readSum(acc, base + b) : null;
          break;
        case Out.Avg:
          out[name] = n > 0 ? readSum(acc, base + b) / n : null;
          break;
        case Out.Min:
        case Out.Max:
          out[name] = n > 0 ? acc[base + b] : null;
          break;
      }
    }
  }
}

/**
 * Compiles aggregate specs into an accumulator layout.
 * @throws EngineError `SPEC_INVALID` (with `problems`) for duplicate output names or a
 *   sum/avg/min/max without a field
 */
export function compileAggregates(specs: AggregateSpec[]): AggregateLayout {
  return new CompiledAggregates(specs);
}
