import { describe, expect, it } from 'vitest';
import { buildJobGraph, requiredSourceFields, slotsNeeded } from '../../../core/graph/build.js';
import { buildDeployment } from '../../../core/graph/deploy.js';
import { parseJobSpec } from '../../../core/spec/schema.js';

function spec(overrides: Record<string, unknown> = {}) {
  return parseJobSpec({
    name: 'g',
    parallelism: 3,
    source: {
      type: 'file',
      paths: ['/data/a.csv', '/data/b.csv'],
      columns: ['sensorId:string', 'timestamp:int', 'temperature:double', 'humidity:double', 'note:string'],
      eventTime: { field: 'timestamp', unit: 'ms' },
      watermark: { outOfOrdernessMs: 1000 },
    },
    steps: [
      { filter: 'humidity < 90.0 && note != "x y"' },
      { map: { tempF: 'temperature * 9.0 / 5.0 + 32.0' } },
      { keyBy: 'sensorId' },
      { window: { type: 'tumbling', sizeMs: 60000 } },
      { aggregate: { n: 'count()', hi: 'max(tempF)' } },
    ],
    sink: { type: 'file', path: '/out/g.jsonl' },
    ...overrides,
  });
}

describe('the job graph', () => {
  it('chains filter and map to the source, hashes into the window vertex, and ends in parallelism-1 sinks', () => {
    const g = buildJobGraph(spec());
    expect(g.vertices.map((v) => [v.id, v.parallelism, v.operators.map((o) => o.kind).join('>')])).toEqual([
      ['source', 2, 'source>filter>map'], // one subtask per file
      ['window', 3, 'window'],
      ['late', 1, 'sink'],
      ['sink', 1, 'sink'],
      ['deadletters', 1, 'sink'],
    ]);
    const hash = g.edges.find((e) => e.target === 'window');
    expect(hash?.partitioner).toBe('hash');
    expect(hash?.keyFields).toEqual(['sensorId']);
    // only what the window reads crosses the network: key, aggregate inputs, event time
    expect(hash?.schema.map((f) => f.name).sort()).toEqual(['sensorId', 'tempF', 'timestamp']);
    expect(
      g.edges.filter((e) => e.partitioner === 'global').map((e) => `${e.source}->${e.target}:${e.output}`),
    ).toEqual(['window->late:late', 'window->sink:main', 'source->deadletters:deadLetter']);
    expect(slotsNeeded(g)).toBe(3);
  });

  it('chains a redis sink to the window vertex instead of adding a sink vertex', () => {
    const g = buildJobGraph(spec({ sink: { type: 'redis', keyPrefix: 'p' } }));
    expect(g.vertices.find((v) => v.id === 'window')?.operators.map((o) => o.kind)).toEqual(['window', 'sink']);
    expect(g.vertices.some((v) => v.id === 'sink')).toBe(false);
  });

  it('builds one keyed vertex per rollup stage, each hashed on its keys, the last one feeding the sink', () => {
    const w = { window: { type: 'tumbling', sizeMs: 60000 } };
    const g = buildJobGraph(
      spec({
        steps: [
          { keyBy: ['note', 'sensorId'] },
          w,
          { aggregate: { n: 'count()', hi: 'max(temperature)' } },
          { keyBy: 'note' },
          { ...w, parallelism: 2 },
          { aggregate: { sensors: 'count()', n: 'sum(n)', hi: 'max(hi)' } },
        ],
      }),
    );
    expect(g.vertices.map((v) => [v.id, v.parallelism, v.operators.map((o) => o.kind).join('>')])).toEqual([
      ['source', 2, 'source'],
      ['window', 3, 'window'],
      ['late', 1, 'sink'],
      ['window-2', 2, 'window'],
      ['sink', 1, 'sink'],
      ['deadletters', 1, 'sink'],
    ]);
    const rollup = g.edges.find((e) => e.target === 'window-2');
    expect(rollup).toMatchObject({ source: 'window', partitioner: 'hash', keyFields: ['note'] });
    // the rollup reads its key and the first stage's results it aggregates
    expect(rollup?.schema).toEqual([
      { name: 'note', type: 'string' },
      { name: 'n', type: 'int' },
      { name: 'hi', type: 'double' },
    ]);
    expect(
      g.edges.filter((e) => e.partitioner === 'global').map((e) => `${e.source}->${e.target}:${e.output}`),
    ).toEqual([
      'window->late:late',
      'window-2->deadletters:deadLetter',
      'window-2->sink:main',
      'source->deadletters:deadLetter',
    ]);
    expect(g.vertices.find((v) => v.id === 'sink')?.operators[0]).toMatchObject({
      fields: [
        { name: 'key', type: 'string' },
        { name: 'windowStart', type: 'int' },
        { name: 'windowEnd', type: 'int' },
        { name: 'sensors', type: 'int' },
        { name: 'n', type: 'double' },
        { name: 'hi', type: 'double' },
      ],
    });
  });

  it('refuses a parallelism on a step that is chained to the source, naming the step', () => {
    const s = spec();
    const bad = { ...s, steps: s.steps.map((st, i) => (i === 0 ? { ...st, parallelism: 4 } : st)) };
    expect(() => buildJobGraph(bad)).toThrow(/steps\[0\]\.parallelism/);
  });

  it('knows which source fields the job reads: keys, aggregate inputs, event time and expression identifiers', () => {
    const fields = requiredSourceFields(spec());
    expect(fields).toEqual(
      expect.arrayContaining(['sensorId', 'timestamp', 'humidity', 'note', 'temperature', 'tempF']),
    );
    // the string literal "x y" is not a field name
    expect(fields).not.toContain('y');
    // a job without a window writes whole rows
    expect(requiredSourceFields(spec({ steps: [{ filter: 'humidity < 90.0' }] }))).toBeUndefined();
  });
});

