/** The spec's `reactive:` block: reactive mode's per-job cap on the parallelism (jobmanager/reactive.ts). */
import { describe, expect, it } from 'vitest';
import type { EngineError } from '../../../core/errors/index.js';
import { parseJobSpec } from '../../../core/spec/schema.js';

const raw = (extra: Record<string, unknown> = {}) => ({
  name: 'r',
  source: {
    type: 'file',
    path: '/data/a.csv',
    columns: ['sensorId:string', 'timestamp:int', 'temperature:double'],
    eventTime: { field: 'timestamp', unit: 'ms' },
  },
  steps: [{ keyBy: 'sensorId' }, { window: { type: 'tumbling', sizeMs: 60000 } }, { aggregate: { n: 'count()' } }],
  sink: { type: 'file', path: '/out/r.jsonl' },
  checkpoint: { intervalMs: 1000 },
  ...extra,
});

function problemsOf(spec: unknown): string[] {
  try {
    parseJobSpec(spec);
  } catch (e) {
    expect((e as EngineError).code).toBe('SPEC_INVALID');
    return (e as EngineError).problems;
  }
  throw new Error('expected SPEC_INVALID');
}

describe('reactive: in the job spec', () => {
  it('is absent unless given, and keeps the cap', () => {
    expect(parseJobSpec(raw()).reactive).toBeUndefined();
    expect(parseJobSpec(raw({ reactive: { maxParallelism: 4 } })).reactive).toEqual({ maxParallelism: 4 });
    expect(parseJobSpec(raw({ reactive: {} })).reactive).toEqual({});
  });

  it('accepts a cap equal to maxParallelism', () => {
    expect(parseJobSpec(raw({ maxParallelism: 8, reactive: { maxParallelism: 8 } })).reactive).toEqual({
      maxParallelism: 8,
    });
  });

  it('refuses a cap above maxParallelism, naming both', () => {
    expect(problemsOf(raw({ maxParallelism: 8, reactive: { maxParallelism: 9 } }))).toEqual([
      'reactive.maxParallelism: must be at most maxParallelism (8): a keyed step cannot run more subtasks than there are key groups',
    ]);
  });

  it('refuses a cap that is not a positive integer, and unknown fields', () => {
    expect(problemsOf(raw({ reactive: { maxParallelism: 0 } }))[0]).toMatch(/^reactive\.maxParallelism: /);
    expect(problemsOf(raw({ reactive: { maxParallelism: 2.5 } }))[0]).toMatch(/^reactive\.maxParallelism: /);
    expect(problemsOf(raw({ reactive: { minParallelism: 2 } }))[0]).toMatch(/^reactive/);
    expect(problemsOf(raw({ reactive: 4 }))[0]).toMatch(/^reactive: /);
  });
});
