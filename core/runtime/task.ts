import { decodeRecords, decodeStatus, decodeWatermark, RowCodec, readFrameHeader } from '../codec/index.js';
import type { ClusterConfig } from '../config/index.js';
import { EngineError } from '../errors/index.js';
import { requiredSourceFields } from '../graph/build.js';
import type { TaskDeploymentDescriptor, TaskLocation } from '../graph/types.js';
import type { Logger } from '../log/index.js';
import { createSourceReader, type SourceReader } from '../source/index.js';
import { newSourceBatch } from '../source/types.js';
import type { Row } from '../spec/types.js';
import { BoundedOutOfOrdernessWatermarks, WatermarkValve } from '../time/watermarks.js';
import { buildChain, type Chain } from './chain.js';
import { OutputGate } from './output.js';
import { type ChannelMessage, newCounters, type TaskCounters, type Transport } from './transport.js';

const KIND_RECORDS = 1;
const KIND_WATERMARK = 2;
const KIND_STATUS = 3;
const KIND_BARRIER = 4;
const KIND_END_OF_INPUT = 5;

export interface TaskEnvironment {
  transport: Transport;
  config: Pick<ClusterConfig, 'batchRecords' | 'channelCredits' | 'bufferTimeoutMs'> & { sourceBatchLines?: number };
  log: Logger;
  /** the cluster's Redis, default for redis sinks */
  redisUrl: string;
}

interface InputChannel {
  producer: TaskLocation;
  codec: RowCodec;
  creditKey: string;
}

/**
 * One running subtask: a source loop or an input gate in front of an operator chain, and an
 * output gate behind it. Input frames are processed one at a time; the task takes the next frame
 * only when its outputs have capacity (credit) and its sinks are not blocked, so a slow consumer
 * backpressures all the way to the source while memory stays bounded by the credits.
 */
export class Task {
  readonly counters: TaskCounters = newCounters();
  readonly gate: OutputGate;
  readonly done: Promise<void>;
  private readonly chain: Chain;
  private readonly inputs: InputChannel[] = [];
  private readonly valve: WatermarkValve | undefined;
  private readonly queue: ChannelMessage[] = [];
  private endedChannels = 0;
  private pumping = false;
  private cancelled = false;
  private failed = false;
  private stopRequested = false;
  private reader: SourceReader | undefined;
  private started = false;
  private resolveDone!: () => void;
  private rejectDone!: (err: unknown) => void;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly onRecord = (row: Row, ts: number, swm: number): void => {
    this.counters.recordsIn++;
    this.chain.head.processElement(row, ts, swm);
  };

