/**
 * The redis-stream source reader on a real (private) redis-server: positions, restore, bounded
 * reads, draining, dead letters, and the same typing as the file source. Each test uses its own
 * stream name, so tests share one server.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSourceReader, newSourceBatch, type SourcePosition, type SourceReader } from '../../core/source/index.js';
import { parseJobSpec } from '../../core/spec/schema.js';
import type { DeadLetter, Row, SourceSpec } from '../../core/spec/types.js';
import { RECORD_FIELD, StreamWriter, streamKey, streamMetaKey } from '../../core/streams/layout.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { readSplit, sourceSpec, tempFiles } from '../unit/source/helpers.js';

let redis: TestRedis;
let client: Redis;

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

const fresh = (label: string): string => `${label}-${randomBytes(3).toString('hex')}`;

function streamSpec(source: Record<string, unknown>): SourceSpec {
  return parseJobSpec({ name: 't', source: { type: 'redis-stream', ...source }, steps: [], sink: { type: 'stdout' } })
    .source;
}

const JSON_COLUMNS = ['sensor:string', 'ts:int', 'temperature:double'];
const reading = (sensor: string, ts: number, t: number): string => JSON.stringify({ sensor, ts, temperature: t });

interface Drained {
  rows: Row[];
  deadLetters: DeadLetter[];
  linesRead: number;
}

/** Polls until `stop(drained)` or the reader ends; returns what was read. */
async function pollUntil(reader: SourceReader, stop: (d: Drained) => boolean, batch = 2): Promise<Drained> {
  const out = newSourceBatch();
  const d: Drained = { rows: [], deadLetters: [], linesRead: 0 };
  for (let i = 0; i < 500; i++) {
    const more = await reader.poll(out, batch);
    d.rows.push(...out.rows);
    d.deadLetters.push(...out.deadLetters);
    d.linesRead += out.linesRead;
    if (!more || stop(d)) return d;
  }
  throw new Error('reader did not reach the expected state in 500 polls');
}

async function append(stream: string, partition: number, records: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const r of records) ids.push((await client.xadd(streamKey(stream, partition), '*', RECORD_FIELD, r)) as string);
  return ids;
}

