/**
 * The redis sink's two-phase commit (core/sinks/redis-write-ahead.ts) against a private
 * redis-server: nothing visible before the commit, lost completion notices, restores, zombies,
 * end of input, Redis failures. Expected hashes are written out literally from the rows fed in,
 * not derived from the sink's code.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEngineError } from '../../../core/errors/index.js';
import { buildJobGraph } from '../../../core/graph/build.js';
import { buildDeployment } from '../../../core/graph/deploy.js';
import type { FieldDesc } from '../../../core/graph/types.js';
import { buildChain, transactionalEpoch } from '../../../core/runtime/chain.js';
import { OutputGate } from '../../../core/runtime/output.js';
import { RedisHashSink, type RedisSinkTransaction } from '../../../core/runtime/sinks.js';
import { newCounters } from '../../../core/runtime/transport.js';
import {
  decodeRedisSinkState,
  encodeRedisSinkState,
  redisSinkFenceKey,
} from '../../../core/sinks/redis-write-ahead.js';
import { parseJobSpec } from '../../../core/spec/schema.js';
import type { Row } from '../../../core/spec/types.js';
import { startRedis, type TestRedis, uniquePrefix } from '../../support/redis.js';

const FIELDS: FieldDesc[] = [
  { name: 'key', type: 'string' },
  { name: 'windowStart', type: 'int' },
  { name: 'windowEnd', type: 'int' },
  { name: 'count', type: 'int' },
  { name: 'avg', type: 'double' },
] as FieldDesc[];

// BR-15's window results: two sensors, 10 s windows
const B0: Row = { key: 'bath-2', windowStart: 1717200000000, windowEnd: 1717200010000, count: 2, avg: 22.2 };
const H0: Row = { key: 'hall-4', windowStart: 1717200000000, windowEnd: 1717200010000, count: 2, avg: 20.1 };
const B10: Row = { key: 'bath-2', windowStart: 1717200010000, windowEnd: 1717200020000, count: 2, avg: 23.3 };
const H10: Row = { key: 'hall-4', windowStart: 1717200010000, windowEnd: 1717200020000, count: 2, avg: 20.5 };
const B20: Row = { key: 'bath-2', windowStart: 1717200020000, windowEnd: 1717200030000, count: 2, avg: 24.2 };
// the same hashes, as Redis must hold them
const HB0 = { key: 'bath-2', windowStart: '1717200000000', windowEnd: '1717200010000', count: '2', avg: '22.2' };
const HH0 = { key: 'hall-4', windowStart: '1717200000000', windowEnd: '1717200010000', count: '2', avg: '20.1' };
const HB10 = { key: 'bath-2', windowStart: '1717200010000', windowEnd: '1717200020000', count: '2', avg: '23.3' };
const HH10 = { key: 'hall-4', windowStart: '1717200010000', windowEnd: '1717200020000', count: '2', avg: '20.5' };
const HB20 = { key: 'bath-2', windowStart: '1717200020000', windowEnd: '1717200030000', count: '2', avg: '24.2' };

let redis: TestRedis;
let client: Redis;
const sinks: RedisHashSink[] = [];

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});

afterAll(async () => {
  for (const s of sinks) s.close();
  client?.disconnect();
  await redis?.stop();
});

/** A redis sink on the test Redis: transactional (job-a, epoch 0, claim) with `tx` overriding; `null` = direct writes. */
function sink(
  prefix: string,
  tx: Partial<RedisSinkTransaction> | null = {},
  url = redis.url,
  timeoutMs?: number,
): RedisHashSink {
  const s = new RedisHashSink(
    { type: 'redis', keyPrefix: prefix },
    url,
    FIELDS,
    newCounters(),
    'main',
    tx === null ? undefined : { jobId: 'job-a', epoch: 0, claim: true, ...tx },
    { commandTimeoutMs: timeoutMs },
  );
  sinks.push(s);
  return s;
}

function feed(s: RedisHashSink, ...rows: Row[]): void {
  for (const r of rows) s.processElement(r);
}

/** Every data hash under `prefix` (the fence excluded), by key. */
async function hashes(prefix: string): Promise<Record<string, Record<string, string>>> {
  const keys = (await client.keys(`${prefix}:*`)).filter((k) => k !== `${prefix}:fluxo-fence`).sort();
  const out: Record<string, Record<string, string>> = {};
  for (const k of keys) out[k] = await client.hgetall(k);
  return out;
}

