import type { TaskLocation } from '../graph/types.js';

/**
 * How a task reaches other tasks. The slot runtime implements it: a consumer in the same slot is
 * called directly; one in another slot of the same TaskManager gets the frame through a local
 * channel (worker message port); a remote one through the TaskManagers' gRPC data plane.
 */
export interface Transport {
  /** Sends one encoded frame to a consumer task. The transport may take ownership of `frame`'s buffer. */
  sendFrame(consumer: TaskLocation, frame: Uint8Array): void;
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
}

export function newCounters(): TaskCounters {
  return { recordsIn: 0, recordsOut: 0, linesRead: 0, rejected: 0, filtered: 0, late: 0, windowsEmitted: 0, keys: 0, rowsWritten: 0, watermark: Number.NEGATIVE_INFINITY };
}
