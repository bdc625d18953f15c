/**
 * Local-day (week, month) windows in a time zone, on hand-computed Europe/Brussels boundaries
 * around the 2024 daylight-saving changes (CET = UTC+1, CEST = UTC+2):
 * ```
 * spring forward, Sun 2024-03-31: 02:00 CET → 03:00 CEST (01:00Z)
 *   local day 03-30  [03-29T23:00Z, 03-30T23:00Z)  24 h
 *   local day 03-31  [03-30T23:00Z, 03-31T22:00Z)  23 h
 *   local day 04-01  [03-31T22:00Z, 04-01T22:00Z)  24 h
 * fall back, Sun 2024-10-27: 03:00 CEST → 02:00 CET (01:00Z)
 *   local day 10-27  [10-26T22:00Z, 10-27T23:00Z)  25 h
 *   local day 10-28  [10-27T23:00Z, 10-28T23:00Z)  24 h
 * ```
 */
import { describe, expect, it } from 'vitest';
import { buildJobGraph } from '../../../core/graph/build.js';
import { parseJobSpec } from '../../../core/spec/schema.js';
import type { Row, WindowSpec } from '../../../core/spec/types.js';
import { createAssigner } from '../../../core/windows/assigners.js';
import { CalendarPeriods } from '../../../core/windows/calendar.js';
import { WindowOperator } from '../../../core/windows/window-operator.js';

const Z = (iso: string) => Date.parse(iso);
const H = 3_600_000;
const brusselsDay: WindowSpec = {
  type: 'tumbling',
  calendar: 'day',
  timeZone: 'Europe/Brussels',
  allowedLatenessMs: 0,
};

function windowOf(spec: WindowSpec, ts: number): [number, number] {
  const a = createAssigner(spec);
  const out: number[] = [];
  expect(a.assign(ts, out)).toBe(1);
  return [out[0], a.windowEnd(out[0])];
}

