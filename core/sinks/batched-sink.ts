/**
 * The skeleton of sinks that write rows to an external system in batches (bullmq, redis-stream):
 * rows are collected, a batch goes out when full and at every watermark, batches are written one
 * at a time in order, and the task waits for the write in flight (`pending`, backpressure). A
 * failed write is kept and thrown at the sink's next call, so the task fails at its next record,
 * watermark or end of input, never silently.
 */
import type { EngineError } from '../errors/index.js';
import type { Row } from '../spec/types.js';

export abstract class BatchedSink<T> {
  private batch: T[] = [];
  private inflight: Promise<void> | null = null;
  private failure: EngineError | null = null;

  /**
   * @param batchSize items per batch before it is written without waiting for a watermark
   * @param onRow called for each row taken (the task's `rowsWritten` counter)
   */
  constructor(
    private readonly batchSize: number,
    private readonly onRow: () => void,
  ) {}

  /** The item a row becomes (called on the task's thread, per row). */
  protected abstract itemOf(row: Row): T;
  /** Writes one batch; resolves when the external system has it. */
  protected abstract writeBatch(items: T[]): Promise<void>;
  /** The error a failed write fails the task with (naming the sink). */
  protected abstract failureOf(err: unknown): EngineError;
  /** Closes the connection: `graceful` after the last write, else at once (task canceled or failed). */
  protected abstract disconnect(graceful: boolean): Promise<void>;

  processElement(row: Row): void {
    if (this.failure) throw this.failure;
    this.batch.push(this.itemOf(row));
    this.onRow();
    if (this.batch.length >= this.batchSize) this.flush();
  }

  processWatermark(): void {
    if (this.failure) throw this.failure;
    this.flush();
  }

  pending(): Promise<void> | null {
    if (this.failure) throw this.failure;
    return this.inflight;
  }

  async endOfInput(): Promise<void> {
    this.flush();
    while (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
    await this.disconnect(true);
  }

  close(): void {
    void this.disconnect(false).catch(() => {});
  }

  private flush(): void {
    if (this.batch.length === 0) return;
    const items = this.batch;
    this.batch = [];
    const run = (this.inflight ?? Promise.resolve())
      .then(() => (this.failure ? undefined : this.writeBatch(items)))
      .catch((err: unknown) => {
        this.failure ??= this.failureOf(err);
      })
      .finally(() => {
        if (this.inflight === run) this.inflight = null;
      });
    this.inflight = run;
  }
}
