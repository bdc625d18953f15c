import { ALERT_FIELDS } from '../detect/detect-operator.js';
import { EngineError } from '../errors/index.js';
import { inferMapTypes } from '../expr/cel.js';
import { UPDATED_AT_FIELD } from '../running/running-operator.js';
import { sourceFieldTypes } from '../spec/fields.js';
import type {
  AggregateSpec,
  DeadLetterSinkSpec,
  FieldType,
  FileSinkSpec,
  JobSpec,
  RedisStreamSinkSpec,
  SinkSpec,
  StdoutSinkSpec,
} from '../spec/types.js';
import { streamKey } from '../streams/layout.js';
import { withLocalDateField } from '../windows/calendar.js';
import { UPDATE_FIELD } from '../windows/window-operator.js';
import type { FieldDesc, JobEdge, JobGraph, JobVertex, OperatorDesc } from './types.js';

/**
 * Types of the fields a job's rows carry before keyBy: the source's fields (core/spec/fields.ts)
 * extended by every map step's outputs (types inferred from the CEL expressions).
 */
export function rowFieldTypes(spec: JobSpec): Map<string, FieldType> {
  const types = sourceFieldTypes(spec.source);
  for (const step of spec.steps) {
    if (step.kind === 'map') Object.assign(types, inferMapTypes(step.fields, types));
  }
  return new Map(Object.entries(types));
}

/**
 * The source fields the rest of a job reads: the keyBy and aggregate (or detect value) fields, the event-time field,
 * and every identifier in a filter or map expression (a superset: function names are included).
 * `undefined` means every field (a job without a window writes whole rows). Sources use it to
 * build only the fields that are read (projection), e.g. melted rows of a 29-column file.
 */
export function requiredSourceFields(spec: JobSpec): string[] | undefined {
  const keyBy = spec.steps.find((s) => s.kind === 'keyBy');
  const keyed = spec.steps.find((s) => s.kind === 'aggregate' || s.kind === 'detect' || s.kind === 'running');
  if (keyBy?.kind !== 'keyBy' || keyed === undefined) return undefined;
  const out = new Set<string>([...keyBy.fields, spec.source.eventTime.outputField]);
  if (keyed.kind === 'aggregate' || keyed.kind === 'running')
    for (const a of keyed.aggregates) if (a.field) out.add(a.field);
  if (keyed.kind === 'detect') out.add(keyed.detect.valueField);
  const identifiers = (expr: string): string[] =>
    expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ').match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? [];
  for (const step of spec.steps) {
    if (step.kind === 'filter') for (const id of identifiers(step.expr)) out.add(id);
    if (step.kind === 'map') for (const e of Object.values(step.fields)) for (const id of identifiers(e)) out.add(id);
  }
  return [...out];
}

function sourceSplits(spec: JobSpec): number {
  const s = spec.source;
  return s.type === 'file' ? s.paths.length : s.type === 'redis-stream' ? s.partitions : s.splits;
}

/**
 * Output row fields of the window-aggregate operator, in the order they are written; with
 * `allowedLatenessMs` > 0 also `update` (UPDATE_FIELD: 0 on time, n for the n-th update).
 */
export function windowResultFields(
  keyFields: string[],
  aggregates: AggregateSpec[],
  types: Map<string, FieldType>,
  allowedLatenessMs = 0,
): FieldDesc[] {
  const fields: FieldDesc[] = [{ name: 'key', type: 'string' }];
  if (keyFields.length > 1) for (const k of keyFields) fields.push({ name: k, type: types.get(k) ?? 'string' });
  fields.push({ name: 'windowStart', type: 'int' }, { name: 'windowEnd', type: 'int' });
  for (const a of aggregates) fields.push({ name: a.output, type: a.kind === 'count' ? 'int' : 'double' });
  if (allowedLatenessMs > 0) fields.push({ name: UPDATE_FIELD, type: 'int' });
  return fields;
}

