/**
 * Window aggregates compiled into a flat accumulator layout.
 *
 * Each window's accumulator is `stride` consecutive doubles in a caller-owned `number[]` at
 * `base`. Slot 0 is always the number of rows added. Then, per distinct input field, only the
 * slots its aggregates need: non-null count, sum, min, max. Example for
 * `count, avg(t), min(t), max(t)`: `[rows, t.n, t.sum, t.min, t.max]` (stride 5).
 *
 * Semantics (SQL-like): `count` without a field counts rows; `count(f)` counts rows where `f` is
 * a number. `sum`, `avg`, `min`, `max` ignore values that are not numbers (null, missing); when a
 * window saw no number for the field they give `null`. `avg = sum / count of numbers`.
 * `count` is an integer.
 */
import { EngineError } from '../errors/index.js';
import type { AggregateSpec, Row } from '../spec/types.js';

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
          if (f.sum < 0) f.sum = next++;
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
      if (f.sum >= 0) acc[base + f.sum] += v;
      if (f.min >= 0 && v < acc[base + f.min]) acc[base + f.min] = v;
      if (f.max >= 0 && v > acc[base + f.max]) acc[base + f.max] = v;
    }
  }

  merge(dst: number[], dstBase: number, src: number[], srcBase: number): void {
    dst[dstBase] += src[srcBase];
    for (const f of this.fields) {
      dst[dstBase + f.n] += src[srcBase + f.n];
      if (f.sum >= 0) dst[dstBase + f.sum] += src[srcBase + f.sum];
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
          out[name] = n > 0 ? acc[base + b] : null;
          break;
        case Out.Avg:
          out[name] = n > 0 ? acc[base + b] / n : null;
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
