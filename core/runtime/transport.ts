import type { TaskLocation } from '../graph/types.js';
import type { Row } from '../spec/types.js';

/**
 * How a task reaches other tasks. The slot runtime implements it: a consumer in the same slot is
 * called directly; one in another slot of the same TaskManager gets the frame through a local
 * channel (worker message port); a remote one through the TaskManagers' gRPC data plane.
 */
/**
 * A batch of records for a consumer in the same slot: rows are handed over by reference, with no
 * encoding (like Flink's chained/local exchange). Only transports whose `isLocal` says so get one.
 */
export interface LocalBatch {
  channel: number;
  rows: Row[];
  timestamps: number[];
  sourceWatermarks: number[];
}

/** What travels on a channel: an encoded frame (core/codec), or a local batch of records. */
export type ChannelMessage = Uint8Array | LocalBatch;

export interface Transport {
  /** Sends one frame to a consumer task. The transport may take ownership of a frame's buffer. */
  sendFrame(consumer: TaskLocation, frame: ChannelMessage): void;
  /** True when `consumer` runs in this thread, so records may be handed over as a LocalBatch. */
  isLocal(consumer: TaskLocation): boolean;
  /** Returns `credits` for output channel `outputChannel` (`edgeId:consumerSubtask`) to a producer task. */
  sendCredit(producer: TaskLocation, outputChannel: string, credits: number): void;
}

/** Counters a task reports (heartbeats and final state). */
export interface TaskCounters {
  recordsIn: number;
  recordsOut: number;
  linesRead: number;
  rejected: number;
  filtered: number;
  late: number;
  windowsEmitted: number;
  keys: number;
  rowsWritten: number;
  watermark: number;
  /**
   * ms (wall clock, fractional) spent processing input: source batches (read + chain) or input
   * frames (decode + chain). Measured per batch/frame, never per record. Monotonic per attempt.
   */
  busyMs: number;
  /** ms spent waiting for downstream capacity (output credits, a sink's write backpressure). Monotonic. */
  backpressuredMs: number;
  /** when these counters were read (ms since the epoch, the TaskManager's clock): rates divide by its deltas */
  sampledAtMs: number;
  /** records emitted per output edge, by edge id (`JobEdge.id` as a string); their sum is `recordsOut` */
  recordsOutByEdge: Record<string, number>;
}

export function newCounters(): TaskCounters {
  return {
    recordsIn: 0,
    recordsOut: 0,
    linesRead: 0,
    rejected: 0,
    filtered: 0,
    late: 0,
    windowsEmitted: 0,
    keys: 0,
    rowsWritten: 0,
    watermark: Number.NEGATIVE_INFINITY,
    busyMs: 0,
    backpressuredMs: 0,
    sampledAtMs: 0,
    recordsOutByEdge: {},
  };
}

/** One link of an operator chain. Chained operators call each other directly, passing rows by reference. */
export interface Downstream {
  processElement(row: Row, ts: number, sourceWatermark: number): void;
  processWatermark(wm: number): void;
  endOfInput(): Promise<void>;
  /** work the task must wait for before taking more input (a sink's write backpressure), or null */
  pending?(): Promise<void> | null;
  /** release resources without flushing (task canceled or failed) */
  close?(): void;
  /**
   * Checkpoint barrier `checkpointId` reached this operator (two-phase commit, phase 1): make
   * everything written so far durable but not visible, and return state parts for the checkpoint.
   */
  preCommit?(checkpointId: number): [string, Uint8Array][];
  /**
   * Resolves when everything pre-committed so far is durable (a file sink's fsyncs run in the
   * background); the task acknowledges a checkpoint only then. Rejects with the sink's failure.
   * Absent or null: pre-committed output is durable at once.
   */
  durable?(): Promise<void> | null;
  /** Checkpoint `checkpointId` completed (phase 2): make what was pre-committed up to it visible. */
  commit?(checkpointId: number): void;
}