/** Output row fields of the running-aggregate operator: key, key fields (2+), aggregates, `updatedAt`. */
export function runningResultFields(
  keyFields: string[],
  aggregates: AggregateSpec[],
  types: Map<string, FieldType>,
): FieldDesc[] {
  const fields: FieldDesc[] = [{ name: 'key', type: 'string' }];
  if (keyFields.length > 1) for (const k of keyFields) fields.push({ name: k, type: types.get(k) ?? 'string' });
  for (const a of aggregates) fields.push({ name: a.output, type: a.kind === 'count' ? 'int' : 'double' });
  fields.push({ name: UPDATED_AT_FIELD, type: 'int' });
  return fields;
}

const deadLetterFields: FieldDesc[] = [
  { name: 'reason', type: 'string' },
  { name: 'source', type: 'string' },
  { name: 'raw', type: 'string' },
];

/**
 * Builds the job graph: operators before keyBy are chained to the source (one subtask per input
 * split, so every split's watermark, and hence every lateness decision, is the same at any job
 * parallelism); keyBy becomes a hash edge into the window vertex (job or step parallelism); a
 * redis sink is chained to the window vertex; file and stdout sinks, and the dead-letter and
 * late-data outputs, are vertices of parallelism 1 fed by a global edge.
 * @throws EngineError SPEC_INVALID when a step asks for a parallelism the plan cannot honour.
 */
