import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createSourceReader, newSourceBatch } from '../../../core/source/index.js';
import type { Row } from '../../../core/spec/types.js';
import { readSplit, sourceSpec, tempFiles } from './helpers.js';

const key = (r: Row) => `${r.sensorId}|${r.timestamp}|${r.temperature}`;

describe('generator source', () => {
  const gen = (over: Record<string, unknown> = {}) =>
    sourceSpec({
      type: 'generator',
      sensors: 7,
      count: 100,
      ratePerSec: 10,
      seed: 42,
      startMs: 1717200000000,
      ...over,
    });

  it('produces count readings with the documented fields and timestamps', async () => {
    const r = await readSplit(gen(), 0, 1, 16);
    expect(r.rows).toHaveLength(100);
    // reading n: sensor n mod 7, timestamp startMs + floor(n * 1000 / 10)
    r.rows.forEach((row, n) => {
      expect(row.sensorId).toBe(`sensor-0000${n % 7}`);
      expect(row.timestamp).toBe(1717200000000 + n * 100);
      expect(row.room).toBe(`room-${Math.floor((n % 7) / 2) % 5}`);
      expect(row.house).toBe('house-0');
      expect(typeof row.temperature).toBe('number');
      expect(Math.abs((row.temperature as number) - 21)).toBeLessThan(5);
    });
    expect(r.timestamps).toEqual(r.rows.map((x) => x.timestamp));
  });

  it('is deterministic for a seed, and differs for another seed', async () => {
    const a = await readSplit(gen(), 0, 1, 10);
    const b = await readSplit(gen(), 0, 1, 33);
    const c = await readSplit(gen({ seed: 43 }), 0, 1, 10);
    expect(b.rows).toEqual(a.rows);
    expect(c.rows.map(key)).not.toEqual(a.rows.map(key));
  });

  it('gives the same set of readings for any number of splits and any job parallelism', async () => {
    const one = (await readSplit(gen(), 0, 1, 10)).rows.map(key).sort();
    for (const [splits, parallelism] of [
      [3, 1],
      [3, 2],
      [3, 3],
      [3, 5],
      [4, 2],
    ] as const) {
      const all: string[] = [];
      for (let i = 0; i < parallelism; i++)
        all.push(...(await readSplit(gen({ splits }), i, parallelism, 10)).rows.map(key));
      expect(all.sort()).toEqual(one);
    }
  });

  it('adds jitter within [0, jitterMs]', async () => {
    const r = await readSplit(gen({ jitterMs: 50 }), 0, 1, 100);
    r.rows.forEach((row, n) => {
      const d = (row.timestamp as number) - (1717200000000 + n * 100);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(50);
    });
  });

  it('resumes from a position without repeating or skipping a reading', async () => {
    const spec = gen({ splits: 2 });
    const full = (await readSplit(spec, 0, 1, 1000)).rows.map(key);
    const reader = createSourceReader(spec, 0, 1);
    const out = newSourceBatch();
    const seen: string[] = [];
    await reader.poll(out, 70); // crosses from split 0 (4 sensors) into split 1
    seen.push(...out.rows.map(key));
    const pos = reader.position();
    await reader.close();
    const rest = await readSplit(spec, 0, 1, 9, pos);
    expect([...seen, ...rest.rows.map(key)]).toEqual(full);
  });
});

describe('file splits and positions', () => {
  const T0 = 1717200000000;
  const csv = (id: string, n: number) =>
    `${Array.from({ length: n }, (_, i) => `${id},${T0 + i},${i}.5`).join('\n')}\n`;
  const src = (paths: string[], dir: string) =>
    sourceSpec(
      { type: 'file', paths, columns: ['id', 'ts:int', 'v:double'], eventTime: { field: 'ts', unit: 'ms' } },
      dir,
    );

  it('gives file i to subtask i mod parallelism; extra subtasks end at once', async () => {
    const dir = tempFiles({ 'a.csv': csv('a', 3), 'b.csv': csv('b', 2), 'c.csv': csv('c', 1) });
    const spec = src(['a.csv', 'b.csv', 'c.csv'], dir);
    const ids = async (i: number, p: number) => (await readSplit(spec, i, p)).rows.map((r) => r.id);
    expect(await ids(0, 2)).toEqual(['a', 'a', 'a', 'c']);
    expect(await ids(1, 2)).toEqual(['b', 'b']);
    const idle = await readSplit(spec, 4, 5);
    expect(idle.rows).toEqual([]);
    expect(idle.polls).toBe(1);
  });

  for (const gz of [false, true]) {
    it(`resumes a ${gz ? 'gzip' : 'plain'} file at the recorded position`, async () => {
      const text = csv('a', 20);
      const dir = tempFiles({ 'a.csv': gz ? gzipSync(text) : text });
      const spec = src(['a.csv'], dir);
      const reader = createSourceReader(spec, 0, 1);
      const out = newSourceBatch();
      await reader.poll(out, 7);
      expect(out.rows.map((r) => r.v)).toEqual([0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5]);
      const pos = reader.position();
      const expectedOffset = text.split('\n').slice(0, 7).join('\n').length + 1;
      expect(pos).toEqual({ split: 0, nextLine: 8, byteOffset: expectedOffset });
      await reader.close();
      const rest = await readSplit(spec, 0, 1, 5, pos);
      expect(rest.rows.map((r) => r.v)).toEqual(Array.from({ length: 13 }, (_, i) => i + 7.5));
      // dead letters after a restore keep the file's line numbers
      expect(rest.linesRead).toBe(13);
    });
  }
});
