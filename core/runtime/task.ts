import { BarrierAligner } from '../checkpoint/aligner.js';
import {
  checkpointId as asCheckpointId,
  epoch as asEpoch,
  jobId as asJobId,
  taskKey as asTaskKey,
} from '../checkpoint/ids.js';
import type { CheckpointStore } from '../checkpoint/store.js';
import { type DeclineReason, splitPart } from '../checkpoint/types.js';
import {
  decodeBarrier,
  decodeRecords,
  decodeStatus,
  decodeWatermark,
  RowCodec,
  readFrameHeader,
} from '../codec/index.js';
import type { ClusterConfig } from '../config/index.js';
import { EngineError } from '../errors/index.js';
import { crashPoint, faults } from '../fault/inject.js';
import { requiredSourceFields } from '../graph/build.js';
import type { TaskDeploymentDescriptor, TaskLocation } from '../graph/types.js';
import type { Logger } from '../log/index.js';
import { createSourceReader, type SourcePosition, type SourceReader } from '../source/index.js';
import { newSourceBatch } from '../source/types.js';
import type { Row } from '../spec/types.js';
import { BoundedOutOfOrdernessWatermarks, WatermarkValve } from '../time/watermarks.js';
import { buildChain, type Chain } from './chain.js';
import { OutputGate } from './output.js';
import { type ChannelMessage, type LocalBatch, newCounters, type TaskCounters, type Transport } from './transport.js';

/** fault injection is on in this process (FLUXO_FAULTS; tests only) */
const FAULTS = faults() !== null;

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
  /** where checkpoint state goes and how acknowledgements reach the coordinator; absent = no checkpoints */
  checkpoints?: TaskCheckpointEnv;
}

