/**
 * Acceptance cases BR-05 and BR-13 (shared/cases) run through the whole engine in-process
 * (runJobLocally) at parallelism 1, 2 and 4: rejected lines go to the dead-letter output with a
 * reason and a `file:line` source, change no state, do not move the watermark, and the job
 * finishes. BR-13's recovery part (checkpoint, crash, restore) is not covered here.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { expectSameRows, readExpected } from '../harness.js';
import {
  br13Input,
  type CaseJob,
  caseInput,
  cleanup,
  type DeadLetter,
  type EngineRun,
  PARALLELISMS,
  runCase,
  T0,
} from './engine-harness.js';

const runs: EngineRun[] = [];
afterAll(() => {
  for (const r of runs) cleanup(r);
});

const tumbling10s: CaseJob = { window: { type: 'tumbling', sizeMs: 10_000 }, outOfOrdernessMs: 2000 };

/** The input line number of a dead letter (`input.csv:<line>`). */
function lineOf(d: DeadLetter): number {
  const m = /^input\.csv:(\d+)$/.exec(d.source);
  return m ? Number(m[1]) : Number.NaN;
}

/** The watermark the (single) source task emitted last. */
function sourceWatermark(r: EngineRun): number {
  const sources = Object.entries(r.counters).filter(([id]) => id.startsWith('source-'));
  expect(sources).toHaveLength(1);
  return sources[0]?.[1].watermark ?? Number.NaN;
}

function expectWellFormedDeadLetters(deadLetters: DeadLetter[]): void {
  for (const d of deadLetters) {
    expect(typeof d.reason, JSON.stringify(d).slice(0, 200)).toBe('string');
    expect(d.reason.trim(), JSON.stringify(d).slice(0, 200)).not.toBe('');
    expect(d.source).toMatch(/^input\.csv:\d+$/);
  }
}

describe.each(PARALLELISMS)('BR-05 through the engine, parallelism %i', (p) => {
  it('BR-05: timestamps in seconds or microseconds are rejected as out of range and do not move the watermark', async () => {
    const r = await runCase(caseInput('BR-05'), tumbling10s, p, 'BR-05');
    runs.push(r);
    expectSameRows(r.rows, readExpected('BR-05'));
    expect(r.rejectedCount).toBe(4);
    expect(r.lateCount).toBe(0);
    expect(r.late).toEqual([]);
    expect(r.deadLetters).toHaveLength(4);
    expectWellFormedDeadLetters(r.deadLetters);
    expect(r.deadLetters.map(lineOf).sort((a, b) => a - b)).toEqual([1, 5, 6, 11]);
    for (const d of r.deadLetters) expect(d.reason).toContain('timestamp out of range');
    // rejected lines do not move the watermark: the source's last one is max(accepted ts) − B
    expect(sourceWatermark(r)).toBe(T0 + 19_000 - 2000);
  });
});

describe.each(PARALLELISMS)('BR-13 through the engine, parallelism %i', (p) => {
  it('BR-13: malformed, oversized and non-UTF-8 lines are rejected with a reason and the job finishes', async () => {
    const r = await runCase(br13Input(), tumbling10s, p, 'BR-13');
    runs.push(r);
    expectSameRows(r.rows, readExpected('BR-13'));
    expect(r.rejectedCount).toBe(7);
    expect(r.lateCount).toBe(0);
    expect(r.deadLetters).toHaveLength(7);
    expectWellFormedDeadLetters(r.deadLetters);
    expect(r.deadLetters.map(lineOf).sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 8, 11]);
    // the JSON line (+6 s) and the invalid-UTF-8 line (+15 s) did not move the watermark
    expect(sourceWatermark(r)).toBe(T0 + 16_000 - 2000);
  });

  it('BR-13: the JSON line is rejected whole, never half-parsed into a sensor id', async () => {
    const r = await runCase(br13Input(), tumbling10s, p, 'BR-13');
    runs.push(r);
    expect(r.rows.map((row) => row.sensor_id)).toEqual(['hall-2', 'hall-2']);
    const json = r.deadLetters.find((d) => lineOf(d) === 6);
    expect(json?.raw).toContain('"sensor_id":"hall-2"');
  });

  it('BR-13: the 2,000,000-byte line is rejected as too long and its dead letter keeps at most 1 KiB of it', async () => {
    const r = await runCase(br13Input(), tumbling10s, p, 'BR-13');
    runs.push(r);
    const long = r.deadLetters.find((d) => lineOf(d) === 8);
    expect(long).toBeDefined();
    expect(long?.reason).toMatch(/longer than|too long/i);
    expect(Buffer.byteLength(long?.raw ?? '', 'utf8')).toBeGreaterThan(0);
    expect(Buffer.byteLength(long?.raw ?? '', 'utf8')).toBeLessThanOrEqual(1024);
    expect(long?.raw).toMatch(/^x+$/);
  });

  it('BR-13: the line with bytes 0xFF 0xFE is rejected as invalid UTF-8', async () => {
    const r = await runCase(br13Input(), tumbling10s, p, 'BR-13');
    runs.push(r);
    const bad = r.deadLetters.find((d) => lineOf(d) === 11);
    expect(bad?.reason).toMatch(/UTF-8/i);
    expect(bad?.raw.startsWith('hall-2,1717200015000,')).toBe(true);
  });
});

describe.each(PARALLELISMS)('BR-05 and BR-13 with one record per batch and one channel credit, parallelism %i', (p) => {
  it('BR-05: the out-of-range lines are rejected the same way when every line is its own batch', async () => {
    const r = await runCase(caseInput('BR-05'), tumbling10s, p, 'BR-05', { batchRecords: 1, channelCredits: 1 });
    runs.push(r);
    expectSameRows(r.rows, readExpected('BR-05'));
    expect(r.rejectedCount).toBe(4);
    expect(r.lateCount).toBe(0);
    expect(r.deadLetters.map(lineOf).sort((a, b) => a - b)).toEqual([1, 5, 6, 11]);
  });

  it('BR-13: the seven bad lines are rejected the same way when every line is its own batch', async () => {
    const r = await runCase(br13Input(), tumbling10s, p, 'BR-13', { batchRecords: 1, channelCredits: 1 });
    runs.push(r);
    expectSameRows(r.rows, readExpected('BR-13'));
    expect(r.rejectedCount).toBe(7);
    expect(r.lateCount).toBe(0);
    expectWellFormedDeadLetters(r.deadLetters);
    expect(r.deadLetters.map(lineOf).sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 8, 11]);
  });
});