describe('local-day windows in Europe/Brussels', () => {
  it('makes the spring-forward day 23 hours long, from local midnight to local midnight', () => {
    const [s, e] = windowOf(brusselsDay, Z('2024-03-31T12:00:00Z'));
    expect(s).toBe(Z('2024-03-30T23:00:00Z'));
    expect(e).toBe(Z('2024-03-31T22:00:00Z'));
    expect(e - s).toBe(23 * H);
  });

  it('makes the fall-back day 25 hours long', () => {
    const [s, e] = windowOf(brusselsDay, Z('2024-10-27T12:00:00Z'));
    expect(s).toBe(Z('2024-10-26T22:00:00Z'));
    expect(e).toBe(Z('2024-10-27T23:00:00Z'));
    expect(e - s).toBe(25 * H);
  });

  //   03-30 (24 h)          | 03-31 (23 h)                          | 04-01
  //   ..., 22:59:59.999Z    | 23:00Z ... 01:00Z gap ... 21:59:59.999Z | 22:00Z
  it('puts readings at the edges of the spring-forward day in the right day', () => {
    expect(windowOf(brusselsDay, Z('2024-03-30T22:59:59.999Z'))).toEqual([
      Z('2024-03-29T23:00:00Z'),
      Z('2024-03-30T23:00:00Z'),
    ]);
    expect(windowOf(brusselsDay, Z('2024-03-30T23:00:00Z'))[0]).toBe(Z('2024-03-30T23:00:00Z'));
    // the last CET instant (01:59:59.999 local) and the first CEST one (03:00 local)
    expect(windowOf(brusselsDay, Z('2024-03-31T00:59:59.999Z'))[0]).toBe(Z('2024-03-30T23:00:00Z'));
    expect(windowOf(brusselsDay, Z('2024-03-31T01:00:00Z'))[0]).toBe(Z('2024-03-30T23:00:00Z'));
    expect(windowOf(brusselsDay, Z('2024-03-31T21:59:59.999Z'))[0]).toBe(Z('2024-03-30T23:00:00Z'));
    expect(windowOf(brusselsDay, Z('2024-03-31T22:00:00Z'))).toEqual([
      Z('2024-03-31T22:00:00Z'),
      Z('2024-04-01T22:00:00Z'),
    ]);
  });

  it('keeps both passes of the repeated hour on the fall-back day in that day', () => {
    // 02:30 local happens twice: 00:30Z (CEST) and 01:30Z (CET)
    expect(windowOf(brusselsDay, Z('2024-10-27T00:30:00Z'))[0]).toBe(Z('2024-10-26T22:00:00Z'));
    expect(windowOf(brusselsDay, Z('2024-10-27T01:30:00Z'))[0]).toBe(Z('2024-10-26T22:00:00Z'));
    expect(windowOf(brusselsDay, Z('2024-10-26T21:59:59.999Z'))[0]).toBe(Z('2024-10-25T22:00:00Z'));
    expect(windowOf(brusselsDay, Z('2024-10-26T22:00:00Z'))[0]).toBe(Z('2024-10-26T22:00:00Z'));
    expect(windowOf(brusselsDay, Z('2024-10-27T22:59:59.999Z'))[0]).toBe(Z('2024-10-26T22:00:00Z'));
    expect(windowOf(brusselsDay, Z('2024-10-27T23:00:00Z'))).toEqual([
      Z('2024-10-27T23:00:00Z'),
      Z('2024-10-28T23:00:00Z'),
    ]);
  });

  it('labels each window with its local date', () => {
    const p = new CalendarPeriods('day', 'Europe/Brussels');
    expect(p.localDate(Z('2024-03-30T23:00:00Z'))).toBe('2024-03-31');
    expect(p.localDate(Z('2024-10-26T22:00:00Z'))).toBe('2024-10-27');
  });

  it('gives ISO weeks (Monday to Monday) and months across the change', () => {
    const week: WindowSpec = { ...brusselsDay, calendar: 'week' } as WindowSpec;
    // Mon 2024-03-25 00:00 CET .. Mon 2024-04-01 00:00 CEST: 7 days minus the lost hour
    expect(windowOf(week, Z('2024-03-31T12:00:00Z'))).toEqual([Z('2024-03-24T23:00:00Z'), Z('2024-03-31T22:00:00Z')]);
    const month: WindowSpec = { ...brusselsDay, calendar: 'month' } as WindowSpec;
    expect(windowOf(month, Z('2024-03-15T00:00:00Z'))).toEqual([Z('2024-02-29T23:00:00Z'), Z('2024-03-31T22:00:00Z')]);
    expect(windowOf(month, Z('2024-10-31T23:30:00Z'))).toEqual([Z('2024-10-31T23:00:00Z'), Z('2024-11-30T23:00:00Z')]);
  });
});

describe('zones whose clocks change at midnight', () => {
  // America/Havana: 2024-03-10 00:00 CST → 01:00 CDT (the day starts at 01:00 local, 05:00Z);
  // 2024-11-03 01:00 CDT → 00:00 CST (midnight happens twice; the day starts at the first, 04:00Z)
  it('starts a day at the end of a skipped midnight and at the first of a repeated one', () => {
    const day = { ...brusselsDay, timeZone: 'America/Havana' } as WindowSpec;
    expect(windowOf(day, Z('2024-03-10T12:00:00Z'))).toEqual([Z('2024-03-10T05:00:00Z'), Z('2024-03-11T04:00:00Z')]);
    expect(windowOf(day, Z('2024-11-03T04:30:00Z'))).toEqual([Z('2024-11-03T04:00:00Z'), Z('2024-11-04T05:00:00Z')]);
  });

  it('tiles the time line: every instant is in its window, and each window ends where the next starts', () => {
    for (const zone of [
      'America/Havana',
      'America/Santiago',
      'Asia/Beirut',
      'Europe/Brussels',
      'Australia/Lord_Howe',
    ]) {
      for (const calendar of ['day', 'week', 'month'] as const) {
        const spec = { type: 'tumbling', calendar, timeZone: zone, allowedLatenessMs: 0 } as WindowSpec;
        const a = createAssigner(spec);
        const out = [0];
        const bad: string[] = [];
        for (let t = Z('2024-01-01T00:00:00Z'); t < Z('2025-01-01T00:00:00Z'); t += 293 * 60_000) {
          a.assign(t, out);
          const s = out[0];
          const e = a.windowEnd(s);
          a.assign(e, out);
          if (!(s <= t && t < e) || out[0] !== e) bad.push(`${zone} ${calendar} ${new Date(t).toISOString()}`);
        }
        expect(bad).toEqual([]);
      }
    }
  }, 60_000);
});

