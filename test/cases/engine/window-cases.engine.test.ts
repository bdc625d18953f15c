/**
 * Acceptance cases BR-02, BR-03, BR-06, BR-08 and BR-09 (shared/cases) run through the whole
 * engine in-process (runJobLocally): real file source, tasks, codec, channels, window operator
 * and file sinks, at parallelism 1, 2 and 4. The operator-level versions are in
 * test/cases/window-cases.test.ts; the data files are shared.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { expectSameRows, readExpected } from '../harness.js';
import { type CaseJob, caseInput, cleanup, type EngineRun, PARALLELISMS, runCase, T0 } from './engine-harness.js';

const runs: EngineRun[] = [];
afterAll(() => {
  for (const r of runs) cleanup(r);
});

async function run(name: string, job: CaseJob, parallelism: number): Promise<EngineRun> {
  const r = await runCase(caseInput(name), job, parallelism, name);
  runs.push(r);
  return r;
}

const tumbling10s: CaseJob = { window: { type: 'tumbling', sizeMs: 10_000 }, outOfOrdernessMs: 2000 };

describe.each(PARALLELISMS)('BR-02 through the engine, parallelism %i', (p) => {
  it('BR-02: the last windows of a bounded file fire at end of input, with exclusive window ends', async () => {
    const r = await run('BR-02', tumbling10s, p);
    expectSameRows(r.rows, readExpected('BR-02'));
    const last = r.rows.filter((row) => row.window_start_ms === T0 + 30_000);
    expect(last.map((row) => row.sensor_id).sort()).toEqual(['bath-1', 'bed-2']);
    expect(r.lateCount).toBe(0);
    expect(r.late).toEqual([]);
    expect(r.rejectedCount).toBe(0);
    expect(r.deadLetters).toEqual([]);
  });
});

describe.each(PARALLELISMS)('BR-03 through the engine, parallelism %i', (p) => {
  it('BR-03: out-of-order readings whose window is still open are accepted, and exactly three late ones are counted', async () => {
    const r = await run('BR-03', tumbling10s, p);
    expectSameRows(r.rows, readExpected('BR-03'));
    expect(r.lateCount).toBe(3);
    expect(r.rejectedCount).toBe(0);
  });

  it('BR-03: the late side output holds the three late readings with sensor, timestamp and value', async () => {
    const r = await run('BR-03', tumbling10s, p);
    const late = r.late
      .map((l) => [l.sensor_id, l.timestamp_ms - T0, l.temperature_c] as const)
      .sort((a, b) => a[1] - b[1]);
    expect(late).toEqual([
      ['kit-2', 9000, 19.0],
      ['liv-1', 9500, 25.0],
      ['liv-1', 19_999, 30.0],
    ]);
    // each was late because its only window [s, s + 10 s) had fired: W ≥ its end at arrival
    for (const l of r.late) {
      const end = Math.floor(l.timestamp_ms / 10_000) * 10_000 + 10_000;
      expect(l.watermarkMs).toBeGreaterThanOrEqual(end);
    }
  });
});

describe.each(PARALLELISMS)('BR-06 through the engine, parallelism %i', (p) => {
  const job: CaseJob = { window: { type: 'tumbling', sizeMs: 10_000, offsetMs: 3000 }, outOfOrdernessMs: 2000 };

  it('BR-06: a reading before the offset lands in the window that started before it', async () => {
    const r = await run('BR-06', job, p);
    expectSameRows(r.rows, readExpected('BR-06'));
    expect(r.rows.filter((row) => row.window_start_ms === T0 - 7000)).toHaveLength(2);
    expect(r.lateCount).toBe(0);
    expect(r.rejectedCount).toBe(0);
  });
});

describe.each(PARALLELISMS)('BR-08 through the engine, parallelism %i', (p) => {
  it('BR-08: a sliding window with slide equal to size gives the tumbling rows, each reading in one window', async () => {
    const sliding = await run(
      'BR-08',
      { window: { type: 'sliding', sizeMs: 10_000, slideMs: 10_000 }, outOfOrdernessMs: 2000 },
      p,
    );
    expectSameRows(sliding.rows, readExpected('BR-08'));
    expect(sliding.rows.reduce((s, row) => s + row.count, 0)).toBe(10);
    expect(sliding.lateCount).toBe(0);
  });

  it('BR-08: the tumbling 10 s run gives the same table', async () => {
    const tumbling = await run('BR-08', tumbling10s, p);
    expectSameRows(tumbling.rows, readExpected('BR-08'));
    expect(tumbling.rows.reduce((s, row) => s + row.count, 0)).toBe(10);
    expect(tumbling.lateCount).toBe(0);
  });
});

describe.each(PARALLELISMS)('BR-09 through the engine, parallelism %i', (p) => {
  it('BR-09: an out-of-order reading that bridges two sessions merges them into one row with every reading once', async () => {
    const r = await run('BR-09', { window: { type: 'session', gapMs: 5000 }, outOfOrdernessMs: 5000 }, p);
    expectSameRows(r.rows, readExpected('BR-09'));
    const bed3 = r.rows.filter((row) => row.sensor_id === 'bed-3' && row.window_start_ms === T0 + 1000);
    expect(bed3).toHaveLength(1);
    expect(bed3[0]?.count).toBe(6);
    expect(r.lateCount).toBe(0);
    expect(r.rejectedCount).toBe(0);
  });
});

describe.each(PARALLELISMS)('the cases with one record per batch and one channel credit, parallelism %i', (p) => {
  // With the default batch size the whole input is one source batch, so the source sends its
  // watermark once; here it sends one after every line and every channel is backpressured.
  const cases: [string, CaseJob][] = [
    ['BR-02', tumbling10s],
    ['BR-03', tumbling10s],
    ['BR-06', { window: { type: 'tumbling', sizeMs: 10_000, offsetMs: 3000 }, outOfOrdernessMs: 2000 }],
    ['BR-08', { window: { type: 'sliding', sizeMs: 10_000, slideMs: 10_000 }, outOfOrdernessMs: 2000 }],
    ['BR-09', { window: { type: 'session', gapMs: 5000 }, outOfOrdernessMs: 5000 }],
  ];
  it.each(cases)('%s: the rows and late count do not depend on how the source batches its lines', async (name, job) => {
    const r = await runCase(caseInput(name), job, p, name, { batchRecords: 1, channelCredits: 1 });
    runs.push(r);
    expectSameRows(r.rows, readExpected(name));
    expect(r.lateCount).toBe(name === 'BR-03' ? 3 : 0);
    expect(r.late).toHaveLength(r.lateCount);
  });
});

describe.each(PARALLELISMS)(
  'the cases with records handed over as local batches (as inside one slot), parallelism %i',
  (p) => {
    const cases: [string, CaseJob][] = [
      ['BR-02', tumbling10s],
      ['BR-03', tumbling10s],
      ['BR-06', { window: { type: 'tumbling', sizeMs: 10_000, offsetMs: 3000 }, outOfOrdernessMs: 2000 }],
      ['BR-08', { window: { type: 'sliding', sizeMs: 10_000, slideMs: 10_000 }, outOfOrdernessMs: 2000 }],
      ['BR-09', { window: { type: 'session', gapMs: 5000 }, outOfOrdernessMs: 5000 }],
    ];
    it.each(cases)('%s: the rows and late count are the same without the codec in between', async (name, job) => {
      const r = await runCase(caseInput(name), job, p, name, {
        batchRecords: 2,
        channelCredits: 1,
        localBatches: true,
      });
      expectSameRows(r.rows, readExpected(name));
      expect(r.lateCount).toBe(name === 'BR-03' ? 3 : 0);
      expect(r.late).toHaveLength(r.lateCount);
    });
  },
);
