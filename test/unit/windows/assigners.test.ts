import { describe, expect, it } from 'vitest';
import { createAssigner, windowStartWithOffset } from '../../../core/windows/assigners.js';

const T0 = 1717200000000;

function startsOf(spec: Parameters<typeof createAssigner>[0], ts: number): number[] {
  const a = createAssigner(spec);
  const out: number[] = [];
  const n = a.assign(ts, out);
  return out.slice(0, n);
}

describe('tumbling windows', () => {
  const tumbling10s = { type: 'tumbling', sizeMs: 10_000, offsetMs: 0, allowedLatenessMs: 0 } as const;

  //   |-------- [T0, T0+10s) --------|-------- [T0+10s, T0+20s) ---
  //   ^ T0                  9999 ^   ^ 10000
  it('puts the last ms before a boundary in the earlier window and the boundary in the next', () => {
    expect(startsOf(tumbling10s, T0 + 9999)).toEqual([T0]);
    expect(startsOf(tumbling10s, T0 + 10_000)).toEqual([T0 + 10_000]);
    expect(startsOf(tumbling10s, T0)).toEqual([T0]);
  });

  it('ends a window exactly one size after its start', () => {
    expect(createAssigner(tumbling10s).windowEnd(T0)).toBe(T0 + 10_000);
  });

  it('floors negative remainders so the start is never after the timestamp (BR-06)', () => {
    // offset +3 s: windows [.., T0-7s, T0+3s), [T0+3s, T0+13s), ..
    const withOffset = { type: 'tumbling', sizeMs: 10_000, offsetMs: 3000, allowedLatenessMs: 0 } as const;
    expect(startsOf(withOffset, T0 + 500)).toEqual([T0 - 7000]);
    expect(startsOf(withOffset, T0 + 2999)).toEqual([T0 - 7000]);
    expect(startsOf(withOffset, T0 + 3000)).toEqual([T0 + 3000]);
    expect(startsOf(withOffset, T0 + 12_999)).toEqual([T0 + 3000]);
    expect(windowStartWithOffset(-1, 0, 10)).toBe(-10);
    expect(windowStartWithOffset(-10, 0, 10)).toBe(-10);
    expect(windowStartWithOffset(2, 3, 10)).toBe(-7);
    expect(windowStartWithOffset(5, -3, 10)).toBe(-3);
  });

  it('keeps start ≤ ts < end for every ts around many offsets', () => {
    for (const offset of [-13_000, -3000, 0, 1, 3000, 9999, 25_000]) {
      for (let ts = T0 - 25_000; ts < T0 + 25_000; ts += 997) {
        const s = windowStartWithOffset(ts, offset, 10_000);
        expect(s).toBeLessThanOrEqual(ts);
        expect(ts).toBeLessThan(s + 10_000);
        expect((((s - offset) % 10_000) + 10_000) % 10_000).toBe(0);
      }
    }
  });
});

describe('sliding windows', () => {
  it('puts each timestamp in exactly size/slide windows, latest start first', () => {
    const spec = { type: 'sliding', sizeMs: 10_000, slideMs: 5000, offsetMs: 0, allowedLatenessMs: 0 } as const;
    expect(startsOf(spec, T0 + 4000)).toEqual([T0, T0 - 5000]);
    expect(startsOf(spec, T0 + 5000)).toEqual([T0 + 5000, T0]);
    for (let ts = T0; ts < T0 + 60_000; ts += 333) {
      const starts = startsOf(spec, ts);
      expect(starts).toHaveLength(2);
      for (const s of starts) {
        expect(s).toBeLessThanOrEqual(ts);
        expect(ts).toBeLessThan(s + 10_000);
      }
    }
  });

  it('counts size/slide windows for a 60 s window sliding by 10 s with an offset', () => {
    const spec = { type: 'sliding', sizeMs: 60_000, slideMs: 10_000, offsetMs: 2000, allowedLatenessMs: 0 } as const;
    for (let ts = T0; ts < T0 + 30_000; ts += 1234) {
      const starts = startsOf(spec, ts);
      expect(starts).toHaveLength(6);
      for (const s of starts) expect((((s - 2000) % 10_000) + 10_000) % 10_000).toBe(0);
    }
  });

  it('behaves exactly like tumbling when slide equals size (BR-08)', () => {
    const sliding = createAssigner({
      type: 'sliding',
      sizeMs: 10_000,
      slideMs: 10_000,
      offsetMs: 0,
      allowedLatenessMs: 0,
    });
    expect(sliding.kind).toBe('tumbling');
    expect(
      startsOf({ type: 'sliding', sizeMs: 10_000, slideMs: 10_000, offsetMs: 0, allowedLatenessMs: 0 }, T0 + 10_000),
    ).toEqual([T0 + 10_000]);
  });

  it('leaves a timestamp between windows in none when slide exceeds size', () => {
    const spec = { type: 'sliding', sizeMs: 5000, slideMs: 10_000, offsetMs: 0, allowedLatenessMs: 0 } as const;
    expect(startsOf(spec, T0 + 1000)).toEqual([T0]);
    expect(startsOf(spec, T0 + 7000)).toEqual([]);
  });

  it('rejects a non-positive size or slide', () => {
    expect(() =>
      createAssigner({ type: 'sliding', sizeMs: 10_000, slideMs: 0, offsetMs: 0, allowedLatenessMs: 0 }),
    ).toThrow(/slide/);
    expect(() => createAssigner({ type: 'tumbling', sizeMs: -1, offsetMs: 0, allowedLatenessMs: 0 })).toThrow(/size/);
  });
});