  constructor(
    readonly desc: TaskDeploymentDescriptor,
    private readonly env: TaskEnvironment,
  ) {
    this.done = new Promise((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
    this.done.catch(() => {});
    this.gate = new OutputGate(desc, env.transport, env.config);
    this.chain = buildChain({
      desc,
      gate: this.gate,
      counters: this.counters,
      redisUrl: env.redisUrl,
      deadLetter: (reason, where, row) => {
        this.counters.rejected++;
        this.gate.collect(
          'deadLetter',
          { reason, source: where, raw: JSON.stringify(row) },
          0,
          Number.NEGATIVE_INFINITY,
        );
      },
    });
    for (const input of desc.inputs) {
      const edge = desc.graph.edges.find((e) => e.id === input.edgeId);
      if (!edge) throw new EngineError('INTERNAL', `unknown edge ${input.edgeId}`);
      const codec = new RowCodec(edge.schema);
      input.producers.forEach((producer, j) => {
        this.inputs[input.channelBase + j] = { producer, codec, creditKey: `${edge.id}:${desc.subtask}` };
      });
    }
    if (this.inputs.length > 0) this.valve = new WatermarkValve(this.inputs.length);
  }

  /** The counters, brought up to date (records out, window metrics): for heartbeats and reports. */
  liveCounters(): TaskCounters {
    this.counters.recordsOut = this.gate.recordsOut;
    this.chain.window?.sync();
    return this.counters;
  }

  /** true when the task ended through cancel(), not by finishing or failing */
  get wasCancelled(): boolean {
    return this.cancelled && !this.failed;
  }

  get isSource(): boolean {
    return this.desc.vertexId === 'source';
  }

  /** Starts the task: a source begins reading; an input task is already driven by its frames. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.flushTimer = setInterval(() => this.gate.flush(), this.env.config.bufferTimeoutMs);
    this.flushTimer.unref();
    if (this.isSource)
      this.runSource().then(
        () => this.finish(),
        (err) => this.fail(err),
      );
    else if (this.inputs.length === 0) this.finishInputTask().catch((err) => this.fail(err));
  }

  /** A data-plane frame for this task arrived. */
  onFrame(frame: ChannelMessage): void {
    if (this.cancelled) return;
    this.queue.push(frame);
    if (!this.pumping) this.pump().catch((err) => this.fail(err));
  }

  onCredit(outputChannel: string, credits: number): void {
    this.gate.onCredit(outputChannel, credits);
  }

  /**
   * Ends a source's input gracefully after the batch in hand (Flink's stop with drain): the
   * source sends end-of-input, so every window downstream fires and sinks flush. No-op for other tasks.
   */
  stopSource(): void {
    if (this.reader?.stopFollowing) this.reader.stopFollowing();
    else this.stopRequested = true;
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.stopTimers();
    for (const l of this.chain.links) l.close?.();
    this.resolveDone();
  }

  private stopTimers(): void {
    if (this.flushTimer) clearInterval(this.flushTimer);
  }

  private finish(): void {
    this.stopTimers();
    this.chain.window?.sync();
    this.counters.recordsOut = this.gate.recordsOut;
    this.resolveDone();
  }

  private fail(err: unknown): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.failed = true;
    this.stopTimers();
    for (const l of this.chain.links) l.close?.();
    this.rejectDone(err);
  }

  private async waitForDownstream(): Promise<void> {
    if (!this.gate.hasCapacity()) await this.gate.waitForCapacity();
    for (const l of this.chain.links) {
      const p = l.pending?.();
      if (p) await p;
    }
  }

  private async runSource(): Promise<void> {
    const { spec } = this.desc;
    const reader = createSourceReader(spec.source, this.desc.subtask, this.desc.parallelism, undefined, {
      fields: requiredSourceFields(spec),
    });
    this.reader = reader;
    const wmGen = new BoundedOutOfOrdernessWatermarks(spec.source.watermark.outOfOrdernessMs);
    const idleTimeoutMs = spec.source.watermark.idleTimeoutMs;
    const batch = newSourceBatch();
    const head = this.chain.head;
    let emitted = Number.NEGATIVE_INFINITY;
    let lastActivity = Date.now();
    let idle = false;
    try {
      let more = true;
      while (more && !this.cancelled && !this.stopRequested) {
        more = await reader.poll(batch, this.env.config.sourceBatchLines ?? this.env.config.batchRecords);
        this.counters.linesRead += batch.linesRead;
        const { rows, timestamps, deadLetters } = batch;
        if (rows.length > 0) {
          lastActivity = Date.now();
          if (idle) {
            idle = false;
            this.gate.broadcastStatus(false);
          }
        }
        for (let i = 0; i < rows.length; i++) {
          const ts = timestamps[i];
          wmGen.onEvent(ts);
          this.counters.recordsIn++;
          head.processElement(rows[i], ts, wmGen.current);
        }
        for (let i = 0; i < deadLetters.length; i++) {
          this.counters.rejected++;
          this.gate.collect('deadLetter', deadLetters[i] as unknown as Row, 0, Number.NEGATIVE_INFINITY);
        }
        if (wmGen.current > emitted) {
          emitted = wmGen.current;
          this.counters.watermark = emitted;
          head.processWatermark(emitted);
        } else if (idleTimeoutMs > 0 && !idle && rows.length === 0 && Date.now() - lastActivity >= idleTimeoutMs) {
          idle = true;
          this.gate.broadcastStatus(true);
        }
        await this.waitForDownstream();
        // an unbounded source at the end of its input: look again shortly, without spinning
        if (more && batch.linesRead === 0) await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await reader.close();
    }
    if (this.cancelled) return;
    await head.endOfInput();
    await this.gate.endOfInput();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.cancelled) {
        const msg = this.queue.shift() as ChannelMessage;
        if (!(msg instanceof Uint8Array)) {
          const input = this.inputs[msg.channel];
          if (!input) throw new EngineError('PROTOCOL', `batch for unknown input channel ${msg.channel}`);
          const { rows, timestamps, sourceWatermarks } = msg;
          for (let i = 0; i < rows.length; i++) this.onRecord(rows[i], timestamps[i], sourceWatermarks[i]);
          this.env.transport.sendCredit(input.producer, input.creditKey, 1);
          await this.waitForDownstream();
          continue;
        }
        const frame = msg;
        const { kind, channel } = readFrameHeader(frame);
        const input = this.inputs[channel];
        if (!input) throw new EngineError('PROTOCOL', `frame for unknown input channel ${channel}`);
        switch (kind) {
          case KIND_RECORDS:
            decodeRecords(frame, input.codec, this.onRecord);
            this.env.transport.sendCredit(input.producer, input.creditKey, 1);
            break;
          case KIND_WATERMARK:
            this.advance((this.valve as WatermarkValve).onWatermark(channel, decodeWatermark(frame)));
            break;
          case KIND_STATUS:
            this.advance(
              decodeStatus(frame)
                ? (this.valve as WatermarkValve).onIdle(channel)
                : (this.valve as WatermarkValve).onActive(channel),
            );
            break;
          case KIND_BARRIER:
            break; // checkpoints: next issue
          case KIND_END_OF_INPUT:
            this.advance((this.valve as WatermarkValve).onEndOfInput(channel));
            this.endedChannels++;
            if (this.endedChannels === this.inputs.length) {
              await this.finishInputTask();
              return;
            }
            break;
          default:
            throw new EngineError('PROTOCOL', `unknown frame kind ${kind} on channel ${channel}`);
        }
        await this.waitForDownstream();
      }
    } finally {
      this.pumping = false;
    }
  }

  private advance(wm: number | null): void {
    if (wm === null) return;
    this.counters.watermark = wm;
    if (wm !== Number.POSITIVE_INFINITY) this.chain.head.processWatermark(wm);
  }

  private async finishInputTask(): Promise<void> {
    await this.chain.head.endOfInput();
    await this.gate.endOfInput();
    this.finish();
  }
}