export function buildJobGraph(spec: JobSpec): JobGraph {
  const types = rowFieldTypes(spec);
  const problems: string[] = [];
  const sourceOps: OperatorDesc[] = [{ kind: 'source' }];
  // keyed stages: the first reads the source's rows; each later one (a rollup) the window results before it
  const stages: {
    keyFields: string[];
    window?: Extract<JobSpec['steps'][number], { kind: 'window' }>;
    aggregates?: AggregateSpec[];
    detect?: Extract<JobSpec['steps'][number], { kind: 'detect' }>;
    running?: Extract<JobSpec['steps'][number], { kind: 'running' }>;
  }[] = [];
  spec.steps.forEach((step, i) => {
    const stage = stages.at(-1);
    switch (step.kind) {
      case 'filter':
      case 'map':
        if (stage) {
          problems.push(`steps[${i}]: ${step.kind} after keyBy is not supported yet; move it before keyBy`);
          return;
        }
        if (step.parallelism !== undefined && step.parallelism !== sourceSplits(spec)) {
          problems.push(
            `steps[${i}].parallelism: ${step.kind} steps before keyBy are chained to the source, which runs one subtask per input split (${sourceSplits(spec)}); remove parallelism`,
          );
        }
        if (step.kind === 'filter') sourceOps.push({ kind: 'filter', expr: step.expr, stepIndex: i });
        else sourceOps.push({ kind: 'map', fields: step.fields, stepIndex: i });
        return;
      case 'keyBy':
        stages.push({ keyFields: step.fields });
        return;
      case 'window':
        if (stage) stage.window = step;
        return;
      case 'aggregate':
        if (stage) stage.aggregates = step.aggregates;
        return;
      case 'detect':
        if (stage) stage.detect = step;
        return;
      case 'running':
        if (stage) stage.running = step;
        return;
    }
  });
  if (problems.length > 0)
    throw new EngineError('SPEC_INVALID', `invalid job spec: ${problems.join('; ')}`, { problems });

  const vertices: JobVertex[] = [];
  const edges: JobEdge[] = [];
  const splits = sourceSplits(spec);
  vertices.push({ id: 'source', name: `Source: ${spec.source.type}`, parallelism: splits, operators: sourceOps });

  // redis and bullmq sinks write in parallel, chained to the last keyed vertex
  const sinkIsVertex = spec.sink.type !== 'redis' && spec.sink.type !== 'bullmq';
  let mainProducer = 'source';
  let mainFields: FieldDesc[] = [...types].map(([name, type]) => ({ name, type }));
  let stageTypes = types;

  stages.forEach((stage, k) => {
    const { keyFields } = stage;
    const last = k === stages.length - 1;
    // the keyed stage: window + aggregate, or detect, or running (the schema allows detect and running alone only)
    let keyed:
      | {
          ops: OperatorDesc[];
          name: string;
          parallelism?: number;
          inputs: string[];
          result: FieldDesc[];
          upsertKey?: string[];
        }
      | undefined;
    if (stage.window && stage.aggregates) {
      const aggregates = stage.aggregates;
      keyed = {
        ops: [{ kind: 'window', window: stage.window.window, aggregates, keyFields }],
        name: `${k === 0 ? 'Window' : `Rollup by ${keyFields.join(', ')}: window`}(${stage.window.window.type}) → Aggregate`,
        parallelism: stage.window.parallelism,
        inputs: aggregates.flatMap((a) => (a.field ? [a.field] : [])),
        result: withLocalDateField(
          windowResultFields(keyFields, aggregates, stageTypes, stage.window.window.allowedLatenessMs),
          stage.window.window,
        ),
      };
    } else if (stage.detect) {
      if (spec.sink.type === 'redis') {
        const problem =
          'sink: a redis sink writes window results (<key>:<windowStart>); send detect alerts to a file or stdout sink';
        throw new EngineError('SPEC_INVALID', `invalid job spec: ${problem}`, { problems: [problem] });
      }
      const detect = stage.detect;
      keyed = {
        ops: [{ kind: 'detect', detect: detect.detect, keyFields }],
        name: `Detect(${detect.detect.rules.map((r) => r.name).join(', ')})`,
        parallelism: detect.parallelism,
        inputs: [detect.detect.valueField],
        result: ALERT_FIELDS.map((f) => ({ ...f })),
      };
    } else if (stage.running) {
      if (spec.sink.type === 'bullmq') {
        const problem = 'sink: running aggregates are upserts; send them to a redis, file or stdout sink';
        throw new EngineError('SPEC_INVALID', `invalid job spec: ${problem}`, { problems: [problem] });
      }
      const running = stage.running;
      keyed = {
        ops: [{ kind: 'running', aggregates: running.aggregates, keyFields }],
        name: 'Running aggregate',
        parallelism: running.parallelism,
        inputs: running.aggregates.flatMap((a) => (a.field ? [a.field] : [])),
        result: runningResultFields(keyFields, running.aggregates, stageTypes),
        upsertKey: ['key'],
      };
    }
    if (!keyed) return;
    const parallelism = keyed.parallelism ?? spec.parallelism;
    // the keyed vertex (`window` for the first stage whatever its operator, `window-2`… for
    // rollups: the JobManager restores key groups to keyed vertices by id) needs the key and its
    // operator's inputs; at the first stage the event-time field rides along so a late reading
    // reaches the late-data output whole (sensor, time, value)
    const id = keyedVertexId(k);
    const needed = new Set<string>(keyFields);
    for (const f of keyed.inputs) needed.add(f);
    if (k === 0) needed.add(spec.source.eventTime.outputField);
    const hashSchema: FieldDesc[] = [...needed].map((name) => ({ name, type: stageTypes.get(name) ?? 'double' }));
    const ops = keyed.ops;
    if (last && !sinkIsVertex)
      ops.push({
        kind: 'sink',
        sink: spec.sink,
        role: 'main',
        fields: keyed.result,
        ...(keyed.upsertKey ? { upsertKey: keyed.upsertKey } : {}),
      });
    // a chained sink shows in the name, as Flink names chains: "Window(tumbling) → Aggregate → Sink: redis"
    const name = last && !sinkIsVertex ? `${keyed.name} → Sink: ${spec.sink.type}` : keyed.name;
    vertices.push({ id, name, parallelism, operators: ops });
    edges.push({
      id: edges.length,
      source: mainProducer,
      target: id,
      output: 'main',
      partitioner: 'hash',
      keyFields,
      schema: hashSchema,
    });
    mainProducer = id;
    mainFields = keyed.result;
    stageTypes = new Map(keyed.result.map((f) => [f.name, f.type]));
    if (k === 0) {
      const lateFields: FieldDesc[] = [...hashSchema, { name: 'watermarkMs', type: 'double' }];
      vertices.push({
        id: 'late',
        name: 'Late data',
        parallelism: 1,
        operators: [{ kind: 'sink', sink: spec.lateData, role: 'late', fields: lateFields }],
      });
      edges.push({
        id: edges.length,
        source: id,
        target: 'late',
        output: 'late',
        partitioner: 'global',
        keyFields: [],
        schema: lateFields,
      });
    } else {
      // a rollup input is never late (it carries its window's last instant, before the watermark
      // that fired it: docs in core/runtime/chain.ts); if one were, it is a dead letter, not lost
      edges.push({
        id: edges.length,
        source: id,
        target: 'deadletters',
        output: 'deadLetter',
        partitioner: 'global',
        keyFields: [],
        schema: deadLetterFields,
      });
    }
  });
  if (stages.length === 0 && (spec.sink.type === 'redis' || spec.sink.type === 'bullmq')) {
    const problem = `sink: a ${spec.sink.type} sink needs a keyed step (keyBy, then window + aggregate${spec.sink.type === 'bullmq' ? ' or detect' : ''})`;
    throw new EngineError('SPEC_INVALID', `invalid job spec: ${problem}`, { problems: [problem] });
  }

  if (sinkIsVertex) {
    vertices.push({
      id: 'sink',
      name: `Sink: ${spec.sink.type}`,
      parallelism: 1,
      operators: [{ kind: 'sink', sink: spec.sink as FileSinkSpec | StdoutSinkSpec, role: 'main', fields: mainFields }],
    });
    edges.push({
      id: edges.length,
      source: mainProducer,
      target: 'sink',
      output: 'main',
      partitioner: 'global',
      keyFields: [],
      schema: mainFields,
    });
  }
  vertices.push({
    id: 'deadletters',
    name: 'Dead letters',
    parallelism: 1,
    operators: [{ kind: 'sink', sink: spec.deadLetter, role: 'deadLetter', fields: deadLetterFields }],
  });
  edges.push({
    id: edges.length,
    source: 'source',
    target: 'deadletters',
    output: 'deadLetter',
    partitioner: 'global',
    keyFields: [],
    schema: deadLetterFields,
  });

  return { name: spec.name, maxParallelism: spec.maxParallelism, vertices, edges };
}