describe('the window operator with local-day windows', () => {
  it('fires the 25-hour day once the watermark reaches its end, with all of its readings', () => {
    const rows: Row[] = [];
    const op = new WindowOperator(
      {
        window: brusselsDay,
        aggregates: [{ output: 'n', kind: 'count' }],
        keyFields: ['sensorId'],
        maxParallelism: 4,
        keyGroupStart: 0,
        keyGroupEnd: 3,
      },
      { emit: (r) => rows.push(r), late: () => {} },
    );
    for (const iso of [
      '2024-10-26T22:00:00Z',
      '2024-10-27T00:30:00Z',
      '2024-10-27T01:30:00Z',
      '2024-10-27T22:59:59.999Z',
    ])
      op.processElement({ sensorId: 's1' }, Z(iso), Number.NEGATIVE_INFINITY);
    op.processElement({ sensorId: 's1' }, Z('2024-10-27T23:00:00Z'), Number.NEGATIVE_INFINITY);
    op.processWatermark(Z('2024-10-27T23:00:00Z') - 1);
    expect(rows).toEqual([]);
    op.processWatermark(Z('2024-10-27T23:00:00Z'));
    expect(rows).toEqual([
      { key: 's1', windowStart: Z('2024-10-26T22:00:00Z'), windowEnd: Z('2024-10-27T23:00:00Z'), n: 4 },
    ]);
  });
});

describe('the calendar window spec', () => {
  const job = (window: unknown) => ({
    name: 'daily',
    source: {
      type: 'file',
      path: 'x.csv',
      columns: ['sensorId', 'timestamp:int', 'temperature:double'],
      eventTime: { field: 'timestamp', unit: 'ms' },
    },
    steps: [{ keyBy: 'sensorId' }, { window }, { aggregate: { avg: 'avg(temperature)' } }],
    sink: { type: 'file', path: 'out/daily.jsonl' },
  });

  it('normalises { type: tumbling, calendar: day, timeZone } and adds localDate to the result fields', () => {
    const spec = parseJobSpec(job({ type: 'tumbling', calendar: 'day', timeZone: 'Europe/Brussels' }));
    expect(spec.steps[1]).toEqual({ kind: 'window', window: { ...brusselsDay } });
    const sink = buildJobGraph(spec).vertices.find((v) => v.id === 'sink');
    const op = sink?.operators[0];
    expect(op?.kind === 'sink' && op.fields.map((f) => f.name)).toEqual([
      'key',
      'windowStart',
      'windowEnd',
      'localDate',
      'avg',
    ]);
  });

  it('refuses sizeMs or offsetMs beside calendar, an unknown unit and an unknown zone', () => {
    const problems = (w: unknown): string[] => {
      try {
        parseJobSpec(job(w));
      } catch (e) {
        return (e as { problems: string[] }).problems;
      }
      return [];
    };
    expect(problems({ type: 'tumbling', calendar: 'day', sizeMs: 1000 })).toEqual([
      'steps[1].window.sizeMs: unknown field',
    ]);
    expect(problems({ type: 'tumbling', calendar: 'year' })[0]).toMatch(/^steps\[1\]\.window\.calendar: /);
    expect(problems({ type: 'tumbling', calendar: 'day', timeZone: 'Europe/Atlantis' })).toEqual([
      'steps[1].window.timeZone: unknown time zone "Europe/Atlantis"',
    ]);
  });
});
