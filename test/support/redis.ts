/**
 * Redis for integration tests: one private `redis-server` per test file (or per test), on a free
 * loopback port, never persisted, plus a fresh key prefix per test.
 *
 * ```ts
 * let redis: TestRedis;
 * beforeAll(async () => { redis = await startRedis(); });
 * afterAll(() => redis?.stop());
 * ```
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { redisServerOnPath, startPrivateRedis } from '../../core/config/local-redis.js';

export interface TestRedis {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** kills the server and removes its temp dir; idempotent */
  stop(): Promise<void>;
}

/**
 * Starts a private redis-server (bind 127.0.0.1, free port, `--save "" --appendonly no`, temp dir)
 * and resolves once it answers PING.
 *
 * A Docker/testcontainers fallback is not implemented: without `redis-server` on PATH this throws,
 * saying how to install it.
 */
export async function startRedis(): Promise<TestRedis> {
  if (!(await redisServerOnPath())) {
    throw new Error(
      'integration tests need redis-server on PATH (Debian/Ubuntu: apt-get install -y redis-server; ' +
        'macOS: brew install redis). .ci/run installs it on CI.',
    );
  }
  const server = await startPrivateRedis();
  return { url: server.url, port: server.port, stop: () => server.stop() };
}

/**
 * A key prefix no other test (or test process) uses: `fluxo:test:<label>:<pid>-<random>:`.
 * Only `[a-z0-9:-]`, so it is safe inside a SCAN MATCH pattern.
 */
export function uniquePrefix(label = 't'): string {
  const clean = label.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
  return `fluxo:test:${clean}:${process.pid}-${randomBytes(4).toString('hex')}:`;
}

/** Deletes every key starting with `prefix` (SCAN + UNLINK). Returns how many were deleted. */
export async function deleteKeysWithPrefix(url: string, prefix: string): Promise<number> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) deleted += await client.unlink(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    client.disconnect();
  }
}
