import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EngineError } from '../../../core/errors/index.js';
import { UPDATED_AT_FIELD } from '../../../core/running/running-operator.js';
import { loadJobSpecFile } from '../../../core/spec/load.js';
import { jobSpecFromJson, jobSpecToJson, parseJobSpec } from '../../../core/spec/schema.js';
import { UPDATE_FIELD } from '../../../core/windows/window-operator.js';

const valid = () => ({
  name: 'room-temperature',
  parallelism: 2,
  source: {
    type: 'file',
    path: 'data/x.csv',
    format: 'csv',
    header: true,
    columns: [{ name: 'sensorId', type: 'string' }, 'timestamp:int', 'temperature:double', 'room'],
    eventTime: { field: 'timestamp', unit: 'ms' },
    watermark: { outOfOrdernessMs: 5000 },
    validate: [{ rule: 'temperature > -60.0', reason: 'temperature below -60' }],
  },
  steps: [
    { filter: 'temperature >= -40 && temperature <= 85' },
    { map: { tempF: 'temperature * 9 / 5 + 32' } },
    { keyBy: 'sensorId' },
    { window: { type: 'tumbling', sizeMs: 60000 }, parallelism: 4 },
    { aggregate: { count: 'count()', avg: 'avg(temperature)', maxF: 'max(tempF)' } },
  ],
  sink: { type: 'file', path: 'out/room-temperature.jsonl' },
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

describe('parseJobSpec', () => {
  it('normalises a valid spec with defaults and resolved paths', () => {
    const spec = parseJobSpec(valid(), { baseDir: '/base' });
    expect(spec.maxParallelism).toBe(128);
    expect(spec.steps).toEqual([
      { kind: 'filter', expr: 'temperature >= -40 && temperature <= 85' },
      { kind: 'map', fields: { tempF: 'temperature * 9 / 5 + 32' } },
      { kind: 'keyBy', fields: ['sensorId'] },
      {
        kind: 'window',
        window: { type: 'tumbling', sizeMs: 60000, offsetMs: 0, allowedLatenessMs: 0 },
        parallelism: 4,
      },
      {
        kind: 'aggregate',
        aggregates: [
          { output: 'count', kind: 'count' },
          { output: 'avg', kind: 'avg', field: 'temperature' },
          { output: 'maxF', kind: 'max', field: 'tempF' },
        ],
      },
    ]);
    const src = spec.source;
    if (src.type !== 'file') throw new Error('file source expected');
    expect(src.paths).toEqual(['/base/data/x.csv']);
    expect(src.displayPaths).toEqual(['data/x.csv']);
    expect(src.columns[3]).toEqual({ name: 'room', type: 'string', nullable: false });
    expect(src.watermark).toEqual({ outOfOrdernessMs: 5000, idleTimeoutMs: 0 });
    expect(src.eventTime).toEqual({
      field: 'timestamp',
      joinFields: [],
      unit: 'ms',
      timeZone: 'UTC',
      minMs: 946684800000,
      maxMs: 4102444800000,
      outputField: 'timestamp',
    });
    expect(src.maxLineBytes).toBe(1048576);
    expect(spec.sink).toEqual({ type: 'file', path: '/base/out/room-temperature.jsonl' });
    expect(spec.deadLetter).toEqual({ type: 'file', path: '/base/out/room-temperature.deadletter.jsonl' });
    expect(spec.lateData).toEqual({ type: 'file', path: '/base/out/room-temperature.late.jsonl' });
  });

  it('is plain JSON: survives a JSON round trip unchanged', () => {
    const spec = parseJobSpec(valid(), { baseDir: '/base' });
    expect(jobSpecFromJson(jobSpecToJson(spec))).toEqual(spec);
    expect(JSON.parse(JSON.stringify(spec))).toStrictEqual(spec);
  });

  it('defaults side outputs under out/<name> for non-file sinks', () => {
    const spec = parseJobSpec({ ...valid(), sink: { type: 'redis', keyPrefix: 'rt' } });
    expect(spec.deadLetter).toEqual({ type: 'file', path: 'out/room-temperature.deadletter.jsonl' });
    expect(spec.lateData).toEqual({ type: 'file', path: 'out/room-temperature.late.jsonl' });
  });

  it('lists every problem with its path', () => {
    const raw = valid() as Record<string, unknown> & { steps: unknown[]; source: Record<string, unknown> };
    raw.parallelism = 0;
    raw.source.watermark = { outOfOrdernessMs: -1 };
    raw.steps[2] = { keyBy: ['sensorId', 'house'] };
    raw.steps[3] = { window: { type: 'sliding', sizeMs: 1000, slideMs: 2000, offsetMs: 0 } };
    raw.steps[4] = { aggregate: { avg: 'avg(room)', p: 'median(temperature)' } };
    raw.sink = { type: 'file', path: 'o.jsonl', parallelism: 2 };
    expect(problemsOf(raw)).toEqual([
      'parallelism: expected a positive integer',
      'source.watermark.outOfOrdernessMs: expected a non-negative integer',
      'steps[2].keyBy[1]: unknown field "house"',
      'steps[3].window.slideMs: must be at most sizeMs (1000)',
      'steps[4].aggregate.avg: field "room" is string, expected a non-null number',
      'steps[4].aggregate.p: expected count(), sum(field), avg(field), min(field) or max(field)',
      'sink.parallelism: cannot be set for a file sink (one file, one writer)',
    ]);
  });

  it('reports window sizes and the message summary', () => {
    const raw = valid();
    raw.steps[3] = { window: { type: 'tumbling', sizeMs: -5 } as never, parallelism: 4 };
    try {
      parseJobSpec(raw);
      throw new Error('no error');
    } catch (e) {
      const err = e as EngineError;
      expect(err.code).toBe('SPEC_INVALID');
      expect(err.problems).toEqual(['steps[3].window.sizeMs: expected a positive integer']);
      expect(err.message).toContain('steps[3].window.sizeMs: expected a positive integer');
    }
  });

  it('checks the step structure', () => {
    const base = valid();
    expect(
      problemsOf({ ...base, steps: [{ window: { type: 'tumbling', sizeMs: 10 } }, { aggregate: { c: 'count()' } }] }),
    ).toEqual(['steps[0]: window must directly follow a keyBy step']);
    expect(
      problemsOf({ ...base, steps: [{ keyBy: 'sensorId' }, { window: { type: 'tumbling', sizeMs: 10 } }] }),
    ).toEqual(['steps[1]: window must be followed by an aggregate step']);
    expect(problemsOf({ ...base, steps: [{ aggregate: { c: 'count()' } }] })).toEqual([
      'steps[0]: aggregate needs a window step before it',
    ]);
    expect(problemsOf({ ...base, steps: [{ keyBy: 'sensorId' }, { filter: 'true' }] })).toEqual([
      'steps[0]: keyBy must be followed by a window, a detect or a running step',
    ]);
    expect(problemsOf({ ...base, steps: [{ filter: 'true', map: { a: '1' } }] })).toEqual([
      'steps[0]: expected exactly one of filter, map, keyBy, window, aggregate, detect, running, got filter, map',
    ]);
  });

  it('accepts rollup stages over the window results before them, and checks their fields', () => {
    const base = valid();
    const w = { window: { type: 'tumbling', sizeMs: 60000 } };
    const stage1 = [{ keyBy: ['room', 'sensorId'] }, w, { aggregate: { n: 'count()', avg: 'avg(temperature)' } }];
    const spec = parseJobSpec(
      {
        ...base,
        steps: [...stage1, { keyBy: 'room' }, w, { aggregate: { sensors: 'count()', n: 'sum(n)', avg: 'avg(avg)' } }],
      },
      { baseDir: '/base' },
    );
    expect(spec.steps.map((st) => st.kind)).toEqual(['keyBy', 'window', 'aggregate', 'keyBy', 'window', 'aggregate']);
    // a rollup sees key, the key fields, windowStart, windowEnd and the aggregates: not the readings' fields
    expect(
      problemsOf({
        ...base,
        steps: [...stage1, { keyBy: 'house' }, w, { aggregate: { t: 'avg(temperature)', s: 'max(windowStart)' } }],
      }),
    ).toEqual(['steps[3].keyBy: unknown field "house"', 'steps[5].aggregate.t: unknown field "temperature"']);
    expect(
      problemsOf({
        ...base,
        steps: [
          { keyBy: 'sensorId' },
          { window: { type: 'tumbling', sizeMs: 60000, allowedLatenessMs: 1000 } },
          { aggregate: { avg: 'avg(temperature)' } },
          { keyBy: 'key' },
          w,
          { aggregate: { avg: 'avg(avg)' } },
        ],
      }),
    ).toEqual([
      'steps[1].window.allowedLatenessMs: a window whose results feed a rollup stage cannot emit updates (the next stage would count a window twice); set allowedLatenessMs on the last window only',
    ]);
    expect(problemsOf({ ...base, steps: [...stage1, { filter: 'n > 1' }] })).toEqual([
      'steps[3]: only a keyBy (a rollup stage) may follow aggregate',
    ]);
    expect(
      problemsOf({
        ...base,
        steps: [...stage1, { keyBy: 'room' }, { detect: { valueField: 'avg', rules: [{ jump: { minDelta: 1 } }] } }],
      }),
    ).toContain(
      'steps[4]: detect cannot be combined with window/aggregate or rollup stages in one job; run it as its own job',
    );
  });

  it('refuses aggregate names that every result row already has, and says where parallelism goes', () => {
    const base = valid();
    const w = { window: { type: 'tumbling', sizeMs: 60000 } };
    expect(
      problemsOf({
        ...base,
        steps: [{ keyBy: ['room', 'sensorId'] }, w, { aggregate: { windowEnd: 'max(temperature)', room: 'count()' } }],
      }),
    ).toEqual([
      'steps[2].aggregate.windowEnd: "windowEnd" is already a field of every result row (key, windowStart, windowEnd, update, localDate, room, sensorId); choose another name',
      'steps[2].aggregate.room: "room" is already a field of every result row (key, windowStart, windowEnd, update, localDate, room, sensorId); choose another name',
    ]);
    expect(
      problemsOf({ ...base, steps: [{ keyBy: 'sensorId' }, { running: { key: 'count()', updatedAt: 'count()' } }] }),
    ).toEqual([
      'steps[1].running.key: "key" is already a field of every result row (key, updatedAt); choose another name',
      'steps[1].running.updatedAt: "updatedAt" is already a field of every result row (key, updatedAt); choose another name',
    ]);
    // one problem, not one per later step that reads the stage's results
    expect(
      problemsOf({
        ...base,
        steps: [
          { keyBy: 'sensorId' },
          { window: { type: 'tumbling', sizeMs: 60000, parallelism: 2 } },
          { aggregate: { n: 'count()' } },
          { keyBy: 'key' },
          w,
          { aggregate: { n: 'sum(n)' } },
        ],
      }),
    ).toEqual([
      'steps[1].window.parallelism: set parallelism beside the step, not inside it: `- window: {...}` and `parallelism: N` on the next line',
    ]);
    expect(
      problemsOf({
        ...base,
        steps: [
          { keyBy: 'sensorId' },
          w,
          { aggregate: { n: 'count()' } },
          { keyBy: 'sensorId' },
          w,
          { aggregate: { n: 'sum(n)' } },
        ],
      }),
    ).toEqual(['steps[3].keyBy: unknown field "sensorId": window results of a one-field key carry it as "key"']);
    expect(
      problemsOf({
        ...base,
        steps: [
          { keyBy: 'sensorId' },
          w,
          { aggregate: { n: 'count()' } },
          { filter: 'n > 1' },
          { keyBy: 'key' },
          w,
          { aggregate: { n: 'sum(n)' } },
        ],
      }),
    ).toEqual(['steps[3]: only a keyBy (a rollup stage) may follow aggregate']);
  });

  it('names the result fields as the operators do', () => {
    expect([UPDATE_FIELD, UPDATED_AT_FIELD]).toEqual(['update', 'updatedAt']);
  });

  it('bounds keyed parallelism by maxParallelism', () => {
    const raw = valid();
    raw.steps[3] = { window: { type: 'tumbling', sizeMs: 1000 }, parallelism: 256 };
    expect(problemsOf(raw)).toEqual(['steps[3].parallelism: must be at most maxParallelism (128)']);
  });

  it('checks window offsets and session gaps', () => {
    const raw = valid();
    raw.steps[3] = { window: { type: 'tumbling', sizeMs: 1000, offsetMs: -1000 } as never, parallelism: 1 };
    expect(problemsOf(raw)).toEqual(['steps[3].window.offsetMs: must be smaller than sizeMs (1000) in absolute value']);
    raw.steps[3] = { window: { type: 'session', gapMs: 0 } as never, parallelism: 1 };
    expect(problemsOf(raw)).toEqual(['steps[3].window.gapMs: expected a positive integer']);
    raw.steps[3] = { window: { type: 'hopping', sizeMs: 1 } as never, parallelism: 1 };
    expect(problemsOf(raw)).toEqual(['steps[3].window.type: expected tumbling | sliding | session, got "hopping"']);
  });

  it('reports CEL errors with the step path', () => {
    const raw = valid();
    raw.steps[0] = { filter: 'temperature >= ' };
    raw.steps[1] = { map: { tempF: 'nosuchfield * 2.0' } };
    const p = problemsOf(raw);
    expect(p).toHaveLength(3);
    expect(p[0]).toMatch(/^steps\[0\]\.filter: invalid expression "temperature >= "/);
    expect(p[1]).toMatch(/^steps\[1\]\.map\.tempF: /);
    // tempF does not exist any more, so max(tempF) is reported too
    expect(p[2]).toBe('steps[4].aggregate.maxF: unknown field "tempF"');
  });

  it('rejects a non-boolean filter and unknown fields', () => {
    const raw = valid() as Record<string, unknown> & { steps: unknown[] };
    raw.steps[0] = { filter: 'temperature + 1.0' };
    raw.paralelism = 3;
    expect(problemsOf(raw)).toEqual([
      'paralelism: unknown field',
      'steps[0].filter: must be a boolean expression, got double',
    ]);
  });

  it('validates the source event time and melt', () => {
    const raw = valid();
    raw.source.eventTime = { field: 'nope', unit: 'ms', format: 'yyyy' } as never;
    (raw.source as Record<string, unknown>).melt = { columns: ['T9'], nameField: 'room', valueField: 'temperature' };
    expect(problemsOf(raw)).toEqual([
      'source.melt.columns[0]: unknown column "T9"',
      'source.melt.nameField: "room" is already a column',
      'source.melt.valueField: "temperature" is already a column',
      'source.eventTime: set exactly one of unit, format, iso: true',
      'source.eventTime.field: unknown column "nope"',
    ]);
  });

  it('accepts a generator source with its implicit event time', () => {
    const spec = parseJobSpec({
      name: 'gen',
      source: { type: 'generator', sensors: 10, count: 100, seed: 1 },
      steps: [
        { keyBy: ['house', 'room'] },
        { window: { type: 'sliding', sizeMs: 60000, slideMs: 10000 } },
        { aggregate: { n: 'count()', t: 'sum(temperature)' } },
      ],
      sink: { type: 'stdout' },
    });
    expect(spec.source).toMatchObject({
      type: 'generator',
      splits: 1,
      ratePerSec: 1000,
      jitterMs: 0,
      eventTime: { field: 'timestamp', unit: 'ms' },
    });
  });
});

describe('loadJobSpecFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fluxo-spec-'));
  const yamlText = `
name: room-temperature
parallelism: 2
source:
  type: file
  path: data/x.csv
  columns: ["sensorId:string", "timestamp:int", "temperature:double"]
  eventTime: { field: timestamp, unit: ms }
  watermark: { outOfOrdernessMs: 5000 }
steps:
  - filter: "temperature >= -40.0"
  - keyBy: sensorId
  - window: { type: tumbling, sizeMs: 60000 }
  - aggregate: { count: "count()", avg: "avg(temperature)" }
sink: { type: file, path: out/rt.jsonl }
`;
  writeFileSync(join(dir, 'job.yaml'), yamlText);
  writeFileSync(join(dir, 'job.json'), JSON.stringify(valid()));
  writeFileSync(join(dir, 'broken.yaml'), 'name: x\nsource: [1, 2\nsteps: []\n');

  it('reads YAML, resolves source paths against the spec folder and sink paths against the working directory', () => {
    const spec = loadJobSpecFile(join(dir, 'job.yaml'));
    expect(spec.source.type === 'file' && spec.source.paths).toEqual([join(dir, 'data/x.csv')]);
    expect(spec.sink).toEqual({ type: 'file', path: join(process.cwd(), 'out/rt.jsonl') });
  });

  it('reads JSON', () => {
    expect(loadJobSpecFile(join(dir, 'job.json')).name).toBe('room-temperature');
  });

  it('applies --set overrides before validation', () => {
    const spec = loadJobSpecFile(join(dir, 'job.yaml'), [
      'parallelism=3',
      'source.watermark.outOfOrdernessMs=2000',
      'steps[2].window.sizeMs=30000',
      'steps[1].keyBy=[sensorId]',
      'name=renamed',
    ]);
    expect(spec.parallelism).toBe(3);
    expect(spec.source.watermark.outOfOrdernessMs).toBe(2000);
    expect(spec.steps[2]).toEqual({
      kind: 'window',
      window: { type: 'tumbling', sizeMs: 30000, offsetMs: 0, allowedLatenessMs: 0 },
    });
    expect(spec.name).toBe('renamed');
  });

  it('reports overrides that make the spec invalid like any other problem', () => {
    try {
      loadJobSpecFile(join(dir, 'job.yaml'), ['steps[2].window.sizeMs=abc']);
      throw new Error('no error');
    } catch (e) {
      expect((e as EngineError).problems).toEqual(['steps[2].window.sizeMs: expected a positive integer']);
    }
    expect(() => loadJobSpecFile(join(dir, 'job.yaml'), ['no-equals-sign'])).toThrow(
      expect.objectContaining({ code: 'SPEC_INVALID' }),
    );
  });

  it('gives SPEC_NOT_FOUND for a missing file and SPEC_INVALID with line/column for bad YAML', () => {
    expect(() => loadJobSpecFile(join(dir, 'missing.yaml'))).toThrow(
      expect.objectContaining({ code: 'SPEC_NOT_FOUND' }),
    );
    try {
      loadJobSpecFile(join(dir, 'broken.yaml'));
      throw new Error('no error');
    } catch (e) {
      expect((e as EngineError).code).toBe('SPEC_INVALID');
      expect((e as EngineError).message).toMatch(/line \d+, column \d+/);
    }
  });
});

describe('restart block', () => {
  it('is checked field by field, also without a checkpoint block', () => {
    expect(problemsOf({ ...valid(), restart: { type: 'fixed-delay', attempts: -1, delayMs: -5 } })).toEqual([
      'restart.attempts: must be an integer >= 0',
      'restart.delayMs: must be >= 0',
    ]);
    expect(parseJobSpec({ ...valid(), restart: { type: 'fixed-delay', attempts: 3, delayMs: 100 } }).restart).toEqual({
      type: 'fixed-delay',
      attempts: 3,
      delayMs: 100,
    });
  });
});
