/**
 * `fluxo produce` and `fluxo replay` (the built CLI) against a private redis-server: counts,
 * partitioning by key, stdin input, the partition-count guard, event-time order and pacing.
 * Pacing is checked loosely: only that a replay spreads its appends over at least half the
 * event-time span divided by the speedup (a slow machine only makes it longer), never an upper bound.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf, RECORD_FIELD, streamKey } from '../../core/streams/layout.js';
import { CLI, REPO_ROOT, requireBuiltCli, runCli } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
let client: Redis;
let dir: string;

beforeAll(async () => {
  requireBuiltCli();
  redis = await startRedis();
  client = new Redis(redis.url);
  dir = mkdtempSync(join(tmpdir(), 'fluxo-stream-cli-'));
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Entries of a partition: [entry id, record]. */
async function entries(stream: string, p: number): Promise<[string, string][]> {
  const list = (await client.xrange(streamKey(stream, p), '-', '+')) as [string, string[]][];
  return list.map(([id, kv]) => [id, kv[kv.indexOf(RECORD_FIELD) + 1] as string]);
}

/** Runs `fluxo <args>` with `input` on stdin. */
function runWithStdin(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.end(input);
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('fluxo produce', () => {
  it('appends JSON lines from stdin, one sensor per partition (murmur3 of the key mod partitions), in order', async () => {
    const sensors = ['s-1', 's-2', 's-3', 's-4', 's-5', 's-6', 's-7'];
    const records = Array.from({ length: 700 }, (_, i) =>
      JSON.stringify({ sensor: sensors[i % 7], seq: i, temperature: 20 + (i % 5) }),
    );
    const r = await runWithStdin(
      ['produce', 'cli-json', '--partitions', '3', '--key', 'sensor', '--batch', '64', '--redis', redis.url],
      `${records.join('\n')}\n\n`,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('700');
    let total = 0;
    for (let p = 0; p < 3; p++) {
      const got = (await entries('cli-json', p)).map(([, rec]) => JSON.parse(rec) as { sensor: string; seq: number });
      total += got.length;
      for (const g of got) expect(partitionOf(g.sensor, 3)).toBe(p);
      const seqs = got.map((g) => g.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
    expect(total).toBe(700);
    expect(await client.hget('fluxo:stream:cli-json:meta', 'partitions')).toBe('3');
  });

  it('reads a CSV file with a header (not appended), keys by a column, and refuses another partition count', async () => {
    const file = join(dir, 'in.csv');
    writeFileSync(
      file,
      'sensor_id,timestamp_ms,temperature_c\nA,1717200000000,20.5\nB,1717200001000,21\nA,1717200002000,"22,5"\n',
    );
    const r = await runCli([
      'produce',
      'cli-csv',
      file,
      '--partitions',
      '2',
      '--key',
      'sensor_id',
      '--redis',
      redis.url,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('3');
    const lines = ['A,1717200000000,20.5', 'B,1717200001000,21', 'A,1717200002000,"22,5"'];
    for (let p = 0; p < 2; p++) {
      const want = lines.filter((l) => partitionOf(l.slice(0, 1), 2) === p);
      expect((await entries('cli-csv', p)).map(([, rec]) => rec)).toEqual(want);
    }
    const again = await runCli(['produce', 'cli-csv', file, '--partitions', '3', '--redis', redis.url]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('stream cli-csv has 2 partitions');
    const badKey = await runCli(['produce', 'cli-csv2', file, '--key', 'room', '--redis', redis.url]);
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toContain('key field "room" is not a column');
  });
});

describe('fluxo replay', () => {
  it('appends in event-time order, spaced by the speedup, with plain progress lines when stderr is not a TTY', async () => {
    // 40 readings over 80 s of event time, shuffled in the file; speedup 80 → about 1 s
    const t0 = 1_717_200_000_000;
    const readings = Array.from({ length: 40 }, (_, i) => ({ sensor: `s${i % 4}`, ts: t0 + i * 2000, v: i }));
    const shuffled = [...readings].sort((a, b) => ((a.v * 17) % 40) - ((b.v * 17) % 40));
    const file = join(dir, 'replay.jsonl');
    writeFileSync(file, `${shuffled.map((r) => JSON.stringify(r)).join('\n')}\nnot json\n`);
    const r = await runCli([
      'replay',
      file,
      '--stream',
      'cli-replay',
      '--speedup',
      '80',
      '--partitions',
      '2',
      '--key',
      'sensor',
      '--time-field',
      'ts',
      '--time-unit',
      'ms',
      '--redis',
      redis.url,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('40');
    expect(r.stderr).toContain('skipped 1 lines without a valid event time (line 41: no field ts)');
    expect(r.stderr).toMatch(/replay: 40\/40 100% \d+\/s event time 2024-06-01 00:01:18Z/);
    const all: { ts: number; ms: number }[] = [];
    for (let p = 0; p < 2; p++) {
      const got = await entries('cli-replay', p);
      const ts = got.map(([, rec]) => (JSON.parse(rec) as { ts: number }).ts);
      expect(ts).toEqual([...ts].sort((a, b) => a - b));
      got.forEach(([id], i) => {
        all.push({ ts: ts[i] as number, ms: Number(id.split('-')[0]) });
      });
    }
    expect(all).toHaveLength(40);
    // across partitions: a later event time is never appended earlier
    all.sort((a, b) => a.ts - b.ts);
    for (let i = 1; i < all.length; i++) expect(all[i].ms).toBeGreaterThanOrEqual(all[i - 1].ms);
    // paced: 78 s of event time at 80× is 975 ms; at least half of it separates first and last
    const spread = (all[39]?.ms ?? 0) - (all[0]?.ms ?? 0);
    console.log(`replay: 78 s of event time at 80x appended over ${spread} ms`);
    expect(spread).toBeGreaterThanOrEqual(480);
  });

  it('names a missing event-time mode or a bad speedup', async () => {
    const file = join(dir, 'replay.jsonl');
    const a = await runCli([
      'replay',
      file,
      '--stream',
      'x',
      '--speedup',
      '10',
      '--time-field',
      'ts',
      '--redis',
      redis.url,
    ]);
    expect(a.code).toBe(1);
    expect(a.stderr).toContain('set exactly one of --time-unit, --time-format, --time-iso');
    const b = await runCli([
      'replay',
      file,
      '--stream',
      'x',
      '--speedup',
      '0',
      '--time-field',
      'ts',
      '--time-unit',
      'ms',
    ]);
    expect(b.code).toBe(1);
    expect(b.stderr).toContain('--speedup must be a positive number');
  });
});