/** A task's side of the checkpoint protocol (core/checkpoint): the store and the JobManager's ear. */
export interface TaskCheckpointEnv {
  store: CheckpointStore;
  /**
   * state for `checkpointId` is written: tell the coordinator. `alignmentMs`: how long the task's
   * barrier alignment took (first barrier to last, ms; 0 for a source or a single input).
   */
  ack(task: Task, checkpointId: number, parts: string[], stateBytes: number, alignmentMs: number): void;
  /** this task cannot take part in `checkpointId` */
  decline(task: Task, checkpointId: number, reason: DeclineReason, message: string): void;
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
  /** checkpoints triggered at this source, taken after the batch in hand */
  private readonly triggers: { id: number; ts: number; flags: number; halt: boolean }[] = [];
  /** resolves when the task is canceled: a source halted by stop-with-savepoint waits on it */
  private readonly cancelSignal: Promise<void>;
  private signalCancel!: () => void;
  private sourceLoopEnded = false;
  /** exactly-once alignment of an input task (absent without checkpoints) */
  private readonly aligner: BarrierAligner | undefined;
  /** frames held back on channels blocked by alignment, per channel */
  private readonly blocked = new Map<number, ChannelMessage[]>();
  /** per checkpoint in alignment: its barrier's timestamp and flags, and when its first barrier arrived (performance.now()) */
  private readonly barrierMeta = new Map<number, { ts: number; flags: number; alignStart: number }>();
  /** a source's position and watermark state from the restored checkpoint */
  private restoredSource: { position: SourcePosition; maxTimestamp: number; emittedWatermark: number } | undefined;
  private begun = false;
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
    this.cancelSignal = new Promise((res) => {
      this.signalCancel = res;
    });
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
    const mode = desc.spec.checkpoint?.mode;
    if (mode && this.inputs.length > 0) this.aligner = new BarrierAligner(this.inputs.length, mode);
  }

  /**
   * Checkpoint `checkpointId` was triggered at this source: after the batch in hand it records
   * its position and watermark, emits barrier `checkpointId` on every output, writes its state
   * and acknowledges. With `halt` (stop-with-savepoint, Flink's synchronous savepoint) the source
   * then reads nothing more, emits no watermark or status, and waits to be canceled: nothing is
   * output after the savepoint that a job restored from it would output again.
   * Returns false when the source has no more input to read (the caller declines).
   */
  triggerCheckpoint(checkpointId: number, timestampMs: number, flags: number, halt = false): boolean {
    if (!this.isSource || this.sourceLoopEnded || this.cancelled) return false;
    this.triggers.push({ id: checkpointId, ts: timestampMs, flags, halt });
    return true;
  }

  /** Checkpoint `checkpointId` completed: sinks make their pre-committed output visible (phase 2). */
  notifyCheckpointComplete(checkpointId: number): void {
    if (this.failed) return;
    if (FAULTS) crashPoint('checkpoint-complete', checkpointId);
    try {
      for (const l of this.chain.links) l.commit?.(checkpointId);
    } catch (err) {
      this.fail(err);
    }
  }

  /** Writes snapshot parts to the store, then acknowledges; a failed write declines (TASK_ERROR). */
  private persist(checkpointId: number, parts: [string, Uint8Array][], alignmentMs = 0): void {
    const cp = this.env.checkpoints;
    if (!cp) return;
    const { jobId, attempt, taskId } = this.desc;
    const refBase = {
      jobId: asJobId(jobId),
      checkpointId: asCheckpointId(checkpointId),
      epoch: asEpoch(attempt),
      taskKey: asTaskKey(taskId),
    };
    let bytes = 0;
    for (const [, b] of parts) bytes += b.byteLength;
    const writes: Promise<unknown>[] = [
      cp.store.putTaskStates(parts.map(([part, bytes]) => ({ ref: { ...refBase, part }, bytes }))),
    ];
    // sinks' pre-committed output must be durable before the checkpoint counts as acknowledged
    for (const l of this.chain.links) {
      const d = l.durable?.();
      if (d) writes.push(d);
    }
    Promise.all(writes).then(
      () => {
        if (FAULTS) crashPoint('state-write', checkpointId);
        cp.ack(
          this,
          checkpointId,
          parts.map(([p]) => p),
          bytes,
          alignmentMs,
        );
      },
      (err: Error) => cp.decline(this, checkpointId, 'TASK_ERROR', `cannot write state: ${err.message}`),
    );
  }

  /** Barrier `checkpointId` arrived on every live input: snapshot, forward the barrier, release blocked channels. */
  private onAligned(checkpointId: number, release: number[]): void {
    const meta = this.barrierMeta.get(checkpointId);
    this.barrierMeta.delete(checkpointId);
    const alignmentMs = meta ? performance.now() - meta.alignStart : 0;
    this.chain.window?.sync();
    const parts = this.chain.window?.snapshot() ?? [];
    for (const l of this.chain.links) if (l.preCommit) parts.push(...l.preCommit(checkpointId));
    this.gate.broadcastBarrier(checkpointId, meta?.ts ?? Date.now(), meta?.flags ?? 0);
    this.persist(checkpointId, parts, alignmentMs);
    this.releaseChannels(release);
  }

  private onBarrier(channel: number, frame: Uint8Array): void {
    const b = decodeBarrier(frame);
    const aligner = this.aligner;
    if (!aligner) return;
    if (!this.barrierMeta.has(b.checkpointId))
      this.barrierMeta.set(b.checkpointId, { ts: b.timestampMs, flags: b.flags, alignStart: performance.now() });
    const r = aligner.onBarrier(channel, asCheckpointId(b.checkpointId));
    switch (r.outcome) {
      case 'ALIGNED':
        this.onAligned(r.checkpointId, r.release);
        return;
      case 'SUBSUMED':
        this.env.checkpoints?.decline(this, r.aborted, 'SUBSUMED', `barrier ${r.checkpointId} arrived first`);
        if (r.aligned) this.onAligned(r.checkpointId, r.release);
        else this.releaseChannels(r.release);
        return;
      case 'BLOCK_CHANNEL':
        if (FAULTS) crashPoint('alignment', b.checkpointId);
        return; // isBlocked now says so
      default:
        return; // CONTINUE, IGNORED
    }
  }

  /** Puts the frames held on `channels` back at the head of the queue, each channel's in its order. */
  private releaseChannels(channels: number[]): void {
    const released: ChannelMessage[] = [];
    for (const ch of channels) {
      const held = this.blocked.get(ch);
      if (held) released.push(...held);
      this.blocked.delete(ch);
    }
    if (released.length > 0) this.queue.unshift(...released);
  }

  /** The counters, brought up to date (records out, window metrics): for heartbeats and reports. */
  liveCounters(): TaskCounters {
    this.counters.recordsOut = this.gate.recordsOut;
    this.counters.recordsOutByEdge = this.gate.recordsOutByEdge();
    this.counters.sampledAtMs = Date.now();
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

  /**
   * Loads the task's state from the checkpoint named in its descriptor (a failover), before the
   * task starts: a source's position and watermark, window key groups, sinks' committer state
   * (which cuts output committed after that checkpoint and commits what it had pre-committed).
   * Without a restore, opens the sinks fresh.
   * @throws EngineError `REDIS_UNAVAILABLE` / `PROTOCOL` when the state cannot be read
   */
  async restoreState(): Promise<void> {
    const r = this.desc.restore;
    const cp = this.env.checkpoints;
    if (!r || !cp) {
      await this.beginSinks(new Map());
      return;
    }
    const parts = new Map<string, Uint8Array>();
    for (const p of r.parts) {
      const bytes = await cp.store.getTaskState({
        jobId: asJobId(r.jobId ?? this.desc.jobId),
        checkpointId: asCheckpointId(r.checkpointId),
        epoch: asEpoch(r.epoch),
        taskKey: asTaskKey(p.taskKey),
        part: p.part,
      });
      if (!bytes) throw new EngineError('PROTOCOL', `checkpoint ${r.checkpointId} has no state ${p.taskKey}/${p.part}`);
      parts.set(p.part, bytes);
    }
    for (const [part, bytes] of parts) {
      if (part.startsWith('source.split-')) {
        this.restoredSource = JSON.parse(new TextDecoder().decode(bytes)) as typeof this.restoredSource;
      } else if (part.startsWith(`${this.desc.vertexId}.`)) {
        this.chain.window?.restore(part, bytes);
      }
    }
    await this.beginSinks(parts);
  }

  private async beginSinks(parts: Map<string, Uint8Array>): Promise<void> {
    if (this.begun) return;
    this.begun = true;
    await Promise.all(this.chain.sinks.map((sink) => sink.begin(parts.get(sink.statePart))));
  }

  /** Starts the task: a source begins reading; an input task is already driven by its frames. */
  start(): void {
    if (this.started) return;
    this.started = true;
    if (!this.begun) throw new EngineError('INTERNAL', `task ${this.desc.taskId} started before restoreState()`);
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
    this.signalCancel();
    this.resolveDone();
  }

  private stopTimers(): void {
    if (this.flushTimer) clearInterval(this.flushTimer);
  }

  private finish(): void {
    this.stopTimers();
    this.chain.window?.sync();
    this.counters.recordsOut = this.gate.recordsOut;
    this.counters.recordsOutByEdge = this.gate.recordsOutByEdge();
    this.counters.sampledAtMs = Date.now();
    this.resolveDone();
  }

  private fail(err: unknown): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.failed = true;
    this.stopTimers();
    for (const l of this.chain.links) l.close?.();
    this.signalCancel();
    this.rejectDone(err);
  }

  /** Waits until the outputs have credit and no sink holds the task back; the wait counts as backpressured time. */
  private async waitForDownstream(): Promise<void> {
    let t0 = 0;
    if (!this.gate.hasCapacity()) {
      t0 = performance.now();
      await this.gate.waitForCapacity();
    }
    for (const l of this.chain.links) {
      const p = l.pending?.();
      if (p) {
        if (t0 === 0) t0 = performance.now();
        await p;
      }
    }
    if (t0 !== 0) this.counters.backpressuredMs += performance.now() - t0;
  }

  private async runSource(): Promise<void> {
    const { spec } = this.desc;
    const restored = this.restoredSource;
    const reader = createSourceReader(spec.source, this.desc.subtask, this.desc.parallelism, restored?.position, {
      fields: requiredSourceFields(spec),
      redisUrl: this.env.redisUrl,
    });
    this.reader = reader;
    const wmGen = new BoundedOutOfOrdernessWatermarks(spec.source.watermark.outOfOrdernessMs);
    // a restored source goes on from its checkpointed watermark: lateness decisions after the
    // restore are the ones the failure-free run made (BR-17)
    if (restored && Number.isFinite(restored.maxTimestamp)) wmGen.restore(restored.maxTimestamp);
    const idleTimeoutMs = spec.source.watermark.idleTimeoutMs;
    const batch = newSourceBatch();
    const head = this.chain.head;
    let emitted = restored && restored.emittedWatermark !== null ? restored.emittedWatermark : Number.NEGATIVE_INFINITY;
    let lastActivity = Date.now();
    let idle = false;
    try {
      let more = true;
      while (more && !this.cancelled && !this.stopRequested) {
        // busy time: reading and processing a batch that had input (an empty poll is idle)
        const t0 = performance.now();
        more = await reader.poll(batch, this.env.config.sourceBatchLines ?? this.env.config.batchRecords);
        const busyFrom = batch.linesRead > 0 ? t0 : performance.now();
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
        if (FAULTS) crashPoint('records', this.counters.recordsIn);
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
        this.counters.busyMs += performance.now() - busyFrom;
        while (this.triggers.length > 0) {
          // the source's snapshot: where to read next, and its watermark state (BR-14, BR-17)
          const t = this.triggers.shift() as { id: number; ts: number; flags: number; halt: boolean };
          const state = { position: reader.position(), maxTimestamp: wmGen.maxTimestamp, emittedWatermark: emitted };
          const bytes = new TextEncoder().encode(JSON.stringify(state));
          this.gate.broadcastBarrier(t.id, t.ts, t.flags);
          this.persist(t.id, [[splitPart('source', this.desc.subtask), bytes]]);
          if (t.halt) {
            // stop-with-savepoint: the barrier is the last thing this source sends
            this.gate.flush();
            for (const later of this.triggers.splice(0))
              this.env.checkpoints?.decline(this, later.id, 'NOT_READY', 'the source halted for stop-with-savepoint');
            await this.cancelSignal;
            break;
          }
        }
        await this.waitForDownstream();
        // an unbounded source at the end of its input: look again shortly, without spinning
        if (more && batch.linesRead === 0) await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      this.sourceLoopEnded = true;
      await reader.close();
    }
    for (const t of this.triggers.splice(0))
      this.env.checkpoints?.decline(this, t.id, 'NOT_READY', 'the source has ended');
    if (this.cancelled) return;
    await head.endOfInput();
    await this.gate.endOfInput();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.cancelled) {
        const msg = this.queue.shift() as ChannelMessage;
        // the frame header is read once: its kind and channel serve both the alignment check and dispatch
        const header = msg instanceof Uint8Array ? readFrameHeader(msg) : undefined;
        const msgChannel = header ? header.channel : (msg as LocalBatch).channel;
        if (this.aligner?.isBlocked(msgChannel)) {
          // held until the checkpoint aligns; no credit goes back meanwhile (bounded, BR-21)
          let held = this.blocked.get(msgChannel);
          if (!held) {
            held = [];
            this.blocked.set(msgChannel, held);
          }
          held.push(msg);
          continue;
        }
        const t0 = performance.now();
        if (!header) {
          const batch = msg as LocalBatch;
          const input = this.inputs[batch.channel];
          if (!input) throw new EngineError('PROTOCOL', `batch for unknown input channel ${batch.channel}`);
          const { rows, timestamps, sourceWatermarks } = batch;
          for (let i = 0; i < rows.length; i++) this.onRecord(rows[i], timestamps[i], sourceWatermarks[i]);
          this.env.transport.sendCredit(input.producer, input.creditKey, 1);
          this.counters.busyMs += performance.now() - t0;
          await this.waitForDownstream();
          continue;
        }
        const frame = msg as Uint8Array;
        const { kind, channel } = header;
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
            this.onBarrier(channel, frame);
            break;
          case KIND_END_OF_INPUT: {
            const eoi = this.aligner?.onEndOfInput(channel);
            if (eoi?.outcome === 'ALIGNED') this.onAligned(eoi.checkpointId, eoi.release);
            this.advance((this.valve as WatermarkValve).onEndOfInput(channel));
            this.endedChannels++;
            if (this.endedChannels === this.inputs.length) {
              await this.finishInputTask();
              return;
            }
            break;
          }
          default:
            throw new EngineError('PROTOCOL', `unknown frame kind ${kind} on channel ${channel}`);
        }
        this.counters.busyMs += performance.now() - t0;
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
