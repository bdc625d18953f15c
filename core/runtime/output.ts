import {
  encodeBarrier,
  encodeEndOfInput,
  encodeStatus,
  encodeWatermark,
  FrameWriter,
  RowCodec,
} from '../codec/index.js';
import type { ClusterConfig } from '../config/index.js';
import type { JobEdge, OutputTag, TaskDeploymentDescriptor, TaskLocation } from '../graph/types.js';
import type { Row } from '../spec/types.js';
import { keyGroupOf, keyOf, subtaskForKeyGroup } from '../state/keygroups.js';
import type { ChannelMessage, LocalBatch, Transport } from './transport.js';

const RECORDS_KIND = 1;

/** One output channel: this task → one consumer subtask of one edge. */
class OutputChannel {
  /** encodes records for a consumer in another slot; undefined for a local consumer */
  readonly writer: FrameWriter | undefined;
  /** records for a consumer in this slot, handed over without encoding */
  local: LocalBatch | undefined;
  /** frames not yet sent, in order; records frames wait for credit, control frames only for what is ahead of them */
  readonly pending: ChannelMessage[] = [];
  pendingRecordFrames = 0;
  /** records in the batch being built */
  batched = 0;
  constructor(
    readonly consumer: TaskLocation,
    /** `edgeId:consumerSubtask`: the credit key */
    readonly key: string,
    /** this task's channel index at the consumer */
    readonly channel: number,
    public credits: number,
    readonly isLocal: boolean,
  ) {
    if (!isLocal) this.writer = new FrameWriter();
  }
}

function isRecords(m: ChannelMessage): boolean {
  return !(m instanceof Uint8Array) || m[0] === RECORDS_KIND;
}

class EdgeOutput {
  readonly codec: RowCodec;
  /** records emitted on this edge */
  records = 0;
  readonly channels: OutputChannel[];
  private roundRobin = 0;
  constructor(
    readonly edge: JobEdge,
    consumers: TaskLocation[],
    consumerChannel: number,
    credits: number,
    private readonly maxParallelism: number,
    transport: Transport,
  ) {
    this.codec = new RowCodec(edge.schema);
    this.channels = consumers.map(
      (c, i) => new OutputChannel(c, `${edge.id}:${i}`, consumerChannel, credits, transport.isLocal(c)),
    );
  }

  /** Picks the consumer subtask for a row (Flink partitioners; hash = key group → subtask). */
  target(row: Row): OutputChannel {
    const n = this.channels.length;
    switch (this.edge.partitioner) {
      case 'hash': {
        const kg = keyGroupOf(keyOf(row, this.edge.keyFields), this.maxParallelism);
        return this.channels[subtaskForKeyGroup(kg, n, this.maxParallelism)];
      }
      case 'rebalance':
        this.roundRobin = (this.roundRobin + 1) % n;
        return this.channels[this.roundRobin];
      default:
        return this.channels[0];
    }
  }
}

/**
 * The output side of a task: record writers per edge that batch records into binary frames and
 * send them under credit-based flow control (a consumer grants `channelCredits` frames per channel
 * and returns one credit per records frame it has processed). Watermarks, status and end-of-input
 * frames travel in order behind the records of the same channel and need no credit.
 */
export class OutputGate {
  private readonly byTag = new Map<OutputTag, EdgeOutput[]>();
  private readonly byKey = new Map<string, OutputChannel>();
  private readonly all: OutputChannel[] = [];
  private waiter: (() => void) | undefined;

  constructor(
    desc: TaskDeploymentDescriptor,
    private readonly transport: Transport,
    private readonly config: Pick<ClusterConfig, 'batchRecords' | 'channelCredits'>,
  ) {
    for (const out of desc.outputs) {
      const edge = desc.graph.edges.find((e) => e.id === out.edgeId);
      if (!edge) throw new Error(`unknown edge ${out.edgeId}`);
      const eo = new EdgeOutput(
        edge,
        out.consumers,
        out.consumerChannel,
        config.channelCredits,
        desc.graph.maxParallelism,
        transport,
      );
      const list = this.byTag.get(edge.output) ?? [];
      list.push(eo);
      this.byTag.set(edge.output, list);
      for (const ch of eo.channels) {
        this.byKey.set(ch.key, ch);
        this.all.push(ch);
      }
    }
  }

