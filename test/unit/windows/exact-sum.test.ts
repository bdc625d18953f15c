import { describe, expect, it } from 'vitest';
import type { Row } from '../../../core/spec/types.js';
import { addToSum, compileAggregates, readSum, SUM_SLOTS } from '../../../core/windows/aggregates.js';

/** The exact binary value of a finite double as mantissa · 2^exponent (integers). */
function decompose(x: number): { m: bigint; e: number } {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x);
  const hi = v.getUint32(0);
  const lo = v.getUint32(4);
  const sign = hi >>> 31 ? -1n : 1n;
  const exp = (hi >>> 20) & 0x7ff;
  let m = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (exp === 0) return { m: sign * m, e: -1074 };
  m |= 1n << 52n;
  return { m: sign * m, e: exp - 1075 };
}

/** Independent oracle: the exact sum in big integers, rounded once by Number(bigint) (round half even). */
function exactSum(xs: number[]): number {
  const parts = xs.map(decompose);
  const emin = Math.min(...parts.map((p) => p.e));
  let total = 0n;
  for (const p of parts) total += p.m << BigInt(p.e - emin);
  return Number(total) * 2 ** emin;
}

function sumOf(xs: number[]): number {
  const p = new Array<number>(SUM_SLOTS).fill(0);
  for (const x of xs) addToSum(p, 0, x);
  return readSum(p, 0);
}

/** Deterministic pseudo-random permutation (xorshift). */
function shuffled<T>(xs: T[], seed: number): T[] {
  const a = [...xs];
  let s = seed;
  for (let i = a.length - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = Math.abs(s) % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

describe('exact window sums (Shewchuk partials)', () => {
  it('is the correctly rounded exact sum where a running sum is not', () => {
    expect(sumOf([1e16, 1, -1e16])).toBe(1);
    expect(1e16 + 1 - 1e16).toBe(0); // what a running sum gives
    expect(sumOf([0.1, 0.2, 0.3])).toBe(exactSum([0.1, 0.2, 0.3]));
  });

  it('gives the same bits for sensor readings in any order, equal to the exact sum', () => {
    const temps = Array.from({ length: 500 }, (_, i) => Math.round((18 + ((i * 37) % 900) / 100) * 100) / 100);
    const want = exactSum(temps);
    let naiveDiffers = false;
    for (let seed = 1; seed <= 30; seed++) {
      const order = shuffled(temps, seed);
      expect(sumOf(order)).toBe(want);
      if (order.reduce((a, b) => a + b, 0) !== want) naiveDiffers = true;
    }
    expect(naiveDiffers).toBe(true); // the order does change a plain running sum
  });

  it('keeps values of very different magnitudes exact', () => {
    // 1e20 needs bits down to 2^14, 2^-60 + 1e-10 bits down to 2^-86: about 130 bits of exact sum
    const xs = [1e20, 3.5, -1e20, 1e-10, 2 ** -60, -3.5, 7, 1e20 / 3];
    for (let seed = 1; seed <= 10; seed++) expect(sumOf(shuffled(xs, seed))).toBe(exactSum(xs));
  });

  it('turns Infinity and NaN into a non-finite sum', () => {
    expect(sumOf([1, Number.POSITIVE_INFINITY, 2])).toBe(Number.POSITIVE_INFINITY);
    expect(sumOf([Number.POSITIVE_INFINITY, 1, Number.NEGATIVE_INFINITY])).toBeNaN();
  });

  it('avg and sum through the aggregate layout, with session merges', () => {
    const layout = compileAggregates([
      { output: 'avg', kind: 'avg', field: 't' },
      { output: 'sum', kind: 'sum', field: 't' },
    ]);
    const xs = [20.1, 19.9, 1e16, -1e16, 0.3];
    const a: number[] = [];
    const b: number[] = [];
    layout.init(a, 0);
    layout.init(b, 0);
    for (const t of xs.slice(0, 2)) layout.add(a, 0, { t });
    for (const t of xs.slice(2)) layout.add(b, 0, { t });
    layout.merge(a, 0, b, 0);
    const out: Row = {};
    layout.writeResult(a, 0, out);
    expect(out.sum).toBe(exactSum(xs));
    expect(out.avg).toBe(exactSum(xs) / xs.length);
  });
});