/** Slots a job needs with slot sharing (one subtask of every vertex per slot): the largest parallelism. */
export function slotsNeeded(graph: JobGraph): number {
  return Math.max(...graph.vertices.map((v) => v.parallelism));
}

/** Sink paths a job writes to, for the summary. */
export function outputPaths(spec: JobSpec): {
  results: string;
  deadLetters: string;
  late: string;
  /** where dead letters go, for `fluxo deadletters`: the sink spec, with any password in its url masked */
  deadLetterSink: DeadLetterSinkSpec;
} {
  const where = (s: SinkSpec | RedisStreamSinkSpec): string =>
    s.type === 'file'
      ? s.path
      : s.type === 'stdout'
        ? 'stdout'
        : s.type === 'bullmq'
          ? `BullMQ queue ${s.queue}`
          : s.type === 'redis-stream'
            ? `redis stream ${streamKey(s.stream, 0)}`
            : spec.steps.some((st) => st.kind === 'running')
              ? `redis hashes ${s.keyPrefix}:<key>`
              : `redis hashes ${s.keyPrefix}:<key>:<windowStart>`;
  const dl = spec.deadLetter;
  const deadLetterSink = dl.type === 'redis-stream' && dl.url !== undefined ? { ...dl, url: maskPassword(dl.url) } : dl;
  return {
    results: where(spec.sink),
    deadLetters: where(spec.deadLetter),
    late: where(spec.lateData),
    deadLetterSink,
  };
}

/** `redis://user:secret@host` → `redis://user:***@host` (a URL that does not parse is returned as is). */
export function maskPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password === '') return url;
    u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/** Id of the vertex of keyed stage `k` (0-based): `window`, then `window-2`, `window-3`… for rollup stages. */
export function keyedVertexId(k: number): string {
  return k === 0 ? 'window' : `window-${k + 1}`;
}

/** True for the vertex of a keyed stage (its state is per key group; see `keyedVertexId`). */
export function isKeyedVertex(vertexId: string): boolean {
  return vertexId === 'window' || /^window-\d+$/.test(vertexId);
}
