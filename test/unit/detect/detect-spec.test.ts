import { describe, expect, it } from 'vitest';
import type { EngineError } from '../../../core/errors/index.js';
import { buildJobGraph, requiredSourceFields } from '../../../core/graph/build.js';
import { parseJobSpec } from '../../../core/spec/schema.js';

const job = (steps: unknown[], sink: unknown = { type: 'file', path: 'out/a.jsonl' }) => ({
  name: 'spikes',
  source: {
    type: 'file',
    path: 'x.csv',
    columns: ['sensorId', 'timestamp:int', 'temperature:double', 'room', 'humidity:double?'],
    eventTime: { field: 'timestamp', unit: 'ms' },
  },
  steps,
  sink,
});

function problemsOf(raw: unknown): string[] {
  try {
    buildJobGraph(parseJobSpec(raw, { baseDir: '/base' }));
  } catch (e) {
    expect((e as EngineError).code).toBe('SPEC_INVALID');
    return (e as EngineError).problems;
  }
  throw new Error('expected SPEC_INVALID');
}

describe('the detect step', () => {
  it('normalises rules with their defaults and names', () => {
    const spec = parseJobSpec(
      job([
        { keyBy: 'sensorId' },
        {
          detect: {
            rules: [
              { type: 'jump', minDelta: 5 },
              { type: 'rate', perMinute: 3, name: 'fast' },
              { type: 'zscore', k: 4 },
            ],
          },
          parallelism: 3,
        },
      ]),
      { baseDir: '/base' },
    );
    expect(spec.steps[1]).toEqual({
      kind: 'detect',
      parallelism: 3,
      detect: {
        valueField: 'temperature',
        rules: [
          { type: 'jump', name: 'jump', minDelta: 5 },
          { type: 'rate', name: 'fast', perMinute: 3 },
          { type: 'zscore', name: 'zscore', k: 4, alpha: 0.05, warmup: 20, minStdDev: 0 },
        ],
      },
    });
  });

  it('becomes a keyed vertex fed by a hash edge, with a late-data output and alert rows', () => {
    const g = buildJobGraph(
      parseJobSpec(job([{ keyBy: 'sensorId' }, { detect: { rules: [{ type: 'jump', minDelta: 5 }] } }]), {
        baseDir: '/base',
      }),
    );
    const keyed = g.vertices.find((v) => v.id === 'window');
    expect(keyed?.name).toBe('Detect(jump)');
    expect(keyed?.operators[0].kind).toBe('detect');
    const hash = g.edges.find((e) => e.target === 'window');
    expect(hash?.partitioner).toBe('hash');
    expect(hash?.schema.map((f) => f.name).sort()).toEqual(['sensorId', 'temperature', 'timestamp']);
    expect(g.edges.find((e) => e.target === 'sink')?.schema.map((f) => f.name)).toEqual([
      'sensor',
      'ts',
      'value',
      'rule',
      'detail',
    ]);
    expect(g.vertices.some((v) => v.id === 'late')).toBe(true);
  });

  it('lets sources build only the fields the job reads: key, event time, value', () => {
    const spec = parseJobSpec(job([{ keyBy: 'sensorId' }, { detect: { rules: [{ type: 'jump', minDelta: 5 }] } }]), {
      baseDir: '/base',
    });
    expect(requiredSourceFields(spec)?.sort()).toEqual(['sensorId', 'temperature', 'timestamp']);
  });

  it('refuses detect together with a window, and lists what is wrong with its rules', () => {
    expect(
      problemsOf(
        job([
          { keyBy: 'sensorId' },
          { detect: { rules: [{ type: 'jump', minDelta: 5 }] } },
          { window: { type: 'tumbling', sizeMs: 1000 } },
          { aggregate: { n: 'count()' } },
        ]),
      ),
    ).toContain(
      'steps[1]: detect cannot be combined with window/aggregate or rollup stages in one job; run it as its own job',
    );
    const problems = problemsOf(
      job([
        { keyBy: 'sensorId' },
        {
          detect: {
            value: 'room',
            rules: [
              { type: 'spike' },
              { type: 'jump', minDelta: -1 },
              { type: 'zscore', k: 3, alpha: 2, extra: 1 },
              { type: 'rate', perMinute: 1, name: 'jump' },
              { type: 'jump', minDelta: 1 },
            ],
          },
        },
      ]),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'steps[1].detect.value: field "room" is string, expected a non-null number',
        'steps[1].detect.rules[0].type: expected jump | rate | zscore, got "spike"',
        'steps[1].detect.rules[1].minDelta: must be > 0',
        'steps[1].detect.rules[2].alpha: must be at most 1',
        'steps[1].detect.rules[2].extra: unknown field',
        'steps[1].detect.rules[4].name: duplicate rule name "jump" (set name: to tell them apart)',
      ]),
    );
    expect(
      problemsOf(
        job([{ keyBy: 'sensorId' }, { detect: { value: 'humidity', rules: [{ type: 'jump', minDelta: 1 }] } }]),
      ),
    ).toEqual(['steps[1].detect.value: field "humidity" is nullable, expected a non-null number']);
  });

  it('must directly follow keyBy, end the job, and not write to a redis sink', () => {
    const d = { detect: { rules: [{ type: 'jump', minDelta: 5 }] } };
    expect(problemsOf(job([d]))).toContain('steps[0]: detect must directly follow a keyBy step');
    expect(problemsOf(job([{ keyBy: 'sensorId' }, d, { filter: 'true' }]))).toContain(
      'steps[2]: no step may follow detect',
    );
    expect(problemsOf(job([{ keyBy: 'sensorId' }, d], { type: 'redis', keyPrefix: 'p' }))).toEqual([
      'sink: a redis sink writes window results (<key>:<windowStart>); send detect alerts to a file or stdout sink',
    ]);
  });
});