async function errorOf(fn: () => unknown): Promise<{ code: string; message: string }> {
  try {
    await fn();
  } catch (e) {
    if (isEngineError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected an EngineError');
}

/** The sink's state part of checkpoint `id` (phase 1). */
function preCommit(s: RedisHashSink, id: number): Uint8Array {
  const parts = s.preCommit(id);
  expect(parts.map(([p]) => p)).toEqual(['sink-main.redis']);
  return parts[0][1];
}

describe('the exactly-once redis sink', () => {
  it('shows nothing before the commit, and every pre-committed row once the checkpoint completes', async () => {
    const p = uniquePrefix('commit');
    const s = sink(p);
    s.begin();
    feed(s, B0, H0);
    await s.settled();
    expect(await hashes(p)).toEqual({});
    const state = preCommit(s, 1);
    feed(s, B10); // after barrier 1: belongs to checkpoint 2
    await s.settled();
    expect(await hashes(p)).toEqual({});
    // the state part holds the rows of checkpoint 1 (the write-ahead log)
    expect(decodeRedisSinkState(state).txns.map((t) => [t.id, t.keys])).toEqual([
      [1, [`${p}:bath-2:1717200000000`, `${p}:hall-4:1717200000000`]],
    ]);
    s.commit(1);
    await s.settled();
    expect(await hashes(p)).toEqual({ [`${p}:bath-2:1717200000000`]: HB0, [`${p}:hall-4:1717200000000`]: HH0 });
    expect(await client.hgetall(redisSinkFenceKey(p))).toEqual({ job: 'job-a', epoch: '0' });
    // committed transactions leave the state
    expect(decodeRedisSinkState(preCommit(s, 2)).txns.map((t) => t.id)).toEqual([2]);
    s.commit(1); // a repeated notice does nothing
    s.commit(2);
    await s.settled();
    expect(Object.keys(await hashes(p))).toHaveLength(3);
    expect(await client.hgetall(`${p}:bath-2:1717200010000`)).toEqual(HB10);
  });

  it('commits a checkpoint whose notice was lost with the next notice', async () => {
    const p = uniquePrefix('lost');
    const s = sink(p);
    s.begin();
    feed(s, B0);
    preCommit(s, 1);
    feed(s, H0);
    const state2 = decodeRedisSinkState(preCommit(s, 2));
    expect(state2.txns.map((t) => t.id)).toEqual([1, 2]); // 1 is still pending: it stays in the log
    feed(s, B10);
    preCommit(s, 3);
    s.commit(2); // the notice of 1 never came
    await s.settled();
    expect(await hashes(p)).toEqual({ [`${p}:bath-2:1717200000000`]: HB0, [`${p}:hall-4:1717200000000`]: HH0 });
    s.commit(3);
    await s.settled();
    expect(await client.hgetall(`${p}:bath-2:1717200010000`)).toEqual(HB10);
  });

  it('a restore writes the pending transactions of the restored checkpoint exactly once', async () => {
    const p = uniquePrefix('restore');
    const a = sink(p);
    a.begin();
    feed(a, B0);
    preCommit(a, 1);
    a.commit(1);
    feed(a, H0, B10);
    const state2 = preCommit(a, 2);
    feed(a, H10); // after barrier 2, never pre-committed: must not appear
    await a.settled();
    // the TaskManager dies before the notice of 2 reaches the sink
    a.close();
    expect(await hashes(p)).toEqual({ [`${p}:bath-2:1717200000000`]: HB0 });

    const b = sink(p, { epoch: 1, claim: false });
    b.begin(state2);
    await b.settled();
    expect(await hashes(p)).toEqual({
      [`${p}:bath-2:1717200000000`]: HB0,
      [`${p}:hall-4:1717200000000`]: HH0,
      [`${p}:bath-2:1717200010000`]: HB10,
    });
    expect(await client.hgetall(redisSinkFenceKey(p))).toEqual({ job: 'job-a', epoch: '1' });
    // written once: a mark set by hand after the restore survives the next commits
    await client.hset(`${p}:hall-4:1717200000000`, 'count', 'marked');
    expect(decodeRedisSinkState(preCommit(b, 3)).txns).toEqual([]);
    b.commit(2);
    b.commit(3);
    feed(b, H10, B20); // the replay after checkpoint 2
    preCommit(b, 4);
    b.commit(4);
    await b.settled();
    expect(await client.hget(`${p}:hall-4:1717200000000`, 'count')).toBe('marked');
    expect(await client.hgetall(`${p}:hall-4:1717200010000`)).toEqual(HH10);
    expect(await client.hgetall(`${p}:bath-2:1717200020000`)).toEqual(HB20);
  });

  it('refuses a zombie of an older attempt once a newer attempt has begun, and its output stays invisible', async () => {
    const p = uniquePrefix('zombie');
    const old = sink(p, { epoch: 0 });
    old.begin();
    feed(old, B0);
    const state1 = preCommit(old, 1);
    // the old task is cut off; the new attempt restores checkpoint 1
    const fresh = sink(p, { epoch: 1, claim: false });
    fresh.begin(state1);
    await fresh.settled();
    // the zombie goes on: its notice of 1 and its next checkpoint must not write anything
    feed(old, H0);
    preCommit(old, 2);
    old.commit(2);
    await old.settled();
    expect(await hashes(p)).toEqual({ [`${p}:bath-2:1717200000000`]: HB0 });
    const e = await errorOf(() => old.pending());
    expect(e.code).toBe('SINK_IO');
    expect(e.message).toContain('fenced');
    expect(e.message).toContain(p);
    expect(await client.hgetall(redisSinkFenceKey(p))).toEqual({ job: 'job-a', epoch: '1' });

    // a late begin of the old attempt (a restart that lost the race) is refused as well
    const late = sink(p, { epoch: 0, claim: true });
    late.begin(state1);
    await late.settled();
    expect((await errorOf(() => late.pending())).message).toContain('fenced');
  });

  it('a new job takes the prefix over at its first begin; the previous job is fenced', async () => {
    const p = uniquePrefix('takeover');
    const j1 = sink(p, { jobId: 'job-1', epoch: 3, claim: false });
    j1.begin();
    await j1.settled();
    const j2 = sink(p, { jobId: 'job-2', epoch: 0, claim: true });
    j2.begin();
    feed(j2, B0);
    preCommit(j2, 1);
    j2.commit(1);
    await j2.settled();
    expect(await client.hgetall(redisSinkFenceKey(p))).toEqual({ job: 'job-2', epoch: '0' });
    feed(j1, H0);
    preCommit(j1, 7);
    j1.commit(7);
    await j1.settled();
    expect((await errorOf(() => j1.pending())).message).toContain('job job-2 (epoch 0) owns the prefix');
    // a later attempt of job 1 does not claim: it is refused too
    const j1b = sink(p, { jobId: 'job-1', epoch: 4, claim: false });
    j1b.begin();
    await j1b.settled();
    expect((await errorOf(() => j1b.pending())).code).toBe('SINK_IO');
    expect(await hashes(p)).toEqual({ [`${p}:bath-2:1717200000000`]: HB0 });
  });

  it('end of input writes the tail and the transactions whose notice never came', async () => {
    const p = uniquePrefix('eoi');
    const s = sink(p);
    s.begin();
    feed(s, B0);
    preCommit(s, 1); // notice lost
    feed(s, H0, { ...B10, avg: null }); // a null field is not written
    await s.endOfInput();
    expect(await hashes(p)).toEqual({
      [`${p}:bath-2:1717200000000`]: HB0,
      [`${p}:hall-4:1717200000000`]: HH0,
      [`${p}:bath-2:1717200010000`]: {
        key: 'bath-2',
        windowStart: '1717200010000',
        windowEnd: '1717200020000',
        count: '2',
      },
    });
  });

  it('fails with REDIS_UNAVAILABLE naming the key prefix when Redis is gone, without hanging', async () => {
    const own = await startRedis();
    const p = uniquePrefix('down');
    const s = sink(p, {}, own.url, 2000);
    s.begin();
    await s.settled();
    feed(s, B0);
    preCommit(s, 1);
    await own.stop();
    const started = Date.now();
    s.commit(1);
    await s.settled();
    const e = await errorOf(() => s.pending());
    expect(e.code).toBe('REDIS_UNAVAILABLE');
    expect(e.message).toContain(`redis sink ${p}`);
    expect(Date.now() - started).toBeLessThan(8000);
    // every later call reports it: the task fails at its next record, barrier or end of input
    expect((await errorOf(() => s.processElement(H0))).code).toBe('REDIS_UNAVAILABLE');
    expect((await errorOf(() => s.preCommit(2))).code).toBe('REDIS_UNAVAILABLE');
    expect((await errorOf(() => s.endOfInput())).code).toBe('REDIS_UNAVAILABLE');
  });

  it('fails with SINK_IO when a data key is not a hash', async () => {
    const p = uniquePrefix('wrongtype');
    await client.set(`${p}:bath-2:1717200000000`, 'not a hash');
    const s = sink(p);
    s.begin();
    feed(s, B0);
    preCommit(s, 1);
    s.commit(1);
    await s.settled();
    const e = await errorOf(() => s.pending());
    expect(e.code).toBe('SINK_IO');
    expect(e.message).toMatch(/WRONGTYPE/);
  });

  it('without a transaction writes directly, with no fence and no state', async () => {
    const p = uniquePrefix('direct');
    const s = sink(p, null);
    expect(s.transactional).toBe(false);
    s.begin();
    feed(s, B0);
    expect(s.preCommit(1)).toEqual([]);
    await s.endOfInput();
    expect(await hashes(p)).toEqual({ [`${p}:bath-2:1717200000000`]: HB0 });
    expect(await client.exists(redisSinkFenceKey(p))).toBe(0);
  });
});

describe('the redis sink state', () => {
  it('round-trips, with nulls and non-ASCII, and takes little more than its keys and values', () => {
    const txns = [
      { id: 3, fields: ['key', 'n'], keys: ['p:ß:1', 'p:b:1'], cells: ['ß', '1', 'b', null] },
      { id: 5, fields: ['key', 'n'], keys: ['p:c:2'], cells: ['c', '22'] },
    ];
    const bytes = encodeRedisSinkState({ epoch: 2, checkpointId: 5, txns });
    expect(decodeRedisSinkState(bytes)).toEqual({ epoch: 2, checkpointId: 5, txns });
    const payload = 'p:ß:1ßp:b:11bp:c:2c22';
    expect(bytes.byteLength).toBeLessThan(Buffer.byteLength(payload) + 40);
  });

  it('rejects truncated or inconsistent bytes with PROTOCOL', async () => {
    const bytes = encodeRedisSinkState({
      epoch: 0,
      checkpointId: 2,
      txns: [{ id: 2, fields: ['key'], keys: ['p:a:1'], cells: ['a'] }],
    });
    expect((await errorOf(() => decodeRedisSinkState(bytes.subarray(0, bytes.length - 1)))).code).toBe('PROTOCOL');
    const later = encodeRedisSinkState({
      epoch: 0,
      checkpointId: 1,
      txns: [{ id: 2, fields: [], keys: [], cells: [] }],
    });
    expect((await errorOf(() => decodeRedisSinkState(later))).code).toBe('PROTOCOL');
  });
});

describe('the chain', () => {
  function windowTask(checkpoint: Record<string, unknown> | undefined, attempt: number) {
    const spec = parseJobSpec({
      name: 'r',
      parallelism: 1,
      ...(checkpoint ? { checkpoint } : {}),
      source: {
        type: 'file',
        path: '/x.csv',
        columns: ['sensorId:string', 'timestamp:int', 'temperature:double'],
        eventTime: { field: 'timestamp', unit: 'ms' },
        watermark: { outOfOrdernessMs: 0 },
      },
      steps: [{ keyBy: 'sensorId' }, { window: { type: 'tumbling', sizeMs: 1000 } }, { aggregate: { n: 'count()' } }],
      sink: { type: 'redis', keyPrefix: 'r', url: redis.url },
    });
    const graph = buildJobGraph(spec);
    const desc = buildDeployment('job-c', attempt, spec, graph, [
      { taskmanagerId: 'tm', slot: 0, dataAddress: 'a' },
    ]).find((d) => d.vertexId === 'window');
    if (!desc) throw new Error('no window task');
    const transport = { isLocal: () => false, sendFrame: () => {}, sendCredit: () => {} };
    const gate = new OutputGate(desc, transport, { batchRecords: 1, channelCredits: 1 });
    const chain = buildChain({ desc, gate, counters: newCounters(), redisUrl: redis.url, deadLetter: () => {} });
    for (const l of chain.links) l.close?.();
    return { desc, chain };
  }

  it('begins the redis sink as a transactional sink under exactly-once checkpoints only', () => {
    const eo = windowTask({ intervalMs: 200 }, 2);
    expect(transactionalEpoch(eo.desc)).toBe(2);
    expect(eo.chain.sinks.map((s) => s.statePart)).toEqual(['sink-main.redis']);
    const alo = windowTask({ intervalMs: 200, mode: 'at-least-once' }, 2);
    expect(transactionalEpoch(alo.desc)).toBeUndefined();
    expect(alo.chain.sinks).toEqual([]);
    expect(windowTask(undefined, 0).chain.sinks).toEqual([]);
  });
});
