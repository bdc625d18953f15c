/**
 * The detect operator on hand-computed cases: each rule, event-time reordering, lateness,
 * predecessors, ties, and snapshot/restore (also at another parallelism).
 *
 * Fluxo's watermark W promises no more readings with ts < W, so a reading is released once W > ts:
 * ```
 *  arrival:   ts=3000 ts=1000 ts=2000 | W=2500           | end of input
 *  released:                          | 1000, 2000       | 3000
 * ```
 */
import { describe, expect, it } from 'vitest';
import { DetectOperator } from '../../../core/detect/detect-operator.js';
import type { DetectRule, Row } from '../../../core/spec/types.js';
import { keyGroupOf, keyGroupRange, subtaskForKeyGroup } from '../../../core/state/keygroups.js';

const MAXP = 8;
const jump = (minDelta: number): DetectRule => ({ type: 'jump', name: 'jump', minDelta });
const rate = (perMinute: number): DetectRule => ({ type: 'rate', name: 'rate', perMinute });
const zscore = (k: number, alpha: number, warmup: number, minStdDev = 0): DetectRule => ({
  type: 'zscore',
  name: 'zscore',
  k,
  alpha,
  warmup,
  minStdDev,
});

function make(rules: DetectRule[], range = { start: 0, end: MAXP - 1 }) {
  const alerts: Row[] = [];
  const late: { row: Row; ts: number; wm: number }[] = [];
  const op = new DetectOperator(
    {
      detect: { valueField: 'temperature', rules },
      keyFields: ['sensor_id'],
      maxParallelism: MAXP,
      keyGroupStart: range.start,
      keyGroupEnd: range.end,
    },
    { emit: (r) => alerts.push(r), late: (row, ts, wm) => late.push({ row, ts, wm }) },
  );
  const add = (ts: number, temperature: number, sensor = 's1', swm = Number.NEGATIVE_INFINITY) =>
    op.processElement({ sensor_id: sensor, temperature, timestamp: ts }, ts, swm);
  return { op, alerts, late, add };
}

const brief = (rows: Row[]) => rows.map((r) => `${r.sensor}@${r.ts}:${r.rule}`);

describe('detect operator rules', () => {
  it('jump fires when |Δ| reaches minDelta (inclusive), both directions', () => {
    const { op, alerts, add } = make([jump(3)]);
    [20, 20.5, 23.5, 23, 19.9, 19.9].forEach((v, i) => {
      add(i * 1000, v);
    });
    op.endOfInput();
    // 20→20.5 (+0.5), →23.5 (+3: fires), →23 (−0.5), →19.9 (−3.1: fires), →19.9 (0)
    expect(brief(alerts)).toEqual(['s1@2000:jump', 's1@4000:jump']);
    expect(alerts[1]).toEqual({
      sensor: 's1',
      ts: 4000,
      value: 19.9,
      rule: 'jump',
      detail: 'jump -3.1 from 23 (1000 ms earlier)',
    });
  });

  it('rate fires when |Δ/Δt| exceeds perMinute (strictly), per minute of event time', () => {
    const { op, alerts, add } = make([rate(1.5)]);
    add(0, 20); // first: no predecessor
    add(60_000, 21.5); // 1.5 °C/min: not above 1.5
    add(90_000, 22.5); // 1 °C in 30 s = 2 °C/min: fires
    add(90_000, 30); // Δt = 0: the rate is undefined, not evaluated
    add(150_000, 28); // (28 − 30) / 1 min = −2 °C/min: fires
    op.endOfInput();
    expect(brief(alerts)).toEqual(['s1@90000:rate', 's1@150000:rate']);
    expect(alerts[0].detail).toBe('rate +2/min from 21.5 over 30000 ms');
  });

  it('zscore uses the EWMA mean and variance of the earlier readings (Finch 2009), after the warm-up', () => {
    // alpha 0.5, warm-up 2, k 2:
    //   10: no statistics yet              → μ = 10, σ² = 0
    //   12: 1 reading < warm-up            → δ = 2, μ = 11, σ² = 0.5·(0 + 2·1) = 1
    //   11: |11 − 11| = 0 ≤ 2·1            → δ = 0, μ = 11, σ² = 0.5·(1 + 0) = 0.5
    //   20: |20 − 11| = 9 > 2·√0.5 = 1.414 → alert, z = 9 / √0.5 = 12.7279
    const { op, alerts, add } = make([zscore(2, 0.5, 2)]);
    [10, 12, 11, 20].forEach((v, i) => {
      add(i * 1000, v);
    });
    op.endOfInput();
    expect(alerts).toEqual([
      { sensor: 's1', ts: 3000, value: 20, rule: 'zscore', detail: 'z +12.7279 (mean 11, std 0.7071, k 2)' },
    ]);
  });

  it('zscore waits for the warm-up count, and minStdDev floors a zero deviation', () => {
    const a = make([zscore(2, 0.1, 3)]);
    // only 2 readings before the third: no alert
    [10, 30, 10].forEach((v, i) => {
      a.add(i * 1000, v);
    });
    a.op.endOfInput();
    expect(a.alerts).toEqual([]);

    const b = make([zscore(2, 0.1, 1)]);
    b.add(0, 10);
    b.add(1000, 10.5); // σ = 0: any deviation is infinitely many σ
    b.op.endOfInput();
    expect(b.alerts.map((r) => r.detail)).toEqual(['z +inf (mean 10, std 0, k 2)']);

    const c = make([zscore(2, 0.1, 1, 0.5)]);
    c.add(0, 10);
    c.add(1000, 10.5); // 0.5 ≤ 2 · 0.5
    c.add(2000, 12); // σ² = 0.9·(0 + 0.5·0.05) = 0.0225, σ = 0.15 < 0.5; μ = 10.05: |1.95| > 1 → fires
    c.op.endOfInput();
    expect(brief(c.alerts)).toEqual(['s1@2000:zscore']);
  });

  it('the first reading of a key has no predecessor; each key has its own', () => {
    const { op, alerts, add } = make([jump(1), rate(1), zscore(1, 0.5, 0)]);
    add(0, 100, 'a');
    add(0, -100, 'b');
    add(1000, 100, 'a');
    op.endOfInput();
    expect(alerts).toEqual([]);
  });

  it('every rule that fires gives its own alert, in rule order', () => {
    const { op, alerts, add } = make([rate(10), { ...jump(2), name: 'big' }, { ...jump(1), name: 'small' }]);
    add(0, 20);
    add(5000, 22.5);
    op.endOfInput();
    expect(alerts.map((r) => r.rule)).toEqual(['rate', 'big', 'small']);
  });
});

