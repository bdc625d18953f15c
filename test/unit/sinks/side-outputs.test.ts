/**
 * Side outputs beyond files: the spec accepts a redis-stream dead-letter output and a
 * redis-stream or bullmq late-data output; the graph names them; stream records carry a
 * deterministic row id that ignores the timing-dependent `watermarkMs`.
 */
import { describe, expect, it } from 'vitest';
import type { EngineError } from '../../../core/errors/index.js';
import { buildJobGraph, maskPassword, outputPaths } from '../../../core/graph/build.js';
import { ROW_ID_FIELD, streamRecordRenderer } from '../../../core/sinks/redis-stream-sink.js';
import { parseJobSpec } from '../../../core/spec/schema.js';

const base = (extra: Record<string, unknown>) => ({
  name: 'side',
  source: {
    type: 'file',
    path: 'x.csv',
    columns: ['sensor:string', 'ts:int', 't:double'],
    eventTime: { field: 'ts', unit: 'ms' },
  },
  steps: [
    { keyBy: 'sensor' },
    { window: { type: 'tumbling', sizeMs: 10_000, allowedLatenessMs: 5000 } },
    { aggregate: { count: 'count()' } },
  ],
  sink: { type: 'file', path: 'out/r.jsonl' },
  ...extra,
});

function problemsOf(raw: unknown): string[] {
  try {
    parseJobSpec(raw, { baseDir: '/base' });
  } catch (e) {
    expect((e as EngineError).code).toBe('SPEC_INVALID');
    return (e as EngineError).problems;
  }
  throw new Error('expected SPEC_INVALID');
}

describe('side outputs in the job spec', () => {
  it('accepts redis-stream dead letters and late data, and bullmq late data', () => {
    const spec = parseJobSpec(
      base({
        deadLetter: { type: 'redis-stream', stream: 'dead', url: 'redis://u:secret@h:6379' },
        lateData: { type: 'bullmq', queue: 'late' },
      }),
      { baseDir: '/base' },
    );
    expect(spec.deadLetter).toEqual({ type: 'redis-stream', stream: 'dead', url: 'redis://u:secret@h:6379' });
    expect(spec.lateData).toMatchObject({ type: 'bullmq', queue: 'late' });
    const out = outputPaths(spec);
    expect(out.deadLetters).toBe('redis stream fluxo:stream:dead:0');
    expect(out.late).toBe('BullMQ queue late');
    expect(out.deadLetterSink).toEqual({ type: 'redis-stream', stream: 'dead', url: 'redis://u:***@h:6379' });
    const late = buildJobGraph(spec).vertices.find((v) => v.id === 'late');
    expect(late?.operators[0]).toMatchObject({ kind: 'sink', role: 'late', sink: { type: 'bullmq' } });
  });

  it('refuses bullmq dead letters, a redis hash side output and a stream name with a colon', () => {
    expect(problemsOf(base({ deadLetter: { type: 'bullmq', queue: 'q' } }))).toEqual([
      'deadLetter.type: expected file | stdout | redis-stream, got "bullmq"',
    ]);
    expect(problemsOf(base({ lateData: { type: 'redis', keyPrefix: 'p' } }))).toEqual([
      'lateData.type: expected file | stdout | redis-stream | bullmq, got "redis"',
    ]);
    expect(problemsOf(base({ deadLetter: { type: 'redis-stream', stream: 'a:b' } }))[0]).toMatch(
      /^deadLetter\.stream: /,
    );
  });

  it('adds the update field to window results only with allowed lateness', () => {
    const fields = (lateness: number) => {
      const raw = base({});
      (raw.steps[1] as { window: Record<string, unknown> }).window.allowedLatenessMs = lateness;
      const g = buildJobGraph(parseJobSpec(raw, { baseDir: '/base' }));
      return g.edges.find((e) => e.target === 'sink')?.schema.map((f) => f.name);
    };
    expect(fields(5000)).toEqual(['key', 'windowStart', 'windowEnd', 'count', 'update']);
    expect(fields(0)).toEqual(['key', 'windowStart', 'windowEnd', 'count']);
  });

  it('masks only a password in a url', () => {
    expect(maskPassword('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(maskPassword('redis://:pw@h:1/2')).toBe('redis://:***@h:1/2');
  });
});

describe('redis-stream records', () => {
  const render = streamRecordRenderer([
    { name: 'sensor', type: 'string' },
    { name: 'ts', type: 'int' },
    { name: 'watermarkMs', type: 'double' },
  ]);

  it('are the row as JSON plus a 16-hex row id that ignores watermarkMs', () => {
    const a = JSON.parse(render({ sensor: 's1', ts: 5, watermarkMs: 100 })) as Record<string, unknown>;
    const b = JSON.parse(render({ sensor: 's1', ts: 5, watermarkMs: 200 })) as Record<string, unknown>;
    const c = JSON.parse(render({ sensor: 's1', ts: 6, watermarkMs: 100 })) as Record<string, unknown>;
    expect(a).toMatchObject({ sensor: 's1', ts: 5, watermarkMs: 100 });
    expect(a[ROW_ID_FIELD]).toMatch(/^[0-9a-f]{16}$/);
    expect(b[ROW_ID_FIELD]).toBe(a[ROW_ID_FIELD]);
    expect(c[ROW_ID_FIELD]).not.toBe(a[ROW_ID_FIELD]);
  });
});

describe('allowed lateness in the spec', () => {
  it('is refused with session windows, naming the field', () => {
    const raw = base({});
    (raw.steps as unknown[])[1] = { window: { type: 'session', gapMs: 5000, allowedLatenessMs: 1000 } };
    expect(problemsOf(raw)).toEqual([
      'steps[1].window.allowedLatenessMs: must be 0: allowed lateness with session windows is not supported yet',
    ]);
  });
});
