/**
 * Dashboard data of a job (docs/rest-api.md, "Dashboard"): the window results its redis sink
 * wrote (hashes `<keyPrefix>:<key>:<windowStart>`, core/sinks/redis-write-ahead.ts; a running
 * aggregate's `<keyPrefix>:<key>`) and the alerts its bullmq sink queued (core/sinks/bullmq-sink.ts).
 *
 * The hash names are listed with SCAN once per `cacheMs` (default 1000) per key prefix and the
 * latest hash of every key read with one pipelined HGETALL each; concurrent requests share one
 * refresh. Series read the hashes of one key on demand.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { EngineError } from '../core/errors/index.js';
import { bullConnection } from '../core/sinks/bullmq-sink.js';
import type { JobSpec } from '../core/spec/types.js';
import { HttpError } from './http-error.js';
import { sinkKeyFields } from './rest.js';

/** The latest window of one key, as GET /jobs/:id/dashboard/sensors lists it. */
export interface SensorRow {
  key: string;
  /** the key fields' values (`{ house, room }`); one key field: `{ <field>: key }` */
  fields: Record<string, string>;
  windowStart: number | null;
  windowEnd: number | null;
  avg: number | null;
  min: number | null;
  max: number | null;
  count: number | null;
  /** now − windowEnd (a running aggregate: now − updatedAt), ms; null when the hash has neither */
  freshnessMs: number | null;
}

/** Which hash field holds avg / min / max / count: an aggregate with that output name, else the first of that kind. */
export function aggregateFields(spec: JobSpec): Record<'avg' | 'min' | 'max' | 'count', string | null> {
  const aggs = spec.steps.flatMap((s) => (s.kind === 'aggregate' || s.kind === 'running' ? s.aggregates : []));
  // the sink gets the last keyed stage's results: prefer its aggregates
  const last = [...spec.steps].reverse().find((s) => s.kind === 'aggregate' || s.kind === 'running');
  const pool = last && (last.kind === 'aggregate' || last.kind === 'running') ? last.aggregates : aggs;
  const pick = (k: 'avg' | 'min' | 'max' | 'count'): string | null =>
    pool.find((a) => a.output === k)?.output ?? pool.find((a) => a.kind === k)?.output ?? null;
  return { avg: pick('avg'), min: pick('min'), max: pick('max'), count: pick('count') };
}

/**
 * Splits a hash name under `keyPrefix` into key and windowStart: `P:<key>:<digits>` → window
 * result; `P:<key>` → running aggregate (windowStart null); the fence → null.
 */
export function parseHashName(keyPrefix: string, name: string): { key: string; windowStart: number | null } | null {
  if (!name.startsWith(`${keyPrefix}:`)) return null;
  const rest = name.slice(keyPrefix.length + 1);
  if (rest === 'fluxo-fence') return null;
  const i = rest.lastIndexOf(':');
  if (i > 0 && /^-?\d+$/.test(rest.slice(i + 1)))
    return { key: rest.slice(0, i), windowStart: Number(rest.slice(i + 1)) };
  return { key: rest, windowStart: null };
}

