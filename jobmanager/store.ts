import { Redis } from 'ioredis';
import { redactUrl } from '../core/config/local-redis.js';
import { EngineError } from '../core/errors/index.js';
import type { JobState } from '../core/rpc/index.js';

/** What the JobManager keeps of a job in Redis, so a restarted JobManager can find it again. */
export interface JobRecord {
  jobId: string;
  name: string;
  state: JobState;
  attempt: number;
  createdAtMs: number;
  endedAtMs: number;
  failure: string;
  parallelism: number;
  /** the normalised spec as JSON */
  specJson: string;
}

/**
 * Job records in Redis: a hash per job at `fluxo:{cluster}:job:{id}` and a sorted set
 * `fluxo:{cluster}:jobs` (score = creation time). Each write is one MULTI, so a record is never
 * half written.
 */
export class JobStore {
  private readonly redis: Redis;

  constructor(
    url: string,
    private readonly clusterId: string,
  ) {
    this.redis = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 2,
      enableOfflineQueue: false,
      retryStrategy: (n) => Math.min(n * 200, 2000),
    });
    this.redis.on('error', () => {});
  }

  private key(jobId: string): string {
    return `fluxo:${this.clusterId}:job:${jobId}`;
  }

  /** Connects and PINGs. @throws EngineError REDIS_UNAVAILABLE naming the URL. */
  async connect(url: string): Promise<void> {
    try {
      await this.redis.connect();
      await this.redis.ping();
    } catch (err) {
      this.redis.disconnect();
      throw new EngineError(
        'REDIS_UNAVAILABLE',
        `cannot reach Redis at ${redactUrl(url)}: ${(err as Error).message.replace(/\.+$/, '')}. Start redis-server or set --redis / REDIS_URL`,
        {
          cause: err,
        },
      );
    }
  }

  async save(job: JobRecord): Promise<void> {
    const fields: Record<string, string> = {
      jobId: job.jobId,
      name: job.name,
      state: job.state,
      attempt: String(job.attempt),
      createdAtMs: String(job.createdAtMs),
      endedAtMs: String(job.endedAtMs),
      failure: job.failure,
      parallelism: String(job.parallelism),
      spec: job.specJson,
    };
    await this.redis
      .multi()
      .hset(this.key(job.jobId), fields)
      .zadd(`fluxo:${this.clusterId}:jobs`, job.createdAtMs, job.jobId)
      .exec();
  }

  async load(jobId: string): Promise<JobRecord | undefined> {
    const h = await this.redis.hgetall(this.key(jobId));
    if (!h.jobId) return undefined;
    return {
      jobId: h.jobId,
      name: h.name,
      state: h.state as JobState,
      attempt: Number(h.attempt),
      createdAtMs: Number(h.createdAtMs),
      endedAtMs: Number(h.endedAtMs),
      failure: h.failure ?? '',
      parallelism: Number(h.parallelism),
      specJson: h.spec,
    };
  }

  async listIds(): Promise<string[]> {
    return this.redis.zrange(`fluxo:${this.clusterId}:jobs`, 0, -1);
  }

  /** Deletes every key under `fluxo:{cluster}:` (SCAN + UNLINK in batches). */
  async deleteNamespace(): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `fluxo:${this.clusterId}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await this.redis.unlink(...keys);
    } while (cursor !== '0');
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
