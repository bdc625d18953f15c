/**
 * The pure parts of reactive mode (jobmanager/reactive.ts, jobmanager/orphaned-sinks.ts): the
 * target parallelism for a number of slots, the spec a job runs with at that parallelism (the
 * source keeps one subtask per split, so its positions restore one to one), the stabilization
 * debounce, and which sink state a scale-in leaves without a task.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { checkpointId, epoch, jobId, taskKey } from '../../../core/checkpoint/ids.js';
import type { CompletedCheckpoint } from '../../../core/checkpoint/types.js';
import { buildJobGraph, slotsNeeded } from '../../../core/graph/build.js';
import { parseJobSpec } from '../../../core/spec/schema.js';
import { orphanedSinkParts, vertexOfTask } from '../../../jobmanager/orphaned-sinks.js';
import {
  type ReactiveShape,
  reactiveShape,
  reactiveSpec,
  rescaleReason,
  StabilizationTimer,
  targetParallelism,
} from '../../../jobmanager/reactive.js';

const windowSteps = [
  { keyBy: 'sensorId' },
  { window: { type: 'tumbling', sizeMs: 60000 }, parallelism: 4 },
  { aggregate: { n: 'count()', avg: 'avg(temperature)' } },
];

function fileSpec(o: { paths?: string[]; extra?: Record<string, unknown>; steps?: unknown[] } = {}) {
  return parseJobSpec({
    name: 'r',
    parallelism: 2,
    source: {
      type: 'file',
      paths: o.paths ?? ['/data/a.csv'],
      columns: ['sensorId:string', 'timestamp:int', 'temperature:double'],
      eventTime: { field: 'timestamp', unit: 'ms' },
    },
    steps: o.steps ?? windowSteps,
    sink: { type: 'file', path: '/out/r.jsonl' },
    checkpoint: { intervalMs: 1000 },
    ...o.extra,
  });
}

const shape = (o: Partial<ReactiveShape> = {}): ReactiveShape => ({
  splits: 1,
  keyed: true,
  maxParallelism: 128,
  parallelism: 1,
  ...o,
});

describe('targetParallelism', () => {
  it('gives a keyed job one subtask per slot', () => {
    expect(targetParallelism(shape(), 1)).toEqual({ parallelism: 1, slots: 1 });
    expect(targetParallelism(shape(), 3)).toEqual({ parallelism: 3, slots: 3 });
  });

  it('is capped by reactive.maxParallelism, then by maxParallelism (the key groups)', () => {
    expect(targetParallelism(shape({ cap: 2 }), 5)).toEqual({ parallelism: 2, slots: 2 });
    expect(targetParallelism(shape({ maxParallelism: 4 }), 10)).toEqual({ parallelism: 4, slots: 4 });
    expect(targetParallelism(shape({ maxParallelism: 4, cap: 8 }), 10)).toEqual({ parallelism: 4, slots: 4 });
  });

  it('needs one slot per source split, and holds at least that many', () => {
    expect(targetParallelism(shape({ splits: 3 }), 2)).toEqual({ minSlots: 3 });
    expect(targetParallelism(shape({ splits: 3 }), 3)).toEqual({ parallelism: 3, slots: 3 });
    // the cap bounds the keyed vertices, not the source: 3 splits still take 3 slots
    expect(targetParallelism(shape({ splits: 3, cap: 1 }), 5)).toEqual({ parallelism: 1, slots: 3 });
    expect(targetParallelism(shape(), 0)).toEqual({ minSlots: 1 });
  });

  it('leaves a job without a keyed step at its own shape', () => {
    expect(targetParallelism(shape({ keyed: false, parallelism: 2, splits: 2 }), 6)).toEqual({
      parallelism: 2,
      slots: 2,
    });
  });

  it('agrees with slotsNeeded of the graph it builds', () => {
    const spec = fileSpec({ paths: ['/data/a.csv', '/data/b.csv'] });
    for (const slots of [2, 3, 5]) {
      const t = targetParallelism(reactiveShape(spec, buildJobGraph(spec)), slots);
      if ('minSlots' in t) throw new Error('expected a target');
      expect(slotsNeeded(buildJobGraph(reactiveSpec(spec, t.parallelism)))).toBe(t.slots);
    }
  });
});

describe('reactiveShape', () => {
  it('reads splits, keyed, the cap and the parallelism from the spec and graph', () => {
    const spec = fileSpec({ paths: ['/a.csv', '/b.csv'], extra: { reactive: { maxParallelism: 6 } } });
    expect(reactiveShape(spec, buildJobGraph(spec))).toEqual({
      splits: 2,
      keyed: true,
      maxParallelism: 128,
      cap: 6,
      parallelism: 2,
    });
    const stateless = fileSpec({ steps: [{ filter: 'temperature > 0.0' }] });
    expect(reactiveShape(stateless, buildJobGraph(stateless)).keyed).toBe(false);
  });
});

describe('reactiveSpec', () => {
  const vertexParallelism = (spec: ReturnType<typeof fileSpec>) =>
    Object.fromEntries(buildJobGraph(spec).vertices.map((v) => [v.id, v.parallelism]));

  it('runs every keyed vertex at p, ignoring the window step parallelism, and leaves the spec given alone', () => {
    const spec = fileSpec();
    const at3 = reactiveSpec(spec, 3);
    expect(at3.parallelism).toBe(3);
    expect(vertexParallelism(at3)).toEqual({ source: 1, window: 3, late: 1, sink: 1, deadletters: 1 });
    expect(spec.steps.find((s) => s.kind === 'window')?.parallelism).toBe(4);
    expect(vertexParallelism(spec).window).toBe(4);
  });

  it('rescales rollup stages too', () => {
    const spec = fileSpec({
      steps: [
        ...windowSteps,
        { keyBy: 'key' },
        { window: { type: 'tumbling', sizeMs: 3600000 }, parallelism: 1 },
        { aggregate: { windows: 'count()' } },
      ],
    });
    const p = vertexParallelism(reactiveSpec(spec, 5));
    expect(p.window).toBe(5);
    expect(p['window-2']).toBe(5);
  });

  it('keeps the source at one subtask per split for file, generator and redis-stream sources', () => {
    const file = fileSpec({ paths: ['/a.csv', '/b.csv', '/c.csv'] });
    expect(vertexParallelism(reactiveSpec(file, 1)).source).toBe(3);
    expect(vertexParallelism(reactiveSpec(file, 7)).source).toBe(3);
    const gen = parseJobSpec({
      name: 'g',
      source: { type: 'generator', sensors: 10, count: 100, seed: 1, splits: 2 },
      steps: [{ keyBy: 'sensorId' }, { window: { type: 'tumbling', sizeMs: 1000 } }, { aggregate: { n: 'count()' } }],
      sink: { type: 'stdout' },
    });
    expect(vertexParallelism(reactiveSpec(gen, 6)).source).toBe(2);
    const stream = parseJobSpec({
      name: 's',
      source: {
        type: 'redis-stream',
        stream: 'readings',
        partitions: 4,
        columns: ['sensorId:string', 'timestamp:int', 'temperature:double'],
        eventTime: { field: 'timestamp', unit: 'ms' },
      },
      steps: windowSteps,
      sink: { type: 'redis', keyPrefix: 'temps' },
    });
    const p = vertexParallelism(reactiveSpec(stream, 2));
    expect(p.source).toBe(4);
    expect(p.window).toBe(2);
  });
});

describe('rescaleReason', () => {
  it('names both parallelisms and the cause', () => {
    expect(rescaleReason(1, 3, 'TaskManagers joined')).toBe('rescale 1 → 3: TaskManagers joined');
  });
});

describe('StabilizationTimer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires once, delayMs after the last of several pokes close together', () => {
    const fired: string[][] = [];
    const t = new StabilizationTimer({ delayMs: 1000, onStable: (c) => fired.push(c) });
    t.poke('TaskManagers joined');
    vi.advanceTimersByTime(600);
    t.poke('TaskManagers joined');
    vi.advanceTimersByTime(600);
    t.poke('slots freed');
    vi.advanceTimersByTime(999);
    expect(fired).toEqual([]);
    expect(t.pending).toBe(true);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([['TaskManagers joined', 'slots freed']]);
    expect(t.pending).toBe(false);
    vi.advanceTimersByTime(10_000);
    expect(fired).toHaveLength(1);
  });

  it('fires at most maxDelayMs (default 3 × delayMs) after the first poke of a steady trickle', () => {
    const firedAt: number[] = [];
    const start = Date.now();
    const t = new StabilizationTimer({ delayMs: 1000, onStable: () => firedAt.push(Date.now() - start) });
    for (let i = 0; i < 10; i++) {
      t.poke('TaskManagers joined');
      vi.advanceTimersByTime(500);
    }
    expect(firedAt).toEqual([3000]);
  });

  it('starts a new burst after firing, and cancel drops a waiting one', () => {
    let fired = 0;
    const t = new StabilizationTimer({ delayMs: 200, maxDelayMs: 10_000, onStable: () => fired++ });
    t.poke('a');
    vi.advanceTimersByTime(200);
    t.poke('b');
    vi.advanceTimersByTime(200);
    expect(fired).toBe(2);
    t.poke('c');
    t.cancel();
    vi.advanceTimersByTime(1000);
    expect(fired).toBe(2);
  });

  it('with delayMs 0 still folds pokes of the same turn into one', () => {
    let fired = 0;
    const t = new StabilizationTimer({ delayMs: 0, onStable: () => fired++ });
    t.poke('a');
    t.poke('a');
    vi.advanceTimersByTime(0);
    expect(fired).toBe(1);
  });
});

describe('orphanedSinkParts', () => {
  const checkpoint = (tasks: [string, string[]][]): CompletedCheckpoint => ({
    jobId: jobId('0123456789abcdef'),
    checkpointId: checkpointId(7),
    epoch: epoch(2),
    savepoint: false,
    mode: 'exactly-once',
    triggeredAtMs: 0,
    completedAtMs: 1,
    tasks: tasks.map(([k, parts]) => ({ taskKey: taskKey(k), parts, stateBytes: 1 })),
    stateBytes: tasks.length,
  });
  const cp = checkpoint([
    ['source-0', ['source.split-0']],
    ['window-0', ['window.kg-0', 'sink-main.redis']],
    ['window-1', ['window.kg-1', 'sink-main.redis']],
    ['window-2', ['window.kg-2', 'sink-main.redis']],
    ['sink-0', ['sink-main.committer']],
  ]);

  it('lists the redis sink state of keyed subtasks that a scale-in removes', () => {
    const next = new Set(['source-0', 'window-0', 'window-1', 'sink-0', 'late-0', 'deadletters-0']);
    expect(orphanedSinkParts(cp, next)).toEqual([{ taskKey: 'window-2', part: 'sink-main.redis' }]);
  });

  it('lists nothing at the same or a higher parallelism, nor for key groups or file sinks', () => {
    expect(orphanedSinkParts(cp, new Set(['source-0', 'window-0', 'window-1', 'window-2', 'sink-0']))).toEqual([]);
    expect(orphanedSinkParts(cp, new Set(['source-0', 'window-0', 'window-1', 'window-2', 'window-3']))).toEqual([]);
  });

  it('maps task ids to vertex ids, rollup vertices included', () => {
    expect(vertexOfTask('window-2')).toBe('window');
    expect(vertexOfTask('window-2-0')).toBe('window-2');
    expect(vertexOfTask('source-11')).toBe('source');
  });
});
