import { describe, expect, it } from 'vitest';
import { readFile } from './helpers.js';

const T0 = 1717200000000;
const CASE_COLUMNS = ['sensor_id:string', 'timestamp_ms:int', 'temperature_c:double'];
const CASE_SOURCE = { columns: CASE_COLUMNS, eventTime: { field: 'timestamp_ms', unit: 'ms' } };

describe('BR-13: malformed and oversized lines are dead letters, never failures', () => {
  const good = (rel: number, t: string) => Buffer.from(`hall-2,${T0 + rel},${t}`);
  const lines = [
    good(1000, '20.0'),
    Buffer.from(`hall-2,${T0 + 2000}`),
    Buffer.concat([good(3000, '20.4'), Buffer.from(',extra')]),
    Buffer.from('hall-2,abc,20.6'),
    Buffer.from(`,${T0 + 4000},20.8`),
    Buffer.from(`{"sensor_id":"hall-2","timestamp_ms":${T0 + 6000},"temperature_c":21.0}`),
    good(5000, '20.2'),
    Buffer.alloc(2_000_000, 'x'),
    good(12000, '21.0'),
    good(14000, '21.4'),
    Buffer.concat([Buffer.from(`hall-2,${T0 + 15000},`), Buffer.from([0xff, 0xfe])]),
    good(16000, '21.6'),
  ];
  const input = Buffer.concat([Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]))]);

  it('rejects exactly lines 2, 3, 4, 5, 6, 8 and 11, each with a reason', async () => {
    const r = await readFile(CASE_SOURCE, input);
    expect(r.deadLetters.map((d) => d.source)).toEqual([2, 3, 4, 5, 6, 8, 11].map((n) => `in.csv:${n}`));
    const reasons = r.deadLetters.map((d) => d.reason);
    expect(reasons[0]).toBe('expected 3 fields, got 2');
    expect(reasons[1]).toBe('expected 3 fields, got 4');
    expect(reasons[2]).toBe('column timestamp_ms: expected an integer, got "abc"');
    expect(reasons[3]).toBe('column sensor_id: empty');
    expect(reasons[4]).toMatch(/quoted field/);
    expect(reasons[5]).toBe('line longer than 1048576 bytes');
    expect(reasons[6]).toBe('invalid UTF-8');
    expect(r.linesRead).toBe(12);
  });

  it('accepts only lines 1, 7, 9, 10 and 12, typed', async () => {
    const r = await readFile(CASE_SOURCE, input);
    expect(r.rows).toEqual([
      { sensor_id: 'hall-2', timestamp_ms: T0 + 1000, temperature_c: 20.0 },
      { sensor_id: 'hall-2', timestamp_ms: T0 + 5000, temperature_c: 20.2 },
      { sensor_id: 'hall-2', timestamp_ms: T0 + 12000, temperature_c: 21.0 },
      { sensor_id: 'hall-2', timestamp_ms: T0 + 14000, temperature_c: 21.4 },
      { sensor_id: 'hall-2', timestamp_ms: T0 + 16000, temperature_c: 21.6 },
    ]);
    expect(r.timestamps).toEqual([1000, 5000, 12000, 14000, 16000].map((d) => T0 + d));
  });

  it('keeps at most 1 KiB of a rejected line, and shows invalid bytes as U+FFFD', async () => {
    const r = await readFile(CASE_SOURCE, input);
    const long = r.deadLetters.find((d) => d.source === 'in.csv:8');
    expect(long?.raw).toBe('x'.repeat(1024));
    const utf = r.deadLetters.find((d) => d.source === 'in.csv:11');
    expect(utf?.raw).toBe(`hall-2,${T0 + 15000},\uFFFD\uFFFD`);
  });

  it('rejects an over-long line that spans many read chunks without buffering it', async () => {
    const big = Buffer.concat([
      Buffer.from('a,1717200000000,1\n'),
      Buffer.alloc(3_000_000, 'y'),
      Buffer.from('\nb,1717200000001,2\n'),
    ]);
    const r = await readFile({ ...CASE_SOURCE, maxLineBytes: 1000 }, big);
    expect(r.rows.map((row) => row.sensor_id)).toEqual(['a', 'b']);
    expect(r.deadLetters).toHaveLength(1);
    expect(r.deadLetters[0]?.reason).toBe('line longer than 1000 bytes');
    expect(r.deadLetters[0]?.source).toBe('in.csv:2');
  });

  it('rejects an over-long last line without a final newline', async () => {
    const r = await readFile({ ...CASE_SOURCE, maxLineBytes: 10 }, `a,${T0},1\n${'z'.repeat(50)}`);
    expect(r.deadLetters.map((d) => [d.source, d.reason])).toEqual([
      ['in.csv:1', 'line longer than 10 bytes'],
      ['in.csv:2', 'line longer than 10 bytes'],
    ]);
  });
});

