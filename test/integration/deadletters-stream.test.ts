/**
 * Side outputs in Redis on a real cluster (a JobManager and a TaskManager process, a private
 * redis-server): a job with allowed lateness writes its window results to a redis sink (upsert:
 * the last update wins), its dead letters and its late readings to Redis streams
 * (`fluxo:stream:{name}:0`, core/sinks/redis-stream-sink.ts), and `fluxo deadletters <job>` prints
 * the dead letters (deduplicated by row id; `--count`, `--follow`), also for a job whose dead
 * letters are a file.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, killAll, startCluster, type TestCluster, waitFor } from '../support/processes.js';
import { startRedis, type TestRedis, uniquePrefix } from '../support/redis.js';

const T0 = 1717200000000;
const S = 1000;
// sensor, ts (s after T0), t; two bad lines become dead letters
const INPUT = [
  `s1,${T0 + 1 * S},20`,
  `s1,${T0 + 4 * S},22`,
  's1,not-a-time,22',
  `s1,${T0 + 12 * S},21`, // [0,10) fires: count 2, update 0
  `s1,${T0 + 3 * S},25`, // within the lateness: update 1
  `s1,${T0 + 6 * S},18`, // update 2
  `s1,${T0 + 21 * S},30`, // [0,10) purged
  `s1,${T0 + 7 * S},40`, // beyond the lateness: late
  `s2,${T0 + 22 * S}`, // too few fields
].join('\n');

function spec(o: { keyPrefix: string; deadLetter?: object; lateData?: object }): string {
  return JSON.stringify({
    name: 'side-outputs',
    source: {
      type: 'file',
      path: 'input.csv',
      columns: ['sensor:string', 'ts:int', 't:double'],
      eventTime: { field: 'ts', unit: 'ms' },
      watermark: { outOfOrdernessMs: 0 },
    },
    steps: [
      { keyBy: 'sensor' },
      { window: { type: 'tumbling', sizeMs: 10 * S, allowedLatenessMs: 5 * S } },
      { aggregate: { count: 'count()', max: 'max(t)' } },
    ],
    sink: { type: 'redis', keyPrefix: o.keyPrefix },
    ...(o.deadLetter ? { deadLetter: o.deadLetter } : {}),
    ...(o.lateData ? { lateData: o.lateData } : {}),
  });
}

let redis: TestRedis;
let client: Redis;
let cluster: TestCluster;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fluxo-deadletters-'));
  writeFileSync(path.join(dir, 'input.csv'), INPUT);
  redis = await startRedis();
  client = new Redis(redis.url);
  cluster = await startCluster({
    redisUrl: redis.url,
    clusterId: uniquePrefix('dl').replace(/:/g, '_').replace(/_$/, ''),
    taskmanagers: [{ id: 'tm-1', slots: 2 }],
  });
});

afterAll(async () => {
  await killAll();
  client?.disconnect();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function submit(specText: string, name: string): Promise<string> {
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, specText);
  const sub = await cluster.cli(['submit', file], 60_000);
  expect(sub.code, sub.stderr).toBe(0);
  const jobId = sub.stdout.trim();
  await cluster.waitForState(jobId, 'FINISHED', 90_000);
  return jobId;
}

const entries = async (key: string) =>
  ((await client.xrange(key, '-', '+')) as [string, string[]][]).map(
    ([, f]) => JSON.parse(f[f.indexOf('data') + 1] as string) as Record<string, unknown>,
  );

describe('dead letters and late readings in Redis streams, `fluxo deadletters`', () => {
  let jobId: string;
  const prefix = uniquePrefix('dl-results').slice(0, -1);

  it('runs the job: the redis sink holds the last update, the streams hold the dead letters and the late reading', async () => {
    jobId = await submit(
      spec({
        keyPrefix: prefix,
        deadLetter: { type: 'redis-stream', stream: 'dl-side' },
        lateData: { type: 'redis-stream', stream: 'late-side' },
      }),
      'streams',
    );
    // upsert: the hash of (s1, [0,10)) ends with update 2
    expect(await client.hgetall(`${prefix}:s1:${T0}`)).toMatchObject({ count: '4', max: '25', update: '2' });
    expect(await client.hgetall(`${prefix}:s1:${T0 + 20 * S}`)).toMatchObject({ count: '1', update: '0' });

    const dead = await entries('fluxo:stream:dl-side:0');
    expect(dead).toHaveLength(2);
    expect(dead.map((d) => d.source)).toEqual(['input.csv:3', 'input.csv:9']);
    for (const d of dead) {
      expect(typeof d.reason).toBe('string');
      expect(d.rowId).toMatch(/^[0-9a-f]{16}$/);
    }
    expect(dead[0]?.raw).toBe('s1,not-a-time,22');
    expect(await client.hget('fluxo:stream:dl-side:meta', 'partitions')).toBe('1');

    const late = await entries('fluxo:stream:late-side:0');
    expect(late.map((l) => [l.sensor, l.ts, l.t])).toEqual([['s1', T0 + 7 * S, 40]]);
    expect(late[0]?.rowId).toMatch(/^[0-9a-f]{16}$/);

    const status = await cluster.job(jobId);
    expect(status.outputs.deadLetters).toBe('redis stream fluxo:stream:dl-side:0');
    expect(status.totals).toMatchObject({ rejected: 2, late: 1, deadLettersWritten: 2, lateWritten: 1 });
  });

  it('`fluxo deadletters` prints them oldest first, once each even when a replay appended one again, and --count keeps the last', async () => {
    // a recovery replay appends the same row again, with the same rowId
    const [[, fields]] = (await client.xrange('fluxo:stream:dl-side:0', '-', '+', 'COUNT', 1)) as [string, string[]][];
    await client.xadd('fluxo:stream:dl-side:0', '*', ...(fields as string[]));

    const all = await cluster.cli(['deadletters', jobId]);
    expect(all.code, all.stderr).toBe(0);
    const lines = all.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.map((l) => (JSON.parse(l) as { source: string }).source)).toEqual(['input.csv:3', 'input.csv:9']);

    const last = await cluster.cli(['deadletters', jobId.slice(0, 8), '--count', '1']);
    expect(last.code, last.stderr).toBe(0);
    expect(
      last.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { source: string }).source),
    ).toEqual(['input.csv:9']);
  });

  it('`fluxo deadletters --follow` prints new dead letters as they arrive, until SIGINT', async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'deadletters', jobId, '--follow', '--count', '1', '--jobmanager', cluster.address],
      { env: { ...process.env, ...cluster.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      await waitFor(async () => out.includes('input.csv:9'), {
        timeoutMs: 30_000,
        message: () => `no first line: ${out} ${err}`,
      });
      const fresh = JSON.stringify({ reason: 'test', source: 'x:1', raw: 'x', rowId: '00000000000000ff' });
      await client.xadd('fluxo:stream:dl-side:0', '*', 'data', fresh);
      await waitFor(async () => out.includes('"source":"x:1"'), {
        timeoutMs: 30_000,
        message: () => `the appended dead letter was not printed: ${out} ${err}`,
      });
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(out.trim().split('\n')).toHaveLength(2);
  });

  it('`fluxo deadletters` reads a file dead-letter output on this machine', async () => {
    const dl = path.join(dir, 'out', 'file-dl.jsonl');
    const fileJob = await submit(spec({ keyPrefix: `${prefix}-f`, deadLetter: { type: 'file', path: dl } }), 'file');
    const r = await cluster.cli(['deadletters', fileJob]);
    expect(r.code, r.stderr).toBe(0);
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { source: string }).source),
    ).toEqual(['input.csv:3', 'input.csv:9']);
  });

  it('refuses a dead-letter stream name with a colon, naming the field', async () => {
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, spec({ keyPrefix: prefix, deadLetter: { type: 'redis-stream', stream: 'a:b' } }));
    const r = await cluster.cli(['submit', file]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('deadLetter.stream');
  });
});