const num = (v: string | undefined): number | null => {
  if (v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
};

/** A sensor row from one hash (HGETALL result). */
export function sensorRow(
  key: string,
  hash: Record<string, string>,
  keyFields: readonly string[],
  aggs: Record<'avg' | 'min' | 'max' | 'count', string | null>,
  nowMs: number,
): SensorRow {
  const fields: Record<string, string> = {};
  if (keyFields.length === 1) fields[keyFields[0]] = hash[keyFields[0]] ?? key;
  else {
    const parts = key.split('|');
    keyFields.forEach((f, i) => {
      fields[f] = hash[f] ?? parts[i] ?? '';
    });
  }
  const windowEnd = num(hash.windowEnd);
  const fresh = windowEnd ?? num(hash.updatedAt);
  const get = (k: 'avg' | 'min' | 'max' | 'count'): number | null => {
    const f = aggs[k];
    return f ? num(hash[f]) : null;
  };
  return {
    key,
    fields,
    windowStart: num(hash.windowStart),
    windowEnd,
    avg: get('avg'),
    min: get('min'),
    max: get('max'),
    count: get('count'),
    freshnessMs: fresh === null ? null : nowMs - fresh,
  };
}

export type SensorSort = 'key' | 'avg' | 'max' | 'min' | 'freshness';

/** Natural order of keys: house-2 before house-10. */
const KEY_ORDER = new Intl.Collator('en', { numeric: true });

/**
 * Filters (`search`: case-insensitive substring of the key), sorts (nulls last either way; keys
 * in natural order, house-2 before house-10) and pages `rows`. Pure.
 */
export function querySensors(
  rows: readonly SensorRow[],
  q: { search?: string; sort?: SensorSort; order?: 'asc' | 'desc'; offset?: number; limit?: number },
): { total: number; sensors: SensorRow[] } {
  const s = q.search?.toLowerCase();
  const hit = s ? rows.filter((r) => r.key.toLowerCase().includes(s)) : [...rows];
  const sort = q.sort ?? 'key';
  const dir = q.order === 'desc' ? -1 : 1;
  const val = (r: SensorRow): string | number | null =>
    sort === 'key' ? r.key : sort === 'freshness' ? r.freshnessMs : r[sort];
  hit.sort((a, b) => {
    const x = val(a);
    const y = val(b);
    if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
    const c = typeof x === 'string' ? KEY_ORDER.compare(x, y as string) : x - (y as number);
    return c !== 0 ? c * dir : KEY_ORDER.compare(a.key, b.key);
  });
  const offset = Math.max(0, q.offset ?? 0);
  const limit = Math.max(0, q.limit ?? 50);
  return { total: hit.length, sensors: hit.slice(offset, offset + limit) };
}

/** An alert as the dashboard lists it. */
export interface AlertRow {
  sensor: string;
  ts: number;
  value: number;
  rule: string;
  detail: string;
}

interface Snapshot {
  atMs: number;
  /** key → windowStarts of its hashes (ascending; null = a running aggregate's one hash) */
  windows: Map<string, (number | null)[]>;
  /** the latest window's hash per key */
  latest: Map<string, Record<string, string>>;
}

/** A glob pattern matching `text` literally (SCAN MATCH). */
function globEscape(text: string): string {
  return text.replace(/[\\*?[\]]/g, (c) => `\\${c}`);
}

export interface DashboardOptions {
  /** the cluster's Redis: for sinks without their own url */
  redisUrl: string;
  /** how long a scan of a key prefix is reused, ms. Default 1000 */
  cacheMs?: number;
}

/** Reads dashboard data from Redis and BullMQ for the REST API; one per JobManager. Call `close()` at shutdown. */
export class Dashboard {
  private readonly clients = new Map<string, Redis>();
  private readonly queues = new Map<string, Queue>();
  private readonly cache = new Map<string, Snapshot>();
  private readonly inflight = new Map<string, Promise<Snapshot>>();
  private readonly cacheMs: number;

  constructor(private readonly o: DashboardOptions) {
    this.cacheMs = o.cacheMs ?? 1000;
  }

  private client(url: string): Redis {
    let c = this.clients.get(url);
    if (!c) {
      c = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 2 });
      c.on('error', () => {});
      this.clients.set(url, c);
    }
    return c;
  }

  /** @throws EngineError NOT_FOUND when the job has no redis sink */
  private redisSink(spec: JobSpec): { url: string; keyPrefix: string } {
    if (spec.sink.type !== 'redis')
      throw new HttpError('NOT_FOUND', 404, `job ${spec.name} has no redis sink: no dashboard data`);
    return { url: spec.sink.url ?? this.o.redisUrl, keyPrefix: spec.sink.keyPrefix };
  }

  private async snapshot(url: string, keyPrefix: string, nowMs: number): Promise<Snapshot> {
    const id = `${url}\n${keyPrefix}`;
    const hit = this.cache.get(id);
    if (hit && nowMs - hit.atMs < this.cacheMs) return hit;
    let p = this.inflight.get(id);
    if (!p) {
      p = this.scan(url, keyPrefix).finally(() => this.inflight.delete(id));
      this.inflight.set(id, p);
    }
    const snap = await p;
    this.cache.set(id, snap);
    return snap;
  }

  private async scan(url: string, keyPrefix: string): Promise<Snapshot> {
    const redis = this.client(url);
    const windows = new Map<string, (number | null)[]>();
    const match = `${globEscape(keyPrefix)}:*`;
    let cursor = '0';
    try {
      do {
        const [next, names] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 2000);
        cursor = next;
        for (const n of names) {
          const p = parseHashName(keyPrefix, n);
          if (!p) continue;
          const list = windows.get(p.key);
          if (list) list.push(p.windowStart);
          else windows.set(p.key, [p.windowStart]);
        }
      } while (cursor !== '0');
      const keys = [...windows.keys()];
      const pipe = redis.pipeline();
      for (const k of keys) {
        const list = windows.get(k) as (number | null)[];
        list.sort((a, b) => (a ?? 0) - (b ?? 0));
        const ws = list[list.length - 1];
        pipe.hgetall(ws === null ? `${keyPrefix}:${k}` : `${keyPrefix}:${k}:${ws}`);
      }
      const res = keys.length > 0 ? ((await pipe.exec()) ?? []) : [];
      const latest = new Map<string, Record<string, string>>();
      keys.forEach((k, i) => {
        const [err, h] = res[i] ?? [];
        if (!err && h) latest.set(k, h as Record<string, string>);
      });
      return { atMs: Date.now(), windows, latest };
    } catch (err) {
      throw new EngineError('REDIS_UNAVAILABLE', `cannot read the redis sink's hashes: ${(err as Error).message}`, {
        cause: err,
        retryable: true,
      });
    }
  }

  /**
   * The latest window per key of the job's redis sink, filtered, sorted and paged (see querySensors).
   * @throws EngineError NOT_FOUND (no redis sink), REDIS_UNAVAILABLE
   */
  async sensors(
    spec: JobSpec,
    q: Parameters<typeof querySensors>[1],
    nowMs = Date.now(),
  ): Promise<{ total: number; sensors: SensorRow[] }> {
    const { url, keyPrefix } = this.redisSink(spec);
    const snap = await this.snapshot(url, keyPrefix, nowMs);
    const keyFields = sinkKeyFields(spec);
    const aggs = aggregateFields(spec);
    const rows = [...snap.latest].map(([k, h]) => sensorRow(k, h, keyFields, aggs, nowMs));
    return querySensors(rows, q);
  }

  /**
   * Every window of `key` in [fromMs, toMs] (by windowStart), ascending.
   * @throws EngineError NOT_FOUND (no redis sink), REDIS_UNAVAILABLE
   */
  async series(spec: JobSpec, key: string, fromMs?: number, toMs?: number, nowMs = Date.now()) {
    const { url, keyPrefix } = this.redisSink(spec);
    const snap = await this.snapshot(url, keyPrefix, nowMs);
    const starts = (snap.windows.get(key) ?? []).filter(
      (w) => w === null || ((fromMs === undefined || w >= fromMs) && (toMs === undefined || w <= toMs)),
    );
    const aggs = aggregateFields(spec);
    const redis = this.client(url);
    const pipe = redis.pipeline();
    for (const w of starts) pipe.hgetall(w === null ? `${keyPrefix}:${key}` : `${keyPrefix}:${key}:${w}`);
    const res = starts.length > 0 ? ((await pipe.exec()) ?? []) : [];
    const points = res
      .map(([, h]) => sensorRow(key, (h ?? {}) as Record<string, string>, [], aggs, nowMs))
      .map((r) => ({
        windowStart: r.windowStart,
        windowEnd: r.windowEnd,
        avg: r.avg,
        min: r.min,
        max: r.max,
        count: r.count,
      }))
      .sort((a, b) => (a.windowStart ?? 0) - (b.windowStart ?? 0));
    return { key, points };
  }

  /**
   * The latest window per key as heatmap cells over the job's key fields (the first two).
   * @throws EngineError NOT_FOUND (no redis sink), REDIS_UNAVAILABLE
   */
  async heatmap(spec: JobSpec, nowMs = Date.now()) {
    const levels = sinkKeyFields(spec).slice(0, 2);
    const { sensors } = await this.sensors(spec, { limit: Number.MAX_SAFE_INTEGER }, nowMs);
    return {
      levels,
      cells: sensors.map((s) => {
        const cell: Record<string, string | number | null> = {};
        for (const l of levels) cell[l] = s.fields[l] ?? null;
        cell.avg = s.avg;
        cell.windowStart = s.windowStart;
        return cell;
      }),
    };
  }

  /**
   * The newest `limit` alerts of the job's bullmq sink queue (any job state), newest first by
   * the alert's `ts`.
   * @throws EngineError NOT_FOUND (no bullmq sink), REDIS_UNAVAILABLE
   */
  async alerts(spec: JobSpec, limit: number): Promise<{ alerts: AlertRow[] }> {
    if (spec.sink.type !== 'bullmq')
      throw new HttpError('NOT_FOUND', 404, `job ${spec.name} has no bullmq alerts sink`);
    const url = spec.sink.url ?? this.o.redisUrl;
    const id = `${url}\n${spec.sink.queue}`;
    let q = this.queues.get(id);
    if (!q) {
      q = new Queue(spec.sink.queue, { connection: { ...bullConnection(url), maxRetriesPerRequest: 2 } });
      q.on('error', () => {});
      this.queues.set(id, q);
    }
    try {
      const jobs = await q.getJobs(
        ['completed', 'failed', 'active', 'waiting', 'delayed', 'prioritized'],
        0,
        limit - 1,
        false,
      );
      const alerts = jobs
        .filter((j) => j?.data)
        .map((j) => {
          const d = j.data as Record<string, unknown>;
          return {
            sensor: String(d.sensor ?? d.key ?? ''),
            ts: Number(d.ts ?? d.windowStart ?? j.timestamp),
            value: Number(d.value ?? Number.NaN),
            rule: String(d.rule ?? ''),
            detail: String(d.detail ?? ''),
          };
        })
        .sort((a, b) => b.ts - a.ts)
        .slice(0, limit);
      return { alerts };
    } catch (err) {
      throw new EngineError(
        'REDIS_UNAVAILABLE',
        `cannot read alert queue ${spec.sink.queue}: ${(err as Error).message}`,
        {
          cause: err,
          retryable: true,
        },
      );
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close().catch(() => {})));
    for (const c of this.clients.values()) c.disconnect();
  }
}
