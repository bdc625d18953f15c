import { compileFilter, compileMap, type ExprFields, inferMapTypes } from '../expr/cel.js';
import { type OperatorDesc, sinkEpoch, type TaskDeploymentDescriptor } from '../graph/types.js';
import { BullMqSink } from '../sinks/bullmq-sink.js';
import { RedisStreamSink } from '../sinks/redis-stream-sink.js';
import { sourceExprFields } from '../spec/fields.js';
import type { Row } from '../spec/types.js';
import { calendarPeriodsOf, LOCAL_DATE_FIELD } from '../windows/calendar.js';
import { WindowOperator } from '../windows/window-operator.js';
import { DetectDownstream } from './detect-downstream.js';
import { KeyedDownstream } from './keyed-downstream.js';
import type { OutputGate } from './output.js';
import { RunningDownstream } from './running-downstream.js';
import { isLineSinkSpec, LineSink, RedisHashSink, type TransactionalSink } from './sinks.js';
import type { Downstream, TaskCounters } from './transport.js';

export type { Downstream } from './transport.js';

/** The end of a chain that is not a sink: records leave the task through the output gate. */
class GateOutput implements Downstream {
  constructor(private readonly gate: OutputGate) {}
  processElement(row: Row, ts: number, swm: number): void {
    this.gate.collect('main', row, ts, swm);
  }
  processWatermark(wm: number): void {
    this.gate.broadcastWatermark(wm);
  }
  async endOfInput(): Promise<void> {}
}

class FilterOperator implements Downstream {
  constructor(
    private readonly test: (row: Row) => boolean,
    private readonly next: Downstream,
    private readonly onError: (row: Row, err: unknown) => void,
    private readonly counters: TaskCounters,
  ) {}
  processElement(row: Row, ts: number, swm: number): void {
    let keep: boolean;
    try {
      keep = this.test(row);
    } catch (err) {
      this.onError(row, err);
      return;
    }
    if (keep) this.next.processElement(row, ts, swm);
    else this.counters.filtered++;
  }
  processWatermark(wm: number): void {
    this.next.processWatermark(wm);
  }
  endOfInput(): Promise<void> {
    return this.next.endOfInput();
  }
}

/**
 * A map step. An expression that fails, or yields a number that is not finite (division by
 * zero, overflow), sends the record to the dead-letter output instead of writing null or Infinity.
 */
class MapOperator implements Downstream {
  private readonly outputs: string[];
  constructor(
    private readonly fn: (row: Row) => Row,
    outputs: string[],
    private readonly next: Downstream,
    private readonly onError: (row: Row, err: unknown) => void,
  ) {
    this.outputs = outputs;
  }
  processElement(row: Row, ts: number, swm: number): void {
    let out: Row;
    try {
      out = this.fn(row);
    } catch (err) {
      this.onError(row, err);
      return;
    }
    const names = this.outputs;
    for (let i = 0; i < names.length; i++) {
      const v = out[names[i]];
      if (typeof v === 'number' && !Number.isFinite(v)) {
        this.onError(row, new Error(`${names[i]} is ${v}, not a finite number`));
        return;
      }
    }
    this.next.processElement(out, ts, swm);
  }
  processWatermark(wm: number): void {
    this.next.processWatermark(wm);
  }
  endOfInput(): Promise<void> {
    return this.next.endOfInput();
  }
}

/**
 * Keyed window aggregation over the key groups this subtask owns; late readings go to the `late`
 * side output. In a rollup stage (vertex `window-2`…) the input rows are the window results of
 * the stage before, each with its window's last instant as event time and as watermark tag. The
 * stage before fires a window when its watermark passes the window's end and passes that watermark
 * on only after the row, so this stage's watermark (the minimum over its inputs) is still before
 * the end when the row arrives: rollup inputs are never late, at any parallelism. Should one be,
 * it becomes a dead letter with its reason.
 */
class WindowDownstream extends KeyedDownstream<WindowOperator> {
  readonly op: WindowOperator;
  constructor(
    desc: TaskDeploymentDescriptor,
    o: Extract<OperatorDesc, { kind: 'window' }>,
    next: Downstream,
    gate: OutputGate,
    counters: TaskCounters,
    deadLetter: ChainContext['deadLetter'],
  ) {
    super(desc, next, counters);
    const calendar = calendarPeriodsOf(o.window);
    this.op = new WindowOperator(
      { window: o.window, aggregates: o.aggregates, ...this.keyedConfig(desc, o.keyFields) },
      {
        emit: (row) => {
          if (calendar) row[LOCAL_DATE_FIELD] = calendar.localDate(row.windowStart as number);
          // event time and watermark tag: the window's last instant, so a rollup stage judges
          // lateness by the window, not by the (later) watermark that fired it
          const last = (row.windowEnd as number) - 1;
          next.processElement(row, last, last);
        },
        late:
          desc.vertexId === 'window'
            ? this.lateOutput(gate)
            : (row, ts, watermark) =>
                deadLetter(
                  `late rollup input: event time ${ts} ≤ watermark ${watermark}`,
                  `${desc.vertexId} (rollup by ${o.keyFields.join(', ')})`,
                  row,
                ),
      },
    );
  }
  processElement(row: Row, ts: number, swm: number): void {
    this.op.processElement(row, ts, swm);
  }
  override sync(): void {
    super.sync();
    this.counters.windowsEmitted = this.op.metrics.windowsEmitted;
  }
}

/** Job-id fields of a late reading in a bullmq late-data sink: every field but `watermarkMs` (timing-dependent). */
function lateIdFields(fields: { name: string }[]): string[] {
  return fields.filter((f) => f.name !== 'watermarkMs').map((f) => f.name);
}

