import { describe, expect, it } from 'vitest';
import type { WindowSpec } from '../../core/spec/types.js';
import { BoundedOutOfOrdernessWatermarks, WatermarkValve } from '../../core/time/watermarks.js';
import { CaseOperator, expectSameRows, readCase, readExpected, runBoundedCase, runSingleSplit, T0 } from './harness.js';

const tumbling10s: WindowSpec = { type: 'tumbling', sizeMs: 10_000, offsetMs: 0, allowedLatenessMs: 0 };

describe('BR-01 idle source partitions do not stall the watermark', () => {
  it('fires phase A once P1 and P2 go idle, drops the late phase-B reading, and flushes at the end', () => {
    const c = new CaseOperator(tumbling10s);
    const valve = new WatermarkValve(3);
    const gens = [0, 1, 2].map(() => new BoundedOutOfOrdernessWatermarks(2000));
    const advance = (wm: number | null) => {
      if (wm !== null) c.op.processWatermark(wm);
    };
    const feed = (partition: number, name: string) => {
      for (const { row, ts } of readCase(name)) {
        gens[partition].onEvent(ts);
        c.op.processElement(row, ts, gens[partition].current);
        advance(valve.onWatermark(partition, gens[partition].current));
      }
    };

    // phase A: everything on P0; P1 and P2 never send data
    feed(0, 'BR-01.a');
    expect(c.emitted).toEqual([]); // the bug: without idleness nothing fires
    advance(valve.onIdle(1));
    advance(valve.onIdle(2));
    expect(valve.current).toBe(T0 + 31_000);
    expectSameRows(c.emitted, readExpected('BR-01.a'));

    // phase B: P0 idle, P1 wakes up behind the output watermark
    advance(valve.onIdle(0));
    advance(valve.onActive(1));
    feed(1, 'BR-01.b');
    expect(valve.current).toBe(T0 + 34_000);
    expect(c.op.metrics.late).toBe(1);
    expect(c.late[0].ts).toBe(T0 + 25_000);
    expectSameRows(c.emitted, readExpected('BR-01.a'));

    // close all partitions while P0 and P2 are idle: the final flush must still happen
    for (const p of [0, 1, 2]) advance(valve.onEndOfInput(p));
    expect(valve.current).toBe(Number.POSITIVE_INFINITY);
    expectSameRows(c.emitted, [...readExpected('BR-01.a'), ...readExpected('BR-01.b')]);
    expect(c.emitted).toHaveLength(8);
  });
});

describe('BR-02 last windows fire at the end of a bounded input', () => {
  it('emits the [+30 s, +40 s) rows only from the end-of-input flush, with exclusive window ends', () => {
    const c = new CaseOperator(tumbling10s);
    runSingleSplit(c, new BoundedOutOfOrdernessWatermarks(2000), readCase('BR-02'));
    expect(c.emitted).toHaveLength(6);
    expect(c.emitted.every((r) => r.window_end_ms <= T0 + 30_000)).toBe(true);
    c.op.endOfInput();
    expectSameRows(c.emitted, readExpected('BR-02'));
    expect(c.op.metrics.late).toBe(0);
  });
});

describe('BR-03 late readings are counted and the lateness rule is per window', () => {
  it('accepts out-of-order readings whose window is open and reports three late ones', () => {
    const c = runBoundedCase('BR-03', tumbling10s, 2000);
    expectSameRows(c.emitted, readExpected('BR-03'));
    expect(c.op.metrics.late).toBe(3);
    expect(c.late.map((l) => [l.row.sensor_id, l.ts - T0, l.row.temperature_c])).toEqual([
      ['kit-2', 9000, 19.0],
      ['liv-1', 9500, 25.0],
      ['liv-1', 19_999, 30.0],
    ]);
  });
});

describe('BR-06 window offsets with negative remainders', () => {
  it('places every reading in the window with start ≤ ts < end', () => {
    const c = runBoundedCase('BR-06', { type: 'tumbling', sizeMs: 10_000, offsetMs: 3000, allowedLatenessMs: 0 }, 2000);
    expectSameRows(c.emitted, readExpected('BR-06'));
    expect(c.op.metrics.late).toBe(0);
  });
});

