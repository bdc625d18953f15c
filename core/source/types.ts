import type { DeadLetter, Row } from '../spec/types.js';

/**
 * One poll's worth of source output. The reader clears and refills the arrays it is given, so a
 * task can reuse one `SourceBatch` for its whole life (no per-poll allocation).
 * Rows and dead letters are each in input order; their relative order does not matter because a
 * dead letter changes no state and does not move the watermark.
 */
export interface SourceBatch {
  /** accepted records, already typed, with the event-time output field set */
  rows: Row[];
  /** event time of each row in ms since the epoch (UTC), parallel to `rows` */
  timestamps: number[];
  /** rejected lines with their reason and position */
  deadLetters: DeadLetter[];
  /** number of input lines consumed by this poll (accepted, rejected or skipped header) */
  linesRead: number;
}

export function newSourceBatch(): SourceBatch {
  return { rows: [], timestamps: [], deadLetters: [], linesRead: 0 };
}

/**
 * Position of a split reader: what to read next. Designed for checkpoints (next issue): a
 * restored reader resumes at `nextLine` / `byteOffset` and never re-reads the record at the
 * boundary (BR-14).
 */
export interface SourcePosition {
  split: number;
  /** 1-based number of the next line to read */
  nextLine: number;
  /** byte offset of the next line in the uncompressed stream */
  byteOffset: number;
  /**
   * redis-stream sources: per partition read by this reader, the id of the last entry read
   * (`0-0` = none yet); the reader resumes after it.
   */
  entryIds?: Record<string, string>;
  /** bounded redis-stream sources: per partition, the id of the last entry to read */
  endIds?: Record<string, string>;
}

/** Reads one split (one file, or one share of a generator) of a source. */
export interface SourceReader {
  /** human-readable, e.g. `file examples/data/energy.csv.gz` */
  readonly description: string;
  /**
   * Clears `out` and fills it with the results of up to `maxLines` input lines.
   * Resolves `true` while more input may follow, `false` once the split is exhausted
   * (the final batch may still hold data).
   * @throws EngineError code `SOURCE_IO` when the file cannot be opened or read.
   */
  poll(out: SourceBatch, maxLines: number): Promise<boolean>;
  position(): SourcePosition;
  /** An unbounded (followed) reader reads to the current end of its input, then ends. Optional. */
  stopFollowing?(): void;
  close(): Promise<void>;
}
