/**
 * `fluxo deadletters <job> [--count N] [--follow]`: prints a job's dead letters (rejected records
 * with their reason) as JSON lines on stdout, oldest first. Where they are comes from the job's
 * details (`outputs.deadLetterSink`, GetJob on the JobManager):
 * - a `redis-stream` dead-letter output: the entries of `fluxo:stream:{stream}:0`, deduplicated
 *   by `rowId` (the stream is at-least-once across recovery: a replay appends rows again with the
 *   same id); `--follow` then blocks on the stream for new entries;
 * - a `file` output on this machine: its lines; `--follow` polls the file for appended lines;
 * - `stdout`: nothing to read (they went to the TaskManagers' output): `SPEC_INVALID`.
 */
import { open, stat } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { EngineError } from '../core/errors/index.js';
import { ROW_ID_FIELD } from '../core/sinks/redis-stream-sink.js';
import type { DeadLetterSinkSpec } from '../core/spec/types.js';
import { RECORD_FIELD, streamKey } from '../core/streams/layout.js';
import type { JobDetails } from './jm-client.js';

export interface DeadLetterOptions {
  /** print only the last `count` dead letters present at the start (then follow); default all */
  count?: number;
  follow?: boolean;
  /** Redis URL for a redis-stream output; default: the sink's url, else env REDIS_URL, else redis://127.0.0.1:6379 */
  redisUrl?: string;
  /** ms between polls of a followed file; default 500 */
  pollMs?: number;
}

/**
 * Where a job's dead letters are: the details' `deadLetterSink`, or (older JobManagers) the
 * `outputs.deadLetters` text, a file path or `stdout`.
 */
export function deadLetterSinkOf(details: Pick<JobDetails, 'outputs'>): DeadLetterSinkSpec {
  const o = details.outputs as JobDetails['outputs'] & { deadLetterSink?: DeadLetterSinkSpec };
  if (o.deadLetterSink) return o.deadLetterSink;
  return o.deadLetters === 'stdout' ? { type: 'stdout' } : { type: 'file', path: o.deadLetters };
}

/**
 * Prints the dead letters of `sink`, then follows until `signal` aborts (with `follow`).
 * @throws EngineError `SPEC_INVALID` for a stdout output; `REDIS_UNAVAILABLE` when Redis cannot be read
 */
export async function showDeadLetters(
  sink: DeadLetterSinkSpec,
  o: DeadLetterOptions,
  signal: AbortSignal,
  write: (s: string) => void = (s) => process.stdout.write(s),
): Promise<void> {
  if (sink.type === 'stdout')
    throw new EngineError(
      'SPEC_INVALID',
      "this job's dead letters go to stdout (the TaskManagers' output): there is nothing to read",
    );
  if (sink.type === 'file') return showFile(sink.path, o, signal, write);
  const masked = sink.url?.includes(':***@') ?? false;
  const url = o.redisUrl ?? (sink.url !== undefined && !masked ? sink.url : undefined) ?? defaultRedisUrl();
  return showStream(streamKey(sink.stream, 0), url, o, signal, write);
}

function defaultRedisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

async function showStream(
  key: string,
  url: string,
  o: DeadLetterOptions,
  signal: AbortSignal,
  write: (s: string) => void,
): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 2, lazyConnect: true, commandTimeout: 30_000 });
  redis.on('error', () => {});
  const seen = new Set<string>();
  try {
    try {
      await redis.connect();
    } catch (err) {
      throw new EngineError('REDIS_UNAVAILABLE', `cannot reach Redis at ${url}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const all = (await redis.xrange(key, '-', '+')) as [string, string[]][];
    // deduplicate over the whole stream, then keep the last `count` distinct dead letters
    const distinct: string[] = [];
    printInto(all, seen, (line) => distinct.push(line));
    const shown = o.count === undefined ? distinct : distinct.slice(Math.max(0, distinct.length - o.count));
    for (const line of shown) write(`${line}\n`);
    if (!o.follow) return;
    let last = all.length > 0 ? (all[all.length - 1] as [string, string[]])[0] : '0-0';
    const reader = redis.duplicate();
    reader.on('error', () => {});
    const stop = () => reader.disconnect();
    signal.addEventListener('abort', stop, { once: true });
    try {
      while (!signal.aborted) {
        let res: [string, [string, string[]][]][] | null;
        try {
          res = (await reader.xread('BLOCK', 1000, 'STREAMS', key, last)) as [string, [string, string[]][]][] | null;
        } catch (err) {
          if (signal.aborted) break;
          throw err;
        }
        const entries = res?.[0]?.[1] ?? [];
        if (entries.length === 0) continue;
        last = (entries[entries.length - 1] as [string, string[]])[0];
        printInto(entries, seen, (line) => write(`${line}\n`));
      }
    } finally {
      signal.removeEventListener('abort', stop);
      reader.disconnect();
    }
  } finally {
    redis.disconnect();
  }
}

function recordOf(fields: string[]): string {
  const i = fields.indexOf(RECORD_FIELD);
  return i >= 0 ? (fields[i + 1] ?? '') : '';
}

/** Adds the row ids of `entries` to `seen`, writing each entry not seen before. */
function printInto(entries: [string, string[]][], seen: Set<string>, write: (s: string) => void): void {
  for (const [, fields] of entries) {
    const data = recordOf(fields);
    let id: string | undefined;
    try {
      const v = (JSON.parse(data) as Record<string, unknown>)[ROW_ID_FIELD];
      id = typeof v === 'string' ? v : undefined;
    } catch {
      id = undefined;
    }
    if (id !== undefined) {
      if (seen.has(id)) continue;
      seen.add(id);
    }
    write(data);
  }
}

async function showFile(
  path: string,
  o: DeadLetterOptions,
  signal: AbortSignal,
  write: (s: string) => void,
): Promise<void> {
  let offset = 0;
  let partial = '';
  const readNew = async (): Promise<string[]> => {
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new EngineError('SINK_IO', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (size < offset) {
      offset = 0; // truncated (a new run of the job): read it again from the start
      partial = '';
    }
    if (size === offset) return [];
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(size - offset);
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      offset += bytesRead;
      const text = partial + buf.subarray(0, bytesRead).toString('utf8');
      const parts = text.split('\n');
      partial = parts.pop() ?? '';
      return parts.filter((l) => l !== '');
    } finally {
      await fh.close();
    }
  };
  const first = await readNew();
  const shown = o.count === undefined ? first : first.slice(Math.max(0, first.length - o.count));
  for (const l of shown) write(`${l}\n`);
  if (!o.follow) return;
  const pollMs = o.pollMs ?? 500;
  while (!signal.aborted) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, pollMs);
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
    if (signal.aborted) break;
    for (const l of await readNew()) write(`${l}\n`);
  }
}