describe('BR-08 sliding with slide = size behaves exactly like tumbling', () => {
  it('gives the same rows for sliding 10 s / 10 s and tumbling 10 s, each reading in one window', () => {
    const sliding = runBoundedCase(
      'BR-08',
      { type: 'sliding', sizeMs: 10_000, slideMs: 10_000, offsetMs: 0, allowedLatenessMs: 0 },
      2000,
    );
    const tumbling = runBoundedCase('BR-08', tumbling10s, 2000);
    expectSameRows(sliding.emitted, readExpected('BR-08'));
    expectSameRows(tumbling.emitted, readExpected('BR-08'));
    expect(sliding.emitted.reduce((s, r) => s + r.count, 0)).toBe(10);
  });
});

describe('BR-09 session windows merge when an out-of-order reading bridges two sessions', () => {
  it('merges three bed-3 sessions into one row with count 6', () => {
    const c = runBoundedCase('BR-09', { type: 'session', gapMs: 5000, allowedLatenessMs: 0 }, 5000);
    expectSameRows(c.emitted, readExpected('BR-09'));
    expect(c.op.metrics.late).toBe(0);
  });

  it('fires the first liv-2 session at line 6 (W = 7 s)', () => {
    const c = new CaseOperator({ type: 'session', gapMs: 5000, allowedLatenessMs: 0 });
    runSingleSplit(c, new BoundedOutOfOrdernessWatermarks(5000), readCase('BR-09').slice(0, 6));
    expect(c.emitted.map((r) => [r.sensor_id, r.window_start_ms - T0, r.window_end_ms - T0])).toEqual([
      ['liv-2', 2000, 7000],
    ]);
  });
});

describe('BR-17 sliding windows with a partially late reading (failure-free run)', () => {
  it('emits 12 rows and drops only the fully late reading', () => {
    const c = runBoundedCase(
      'BR-17',
      { type: 'sliding', sizeMs: 10_000, slideMs: 5000, offsetMs: 0, allowedLatenessMs: 0 },
      2000,
    );
    expectSameRows(c.emitted, readExpected('BR-17'));
    expect(c.op.metrics.late).toBe(1);
    expect(c.late[0].ts).toBe(T0 + 4000);
  });

  it('gives the same rows when restored from a key-group snapshot taken after line 7', () => {
    const spec: WindowSpec = { type: 'sliding', sizeMs: 10_000, slideMs: 5000, offsetMs: 0, allowedLatenessMs: 0 };
    const readings = readCase('BR-17');
    const first = new CaseOperator(spec);
    const gen = new BoundedOutOfOrdernessWatermarks(2000);
    runSingleSplit(first, gen, readings.slice(0, 7));
    const snaps = new Map<number, Uint8Array>();
    for (let kg = 0; kg < 128; kg++) snaps.set(kg, first.op.snapshotKeyGroup(kg));
    const sourceMaxTs = gen.maxTimestamp;

    const restored = new CaseOperator(spec);
    for (const [kg, bytes] of snaps) restored.op.restoreKeyGroup(kg, bytes);
    const gen2 = new BoundedOutOfOrdernessWatermarks(2000);
    gen2.restore(sourceMaxTs);
    runSingleSplit(restored, gen2, readings.slice(7));
    restored.op.endOfInput();
    expectSameRows([...first.emitted, ...restored.emitted], readExpected('BR-17'));
    expect(restored.op.metrics.late).toBe(1);
  });
});

describe('BR-18 a sensor that goes quiet still gets its last windows', () => {
  it('closes fridge-1 [+10 s, +20 s) on a hall-3 reading and emits no empty rows', () => {
    const c = new CaseOperator(tumbling10s);
    const gen = new BoundedOutOfOrdernessWatermarks(2000);
    const readings = readCase('BR-18');
    const fridgeSecond = () => c.emitted.some((r) => r.sensor_id === 'fridge-1' && r.window_start_ms === T0 + 10_000);
    runSingleSplit(c, gen, readings.slice(0, 8));
    expect(fridgeSecond()).toBe(false); // W = 16 s
    runSingleSplit(c, gen, readings.slice(8, 9));
    expect(fridgeSecond()).toBe(true); // line 9: hall-3 @ +23 s, W = 21 s
    runSingleSplit(c, gen, readings.slice(9));
    // unbounded: no end-of-input flush, so hall-3 [+40 s, +50 s) stays open (W = 43 s)
    expectSameRows(c.emitted, readExpected('BR-18'));
    expect(c.emitted.every((r) => r.count > 0)).toBe(true);
    expect(c.op.openWindows).toBe(1);
  });
});