describe('detect operator in event time', () => {
  it('buffers readings and releases them in event-time order as the watermark passes them', () => {
    const { op, alerts, add } = make([jump(3)]);
    add(3000, 21);
    add(1000, 20);
    add(2000, 25);
    expect(op.pendingReadings).toBe(3);
    op.processWatermark(2500); // releases 1000 and 2000 (ts < W)
    expect(brief(alerts)).toEqual(['s1@2000:jump']); // 20 → 25
    expect(op.pendingReadings).toBe(1);
    op.processWatermark(3000); // ts 3000 is not < 3000: still pending
    expect(op.pendingReadings).toBe(1);
    op.endOfInput();
    expect(brief(alerts)).toEqual(['s1@2000:jump', 's1@3000:jump']); // 25 → 21
    // in arrival order it would have been 21 → 20 → 25: one jump at 2000 only
  });

  it('a reading older than its source watermark is late: side output, no state, not a predecessor', () => {
    const { op, alerts, late, add } = make([jump(5)]);
    add(1000, 20, 's1', 0);
    op.processWatermark(5000);
    add(2000, 40, 's1', 5000); // late: ts < 5000
    add(5000, 21, 's1', 5000); // ts = W: on time
    op.endOfInput();
    expect(late).toEqual([{ row: { sensor_id: 's1', temperature: 40, timestamp: 2000 }, ts: 2000, wm: 5000 }]);
    expect(op.metrics.late).toBe(1);
    expect(alerts).toEqual([]); // 20 → 21: the late 40 never became a predecessor
  });

  it('the source watermark on the record decides lateness even when the operator watermark lags', () => {
    const { op, late, add } = make([jump(5)]);
    add(1000, 20, 's1', 9000);
    expect(late).toHaveLength(1);
    expect(op.pendingReadings).toBe(0);
  });

  it('ties in event time are ordered by value, so arrival order cannot change the alerts', () => {
    const run = (order: number[]) => {
      const { op, alerts, add } = make([jump(2), zscore(1, 0.3, 1)]);
      add(0, 20);
      for (const v of order) add(1000, v);
      add(2000, 21);
      op.endOfInput();
      return alerts;
    };
    const a = run([25, 18, 22]);
    expect(run([18, 22, 25])).toEqual(a);
    expect(run([22, 25, 18])).toEqual(a);
    // released 20, 18, 22, 25, 21: jumps at 18 (−2), 22 (+4), 25 (+3), 21 (−4)
    expect(a.filter((r) => r.rule === 'jump').map((r) => r.value)).toEqual([18, 22, 25, 21]);
  });

  it('rejects a value that is not a finite number without touching state', () => {
    const { op, add } = make([jump(1)]);
    expect(add(0, Number.NaN)).toBe(false);
    expect(op.metrics.keys).toBe(0);
  });
});

