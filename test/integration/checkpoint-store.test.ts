import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkpointId, epoch, jobId, taskKey } from '../../core/checkpoint/ids.js';
import { RedisCheckpointStore } from '../../core/checkpoint/redis-store.js';
import { deleteKeysWithPrefix, startRedis, type TestRedis, uniquePrefix } from '../support/redis.js';
import { checkpointStoreContract } from '../unit/checkpoint/store-contract.js';

let redis: TestRedis;
let client: Redis;
const prefixes: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
});

afterEach(async () => {
  for (const p of prefixes.splice(0)) await deleteKeysWithPrefix(redis.url, p);
});

afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

function makeStore(): RedisCheckpointStore {
  const keyPrefix = uniquePrefix('ckpt');
  prefixes.push(keyPrefix);
  return new RedisCheckpointStore({ redis: client, keyPrefix });
}

checkpointStoreContract('RedisCheckpointStore', makeStore);

describe('RedisCheckpointStore keys', () => {
  it('leaves no key behind once every checkpoint is deleted', async () => {
    const keyPrefix = uniquePrefix('ckpt-keys');
    prefixes.push(keyPrefix);
    const store = new RedisCheckpointStore({ redis: client, keyPrefix });
    const ref = {
      jobId: jobId('j'),
      checkpointId: checkpointId(1),
      epoch: epoch(0),
      taskKey: taskKey('t-0'),
      part: 'x',
    };
    await store.putTaskState(ref, new Uint8Array([1, 2]));
    expect(await client.exists(`${keyPrefix}ckpt:j:1:state:0:t-0:x`)).toBe(1);
    await store.delete(ref.jobId, ref.checkpointId);
    expect(await client.keys(`${keyPrefix}*`)).toEqual([]);
  });
});