describe('BR-05: timestamps outside [2000-01-01, 2100-01-01) are rejected', () => {
  const input = [
    'garage-1,1717200003,15.0',
    'hall-1,1717200001000,20.0',
    'garage-1,1717200002000,15.2',
    'hall-1,1717200004000,20.2',
    'garage-1,1717200006,15.4',
    'hall-1,1717200007000000,20.4',
    'garage-1,1717200008000,15.6',
    'hall-1,1717200012000,20.6',
    'garage-1,1717200013000,15.8',
    'hall-1,1717200015000,20.8',
    'garage-1,1717200016,16.0',
    'garage-1,1717200019000,16.2',
  ].join('\n');

  it('rejects lines 1, 5, 6 and 11 with "timestamp out of range"', async () => {
    const r = await readFile(CASE_SOURCE, `${input}\n`);
    expect(r.deadLetters.map((d) => d.source)).toEqual(['in.csv:1', 'in.csv:5', 'in.csv:6', 'in.csv:11']);
    expect(new Set(r.deadLetters.map((d) => d.reason))).toEqual(new Set(['timestamp out of range']));
    expect(r.rows).toHaveLength(8);
  });

  it('honours a custom range', async () => {
    const r = await readFile({ ...CASE_SOURCE, eventTime: { field: 'timestamp_ms', unit: 'ms', minMs: 0 } }, input);
    // only the microsecond line (year ~56000) stays out of range
    expect(r.deadLetters.map((d) => d.source)).toEqual(['in.csv:6']);
  });
});

describe('line handling', () => {
  it('handles CRLF, a missing final newline and empty lines (skipped, not dead letters)', async () => {
    const r = await readFile(CASE_SOURCE, `a,${T0},1.5\r\n\r\n\nb,${T0 + 1},2.5`);
    expect(r.rows).toEqual([
      { sensor_id: 'a', timestamp_ms: T0, temperature_c: 1.5 },
      { sensor_id: 'b', timestamp_ms: T0 + 1, temperature_c: 2.5 },
    ]);
    expect(r.deadLetters).toEqual([]);
    expect(r.linesRead).toBe(4);
  });

  it('reports 1-based line numbers and the path as written in the spec', async () => {
    const r = await readFile(CASE_SOURCE, `a,${T0},1\nbad\n`, 'sub.csv');
    expect(r.deadLetters).toEqual([{ reason: 'expected 3 fields, got 1', source: 'sub.csv:2', raw: 'bad' }]);
  });

  it('rejects non-numbers, hex, Infinity and blank numeric cells', async () => {
    const r = await readFile(
      CASE_SOURCE,
      [`a,${T0},0x10`, `a,${T0},Infinity`, `a,${T0}, `, `a,${T0},1e400`, `a,${T0},-0.5e1`].join('\n'),
    );
    expect(r.deadLetters.map((d) => d.reason)).toEqual([
      'column temperature_c: expected a number, got "0x10"',
      'column temperature_c: expected a number, got "Infinity"',
      'column temperature_c: empty',
      'column temperature_c: expected a number, got "1e400"',
    ]);
    expect(r.rows.map((x) => x.temperature_c)).toEqual([-5]);
  });

  it('gives null for an empty cell of a nullable column', async () => {
    const r = await readFile(
      { columns: ['id', 'ts:int', 'v:double?'], eventTime: { field: 'ts', unit: 'ms' } },
      `a,${T0},\n`,
    );
    expect(r.rows).toEqual([{ id: 'a', ts: T0, v: null }]);
  });

  it('accepts more cells with extraColumns: ignore', async () => {
    const r = await readFile({ ...CASE_SOURCE, extraColumns: 'ignore' }, `a,${T0},1,zz\n`);
    expect(r.rows).toEqual([{ sensor_id: 'a', timestamp_ms: T0, temperature_c: 1 }]);
  });
});