describe('redis-stream source reader', () => {
  it('follows a partition; its position is the last entry id, and a restored reader goes on after it', async () => {
    const stream = fresh('follow');
    const spec = streamSpec({ stream, columns: JSON_COLUMNS, eventTime: { field: 'ts', unit: 'ms' }, blockMs: 20 });
    const ids = await append(
      stream,
      0,
      [1, 2, 3, 4, 5].map((i) => reading('s1', 1_717_200_000_000 + i, i)),
    );
    const a = createSourceReader(spec, 0, 1, undefined, { redisUrl: redis.url });
    const first = await pollUntil(a, (d) => d.rows.length >= 3, 3);
    expect(first.rows.map((r) => r.temperature)).toEqual([1, 2, 3]);
    const pos = a.position();
    expect(pos.entryIds).toEqual({ '0': ids[2] });
    expect(pos.nextLine).toBe(4);
    // an unbounded reader at the end of its input keeps polling: a poll without data returns true
    const rest = await pollUntil(a, (d) => d.rows.length >= 2, 3);
    expect(rest.rows.map((r) => r.temperature)).toEqual([4, 5]);
    const out = newSourceBatch();
    expect(await a.poll(out, 10)).toBe(true);
    expect(out.linesRead).toBe(0);
    await a.close();

    // restored from the position after 3 entries: exactly entries 4, 5 and what is appended later
    const restored = JSON.parse(JSON.stringify(pos)) as SourcePosition;
    const b = createSourceReader(spec, 0, 1, restored, { redisUrl: redis.url });
    await append(stream, 0, [reading('s1', 1_717_200_000_010, 6)]);
    const again = await pollUntil(b, (d) => d.rows.length >= 3);
    expect(again.rows.map((r) => r.temperature)).toEqual([4, 5, 6]);
    expect(b.position().nextLine).toBe(7);
    await b.close();
  });

  it('one subtask per partition: subtask p reads fluxo:stream:{name}:p only', async () => {
    const stream = fresh('parts');
    const spec = streamSpec({
      stream,
      partitions: 3,
      bounded: true,
      columns: JSON_COLUMNS,
      eventTime: { field: 'ts', unit: 'ms' },
    });
    for (let p = 0; p < 3; p++)
      await append(
        stream,
        p,
        [0, 1].map((i) => reading(`p${p}`, 1_717_200_000_000 + i, p * 10 + i)),
      );
    for (let p = 0; p < 3; p++) {
      const r = createSourceReader(spec, p, 3, undefined, { redisUrl: redis.url });
      const d = await pollUntil(r, () => false);
      expect(d.rows.map((x) => x.sensor)).toEqual([`p${p}`, `p${p}`]);
      expect(r.description).toBe(`redis-stream ${streamKey(stream, p)}`);
      await r.close();
    }
  });

  it('bounded: stops at the entries present at its first poll, and a restored reader keeps that bound', async () => {
    const stream = fresh('bounded');
    const spec = streamSpec({
      stream,
      bounded: true,
      columns: JSON_COLUMNS,
      eventTime: { field: 'ts', unit: 'ms' },
    });
    const ids = await append(
      stream,
      0,
      [1, 2, 3, 4].map((i) => reading('s', 1_717_200_000_000 + i, i)),
    );
    const a = createSourceReader(spec, 0, 1, undefined, { redisUrl: redis.url });
    const out = newSourceBatch();
    expect(await a.poll(out, 2)).toBe(true);
    expect(out.rows.map((r) => r.temperature)).toEqual([1, 2]);
    // appended after the job started: not part of a bounded read
    await append(stream, 0, [reading('s', 1_717_200_000_009, 99)]);
    const pos = a.position();
    expect(pos.endIds).toEqual({ '0': ids[3] });
    const rest = await pollUntil(a, () => false);
    expect(rest.rows.map((r) => r.temperature)).toEqual([3, 4]);
    expect(await a.poll(out, 2)).toBe(false);
    await a.close();

    const b = createSourceReader(spec, 0, 1, pos, { redisUrl: redis.url });
    const again = await pollUntil(b, () => false);
    expect(again.rows.map((r) => r.temperature)).toEqual([3, 4]);
    await b.close();

    // an empty (missing) stream ends at once
    const empty = createSourceReader({ ...spec, stream: fresh('none') } as SourceSpec, 0, 1, undefined, {
      redisUrl: redis.url,
    });
    expect(await empty.poll(out, 10)).toBe(false);
    expect(out.linesRead).toBe(0);
    await empty.close();
  });

  it('an unbounded reader told to stop following drains what is there, then ends', async () => {
    const stream = fresh('drain');
    const spec = streamSpec({ stream, columns: JSON_COLUMNS, eventTime: { field: 'ts', unit: 'ms' }, blockMs: 20 });
    await append(
      stream,
      0,
      [1, 2, 3, 4, 5].map((i) => reading('s', 1_717_200_000_000 + i, i)),
    );
    const r = createSourceReader(spec, 0, 1, undefined, { redisUrl: redis.url });
    const out = newSourceBatch();
    await r.poll(out, 2);
    r.stopFollowing?.();
    const rest = await pollUntil(r, () => false, 2);
    expect(rest.rows.map((x) => x.temperature)).toEqual([3, 4, 5]);
    await r.close();
  });

  it('bad entries go to dead letters with their reason and <stream key>:<entry id>', async () => {
    const stream = fresh('bad');
    const spec = streamSpec({
      stream,
      bounded: true,
      columns: JSON_COLUMNS,
      eventTime: { field: 'ts', unit: 'ms' },
      validate: [{ rule: 'temperature > -50.0', reason: 'below -50 °C' }],
    });
    const ids = await append(stream, 0, [
      reading('s', 1_717_200_000_000, 20),
      '{"sensor":"s","ts":1717200000001,"temperature":"warm"}',
      'not json',
      reading('s', 1_717_200_000_002, -80),
      JSON.stringify({ sensor: 's', ts: 5, temperature: 1 }),
    ]);
    const noData = (await client.xadd(streamKey(stream, 0), '*', 'other', 'x')) as string;
    const r = createSourceReader(spec, 0, 1, undefined, { redisUrl: redis.url });
    const d = await pollUntil(r, () => false, 100);
    await r.close();
    expect(d.rows).toHaveLength(1);
    expect(d.linesRead).toBe(6);
    const key = streamKey(stream, 0);
    expect(d.deadLetters.map((x) => [x.source, x.reason])).toEqual([
      [`${key}:${ids[1]}`, 'column temperature: expected a number, got "warm"'],
      [`${key}:${ids[2]}`, expect.stringMatching(/^invalid JSON/)],
      [`${key}:${ids[3]}`, 'below -50 °C'],
      [`${key}:${ids[4]}`, 'timestamp out of range'],
      [`${key}:${noData}`, 'entry has no "data" field'],
    ]);
    expect(d.deadLetters[1].raw).toBe('not json');
  });

  it('CSV records are typed exactly like the same lines of a file source (rows and rejections)', async () => {
    const lines = [
      'kitchen,2016-01-11 17:00:00,19.89',
      'office,2016-01-11 17:10:00,"19,5"',
      'hall,2016-01-11 17:20:00,',
      'bath,yesterday,20.1',
      'attic,2016-01-11 17:40:00,21.5,extra',
      'porch , 2016-01-11 17:50:00 , 7.25',
    ];
    const record = {
      columns: ['room', 'date', 'temperature:double'],
      eventTime: { field: 'date', format: 'yyyy-MM-dd HH:mm:ss' },
      validate: [{ rule: 'temperature < 21.0', reason: 'too warm' }],
    };
    const dir = tempFiles({ 'in.csv': `${lines.join('\n')}\n` });
    const file = await readSplit(sourceSpec({ type: 'file', path: 'in.csv', ...record }, dir), 0, 1, 100);
    const stream = fresh('csv');
    const ids = await append(stream, 0, lines);
    const r = createSourceReader(streamSpec({ stream, format: 'csv', bounded: true, ...record }), 0, 1, undefined, {
      redisUrl: redis.url,
    });
    const d = await pollUntil(r, () => false, 100);
    await r.close();
    expect(d.rows).toEqual(file.rows);
    expect(d.rows.length).toBe(2);
    expect(d.deadLetters.map((x) => x.reason)).toEqual(file.deadLetters.map((x) => x.reason));
    expect(d.deadLetters.map((x) => x.raw)).toEqual(file.deadLetters.map((x) => x.raw));
    const key = streamKey(stream, 0);
    const lineOf = (src: string) => Number(src.slice(src.lastIndexOf(':') + 1));
    expect(d.deadLetters.map((x) => x.source)).toEqual(
      file.deadLetters.map((x) => `${key}:${ids[lineOf(x.source) - 1]}`),
    );
  });

  it('refuses a stream recorded with another partition count (SOURCE_IO), and reports an unreachable Redis', async () => {
    const stream = fresh('count');
    const w = new StreamWriter(client, stream, 4);
    await w.open();
    expect(await client.hget(streamMetaKey(stream), 'partitions')).toBe('4');
    const spec = streamSpec({ stream, partitions: 2, columns: JSON_COLUMNS, eventTime: { field: 'ts', unit: 'ms' } });
    const r = createSourceReader(spec, 0, 2, undefined, { redisUrl: redis.url });
    await expect(r.poll(newSourceBatch(), 10)).rejects.toMatchObject({
      code: 'SOURCE_IO',
      message: expect.stringContaining(`stream ${stream} has 4 partitions, the source reads 2`),
    });
    await r.close();

    const down = createSourceReader({ ...spec, url: 'redis://127.0.0.1:1' } as SourceSpec, 0, 2);
    await expect(down.poll(newSourceBatch(), 10)).rejects.toMatchObject({
      code: 'SOURCE_IO',
      retryable: true,
      message: expect.stringContaining('redis://127.0.0.1:1'),
    });
    await down.close();
  });
});
