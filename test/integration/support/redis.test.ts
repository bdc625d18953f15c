import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { pingRedis } from '../../../core/config/local-redis.js';
import { deleteKeysWithPrefix, startRedis, uniquePrefix } from '../../support/redis.js';

/** Resolves true if something accepts a TCP connection on 127.0.0.1:port. */
function tcpAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('startRedis', () => {
  it('starts a private server that stores values and is gone after stop()', async () => {
    const redis = await startRedis();
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(redis.port).not.toBe(6379);

    const client = new Redis(redis.url);
    const prefix = uniquePrefix('support');
    try {
      await client.set(`${prefix}greeting`, 'hello');
      await client.set(`${prefix}other`, '1');
      expect(await client.get(`${prefix}greeting`)).toBe('hello');
      expect(await client.config('GET', 'save')).toEqual(['save', '']);
      expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
      expect(await deleteKeysWithPrefix(redis.url, prefix)).toBe(2);
      expect(await client.exists(`${prefix}greeting`)).toBe(0);
    } finally {
      client.disconnect();
      await redis.stop();
    }

    expect(await pingRedis(redis.url, 500)).toBe(false);
    expect(await tcpAnswers(redis.port)).toBe(false);
    await redis.stop(); // idempotent
  });

  it('gives every server its own port', async () => {
    const [a, b] = await Promise.all([startRedis(), startRedis()]);
    try {
      expect(a.port).not.toBe(b.port);
      expect(await pingRedis(a.url)).toBe(true);
      expect(await pingRedis(b.url)).toBe(true);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

describe('uniquePrefix', () => {
  it('differs between calls and is safe in a MATCH pattern', () => {
    const a = uniquePrefix('Job A');
    const b = uniquePrefix('Job A');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^fluxo:test:job-a:\d+-[0-9a-f]{8}:$/);
  });
});