  /** Emits one record on every edge of output `tag`. */
  collect(tag: OutputTag, row: Row, ts: number, sourceWatermark: number): void {
    const edges = this.byTag.get(tag);
    if (!edges) return;
    for (let i = 0; i < edges.length; i++) {
      const eo = edges[i];
      const ch = eo.target(row);
      const w = ch.writer;
      if (w) {
        if (ch.batched === 0) w.beginRecords(ch.channel);
        w.writeRecord(eo.codec, row, ts, sourceWatermark);
      } else {
        let b = ch.local;
        if (!b) {
          b = { channel: ch.channel, rows: [], timestamps: [], sourceWatermarks: [] };
          ch.local = b;
        }
        b.rows.push(row);
        b.timestamps.push(ts);
        b.sourceWatermarks.push(sourceWatermark);
      }
      eo.records++;
      if (++ch.batched >= this.config.batchRecords) this.seal(ch);
    }
  }

  /** Records emitted so far over all output edges (a record sent on two edges counts twice); read per heartbeat, not per record. */
  get recordsOut(): number {
    let n = 0;
    for (const list of this.byTag.values()) for (const eo of list) n += eo.records;
    return n;
  }

  /** Records emitted so far per output edge, by edge id (as a string). */
  recordsOutByEdge(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const list of this.byTag.values()) for (const eo of list) out[String(eo.edge.id)] = eo.records;
    return out;
  }

  /** Sends every partly filled batch now (buffer timeout, or before a control frame). */
  flush(): void {
    for (const ch of this.all) if (ch.batched > 0) this.seal(ch);
  }

  broadcastWatermark(wm: number): void {
    for (const ch of this.all) this.enqueueControl(ch, encodeWatermark(ch.channel, wm));
  }

  /** Sends checkpoint barrier `checkpointId` on every channel, behind the records already emitted. */
  broadcastBarrier(checkpointId: number, timestampMs: number, flags: number): void {
    for (const ch of this.all) this.enqueueControl(ch, encodeBarrier(ch.channel, checkpointId, timestampMs, flags));
  }

  broadcastStatus(idle: boolean): void {
    for (const ch of this.all) this.enqueueControl(ch, encodeStatus(ch.channel, idle));
  }

  /** Sends end-of-input on every channel, then resolves once every pending frame has left. */
  async endOfInput(): Promise<void> {
    for (const ch of this.all) this.enqueueControl(ch, encodeEndOfInput(ch.channel));
    while (!this.drained()) await new Promise<void>((r) => (this.waiter = r));
  }

  onCredit(key: string, credits: number): void {
    const ch = this.byKey.get(key);
    if (!ch) return;
    ch.credits += credits;
    this.drain(ch);
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w();
    }
  }

  /** False while some channel has a records frame waiting for credit: the producer should pause (backpressure). */
  hasCapacity(): boolean {
    for (const ch of this.all) if (ch.pendingRecordFrames > 0) return false;
    return true;
  }

  async waitForCapacity(): Promise<void> {
    while (!this.hasCapacity()) await new Promise<void>((r) => (this.waiter = r));
  }

  private drained(): boolean {
    for (const ch of this.all) if (ch.pending.length > 0) return false;
    return true;
  }

  private seal(ch: OutputChannel): void {
    let frame: ChannelMessage;
    if (ch.writer) frame = ch.writer.finish();
    else {
      frame = ch.local as LocalBatch;
      ch.local = undefined;
    }
    ch.batched = 0;
    ch.pending.push(frame);
    ch.pendingRecordFrames++;
    this.drain(ch);
  }

  private enqueueControl(ch: OutputChannel, frame: ChannelMessage): void {
    if (ch.batched > 0) this.seal(ch);
    ch.pending.push(frame);
    this.drain(ch);
  }

  private drain(ch: OutputChannel): void {
    while (ch.pending.length > 0) {
      const f = ch.pending[0];
      if (isRecords(f)) {
        if (ch.credits <= 0) return;
        ch.credits--;
        ch.pendingRecordFrames--;
      }
      ch.pending.shift();
      this.transport.sendFrame(ch.consumer, f);
    }
  }
}