/** Deterministic readings of 12 sensors with spikes, out of order by up to 3 s, and tied timestamps. */
function input(): { sensor: string; ts: number; v: number; swm: number }[] {
  const out: { sensor: string; ts: number; v: number; swm: number }[] = [];
  let maxTs = Number.NEGATIVE_INFINITY;
  let x = 12345;
  for (let i = 0; i < 3000; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const sensor = `s${i % 12}`;
    const ts = Math.floor(i / 12) * 5000 - (x % 4 === 0 ? 3000 : 0);
    const spike = x % 97 === 0 ? 8 : 0;
    const v = 20 + ((x >> 8) % 100) / 50 + spike;
    maxTs = Math.max(maxTs, ts);
    out.push({ sensor, ts, v, swm: maxTs - 3000 });
  }
  return out;
}

const RULES = [jump(2.5), rate(25), zscore(3, 0.1, 10, 0.05)];
const sortAlerts = (rows: Row[]) => rows.map((r) => JSON.stringify(r)).sort();

function runOnce(data: ReturnType<typeof input>): Row[] {
  const { op, alerts } = make(RULES);
  for (const [i, r] of data.entries()) {
    op.processElement({ sensor_id: r.sensor, temperature: r.v }, r.ts, r.swm);
    if (i % 50 === 49) op.processWatermark(r.swm);
  }
  op.endOfInput();
  return alerts;
}

describe('detect operator checkpoints', () => {
  const data = input();
  const reference = runOnce(data);

  it('the reference input raises alerts of every rule', () => {
    expect(new Set(reference.map((r) => r.rule))).toEqual(new Set(['jump', 'rate', 'zscore']));
  });

  for (const p of [1, 2, 3, 8]) {
    it(`a restore from key-group snapshots at parallelism ${p} gives the same alerts as an uninterrupted run`, () => {
      const cut = 1337;
      const first = make(RULES);
      for (const [i, r] of data.slice(0, cut).entries()) {
        first.op.processElement({ sensor_id: r.sensor, temperature: r.v }, r.ts, r.swm);
        if (i % 50 === 49) first.op.processWatermark(r.swm);
      }
      expect(first.op.pendingReadings).toBeGreaterThan(0); // the snapshot carries buffered readings
      const parts = new Map<number, Uint8Array>();
      for (let kg = 0; kg < MAXP; kg++) parts.set(kg, first.op.snapshotKeyGroup(kg));

      const subtasks = Array.from({ length: p }, (_, i) => make(RULES, keyGroupRange(i, p, MAXP)));
      subtasks.forEach((s, i) => {
        const range = keyGroupRange(i, p, MAXP);
        for (let kg = range.start; kg <= range.end; kg++) s.op.restoreKeyGroup(kg, parts.get(kg) as Uint8Array);
      });
      for (const [i, r] of data.slice(cut).entries()) {
        const s = subtasks[subtaskForKeyGroup(keyGroupOf(r.sensor, MAXP), p, MAXP)];
        s.op.processElement({ sensor_id: r.sensor, temperature: r.v }, r.ts, r.swm);
        if (i % 50 === 49) for (const t of subtasks) t.op.processWatermark(r.swm);
      }
      for (const s of subtasks) s.op.endOfInput();
      const after = [...first.alerts, ...subtasks.flatMap((s) => s.alerts)];
      expect(sortAlerts(after)).toEqual(sortAlerts(reference));
    });
  }

  it('refuses a snapshot of another operator or another number of zscore rules', () => {
    const a = make(RULES);
    a.add(0, 20, 'x');
    const kg = keyGroupOf('x', MAXP);
    const bytes = a.op.snapshotKeyGroup(kg);
    expect(() => make([jump(1)]).op.restoreKeyGroup(kg, bytes)).toThrow(/zscore/);
    const bad = bytes.slice();
    bad[0] = 0x46;
    expect(() => make(RULES).op.restoreKeyGroup(kg, bad)).toThrow(/not a detect-operator/);
  });
});