describe('the deployment', () => {
  const slots = [
    { taskmanagerId: 'tm-1', slot: 0, dataAddress: 'h1:1' },
    { taskmanagerId: 'tm-2', slot: 0, dataAddress: 'h2:1' },
    { taskmanagerId: 'tm-1', slot: 1, dataAddress: 'h1:1' },
  ];

  it('puts subtask i of each vertex in slot i, and single-subtask sinks in the last slot', () => {
    const s = spec();
    const descs = buildDeployment('j', 1, s, buildJobGraph(s), slots);
    const where = Object.fromEntries(descs.map((d) => [d.taskId, `${d.taskmanagerId}/${d.slot}`]));
    expect(where).toEqual({
      'source-0': 'tm-1/0',
      'source-1': 'tm-2/0',
      'window-0': 'tm-1/0',
      'window-1': 'tm-2/0',
      'window-2': 'tm-1/1',
      'late-0': 'tm-1/1',
      'sink-0': 'tm-1/1',
      'deadletters-0': 'tm-1/1',
    });
  });

  it('numbers input channels edge by edge, then by producer subtask, consistently on both sides', () => {
    const s = spec();
    const descs = buildDeployment('j', 1, s, buildJobGraph(s), slots);
    const byId = new Map(descs.map((d) => [d.taskId, d]));
    // every producer's consumerChannel is the channel the consumer expects from it
    for (const d of descs) {
      for (const out of d.outputs) {
        for (const consumer of out.consumers) {
          const c = byId.get(consumer.taskKey.split(':')[2]);
          const input = c?.inputs.find((i) => i.edgeId === out.edgeId);
          expect(input?.producers[out.consumerChannel - (input?.channelBase ?? 0)]?.taskKey).toBe(d.taskKey);
        }
      }
    }
    // the window subtasks each have one channel per source subtask
    expect(byId.get('window-2')?.inputs).toHaveLength(1);
    expect(byId.get('window-2')?.inputs[0].producers).toHaveLength(2);
  });
});
