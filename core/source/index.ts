/**
 * Source readers: one reader per source subtask.
 */
import type { SourceSpec } from '../spec/types.js';
import { FileSourceReader } from './file.js';
import { GeneratorReader } from './generator.js';
import { RedisStreamReader } from './redis-stream.js';
import { ThingSpeakJsonReader } from './thingspeak-json.js';
import type { SourcePosition, SourceReader } from './types.js';

export { FileSourceReader } from './file.js';
export { GeneratorReader } from './generator.js';
export { RedisStreamReader } from './redis-stream.js';
export { ThingSpeakJsonReader } from './thingspeak-json.js';
export type { SourceBatch, SourcePosition, SourceReader } from './types.js';
export { newSourceBatch } from './types.js';

/**
 * Creates the reader of source subtask `subtask` (0-based) out of `parallelism` subtasks.
 *
 * Work is divided in units fixed by the spec, never by the parallelism, so results do not
 * depend on it: files are `spec.paths` (unit i = paths[i]), generator units are its `splits`,
 * redis-stream units its `partitions`.
 * Subtask `subtask` reads the units u with `u % parallelism === subtask`, one after the other in
 * increasing order; a subtask with no unit ends at once (its first poll resolves false).
 *
 * `restore` (a position() taken from a reader of the same subtask and parallelism) resumes after
 * the last line read: plain files seek to the byte offset, gzip files and generators re-read and
 * skip.
 * `opts.fields`: the fields the job reads downstream; melted rows carry only those (every column
 * is still parsed and checked). Default: all.
 * `opts.redisUrl`: the cluster's Redis, read by a redis-stream source without its own `url`
 * (default `redis://127.0.0.1:6379`).
 * @throws EngineError `EXPR_INVALID` when a validate rule does not compile. Open errors
 * (`SOURCE_IO`) surface on the first poll.
 */
export function createSourceReader(
  spec: SourceSpec,
  subtask: number,
  parallelism: number,
  restore?: SourcePosition,
  opts: { fields?: string[]; redisUrl?: string } = {},
): SourceReader {
  const units = spec.type === 'file' ? spec.paths.length : spec.type === 'redis-stream' ? spec.partitions : spec.splits;
  const mine: number[] = [];
  for (let u = subtask; u < units; u += parallelism) mine.push(u);
  if (spec.type === 'redis-stream')
    return new RedisStreamReader(
      spec,
      mine,
      spec.url ?? opts.redisUrl ?? 'redis://127.0.0.1:6379',
      restore,
      opts.fields,
    );
  if (spec.type === 'file' && spec.format === 'thingspeak-json') return new ThingSpeakJsonReader(spec, mine, restore);
  return spec.type === 'file'
    ? new FileSourceReader(spec, mine, restore, opts.fields)
    : new GeneratorReader(spec, mine, restore);
}