export interface ChainContext {
  desc: TaskDeploymentDescriptor;
  gate: OutputGate;
  counters: TaskCounters;
  redisUrl: string;
  /** sends a record that failed in an operator to the dead-letter output */
  deadLetter: (reason: string, where: string, row: Row) => void;
}

export interface Chain {
  head: Downstream;
  /** every link, head first (for pending() and close()) */
  links: Downstream[];
  window?: { sync(): void; snapshot(): [string, Uint8Array][]; restore(part: string, bytes: Uint8Array): boolean };
  /** the transactional sinks of the chain, to `begin` before the task starts (two-phase commit and restore) */
  sinks: TransactionalSink[];
}

/**
 * The fencing epoch of a task's transactional sinks (file and redis), or `undefined` when its
 * sinks write directly (no checkpoints, or `at-least-once`): `sinkEpoch(desc)`, the job attempt
 * (the JobManager numbers a job's first run 1, +1 per restart) plus the epoch base of a job
 * submitted from a savepoint. The ONE place it is computed: both sinks get it from here.
 */
export function transactionalEpoch(desc: TaskDeploymentDescriptor): number | undefined {
  return desc.spec.checkpoint?.mode === 'exactly-once' ? sinkEpoch(desc) : undefined;
}

/**
 * True for a task of a job's first run, whose redis sinks may take their key prefix over from
 * another job. The JobManager numbers the first attempt 1; descriptors built by hand may use 0.
 */
function isFirstAttempt(desc: TaskDeploymentDescriptor): boolean {
  return desc.attempt <= 1;
}

/**
 * Builds the operator chain of a vertex after its head (the source, or the input gate), from the
 * last operator backwards, so each link holds a direct reference to the next.
 */
export function buildChain(ctx: ChainContext): Chain {
  const vertex = ctx.desc.graph.vertices.find((v) => v.id === ctx.desc.vertexId);
  if (!vertex) throw new Error(`vertex ${ctx.desc.vertexId} not in graph`);
  const ops = vertex.operators.filter((o) => o.kind !== 'source');
  // the fields each filter/map sees: the source's, plus the outputs of the maps before it
  const seen: ExprFields[] = [];
  let fields: ExprFields = sourceExprFields(ctx.desc.spec.source);
  for (const o of ops) {
    seen.push(fields);
    if (o.kind === 'map') fields = { ...fields, ...inferMapTypes(o.fields, fields) };
  }
  let next: Downstream = new GateOutput(ctx.gate);
  const links: Downstream[] = [next];
  let window: WindowDownstream | DetectDownstream | RunningDownstream | undefined;
  const sinks: TransactionalSink[] = [];
  for (let i = ops.length - 1; i >= 0; i--) {
    const o = ops[i];
    let link: Downstream;
    switch (o.kind) {
      case 'filter': {
        const where = `steps[${o.stepIndex}].filter`;
        link = new FilterOperator(
          compileFilter(o.expr, seen[i]),
          next,
          (row, err) => ctx.deadLetter(`${where}: ${(err as Error).message}`, where, row),
          ctx.counters,
        );
        break;
      }
      case 'map': {
        const where = `steps[${o.stepIndex}].map`;
        link = new MapOperator(compileMap(o.fields, seen[i]), Object.keys(o.fields), next, (row, err) =>
          ctx.deadLetter(`${where}: ${(err as Error).message}`, where, row),
        );
        break;
      }
      case 'window':
        window = new WindowDownstream(ctx.desc, o, next, ctx.gate, ctx.counters, ctx.deadLetter);
        link = window;
        break;
      case 'detect':
        window = new DetectDownstream(ctx.desc, o, next, ctx.gate, ctx.counters);
        link = window;
        break;
      case 'running':
        window = new RunningDownstream(ctx.desc, o, next, ctx.gate, ctx.counters);
        link = window;
        break;
      case 'sink':
        if (isLineSinkSpec(o.sink)) {
          // at-least-once: a restored task appends to what the failed attempt wrote (rows after
          // the checkpoint come again: duplicates, never losses); a fresh one starts the file anew
          const sink = new LineSink(o.sink, o.fields, ctx.counters, o.role, transactionalEpoch(ctx.desc), {
            append: ctx.desc.restore !== undefined,
          });
          sinks.push(sink);
          link = sink;
        } else if (o.sink.type === 'bullmq') {
          // idempotent by job id: no two-phase commit needed (core/sinks/bullmq-sink.ts); late
          // readings have no window identity, so their ids default to all their fields
          const counters = ctx.counters;
          const spec = o.role === 'late' ? { ...o.sink, idFields: o.sink.idFields ?? lateIdFields(o.fields) } : o.sink;
          link = new BullMqSink(spec, ctx.desc.spec.name, ctx.redisUrl, () => {
            counters.rowsWritten++;
          });
        } else if (o.sink.type === 'redis-stream') {
          // a side output, at-least-once with deterministic row ids (core/sinks/redis-stream-sink.ts)
          const counters = ctx.counters;
          link = new RedisStreamSink(o.sink, ctx.redisUrl, o.fields, () => {
            counters.rowsWritten++;
          });
        } else {
          const epoch = transactionalEpoch(ctx.desc);
          const tx =
            epoch === undefined ? undefined : { jobId: ctx.desc.jobId, epoch, claim: isFirstAttempt(ctx.desc) };
          const sink = new RedisHashSink(o.sink, ctx.redisUrl, o.fields, ctx.counters, o.role, tx, {
            upsertKey: o.upsertKey,
          });
          if (sink.transactional) sinks.push(sink);
          link = sink;
        }
        break;
      default:
        throw new Error(`unexpected operator ${(o as OperatorDesc).kind} inside a chain`);
    }
    links.unshift(link);
    next = link;
  }
  return { head: next, links, window, sinks };
}
