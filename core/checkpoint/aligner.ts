/**
 * Task-side barrier alignment for a task with N input channels: Flink's aligned barrier handling
 * (`SingleCheckpointBarrierHandler` with its `BarrierHandlerState`s), step 3 of Carbone et al.
 * 2015. Pure: it tracks which channels delivered barrier n and says what to do.
 *
 * Exactly-once: after barrier n on a channel, hold that channel's later frames (`BLOCK_CHANNEL`)
 * until barrier n arrived on every channel that has not ended (`ALIGNED`): then snapshot, forward
 * barrier n downstream, and only then release the blocked channels in the listed order.
 * At-least-once: never block (`CONTINUE`); snapshot when the last barrier arrives.
 *
 * Bounded buffers (FLINK-4975, cases BR-21): the aligner holds no data. The caller keeps a blocked
 * channel's frames in that channel's credit-bounded input queue and stops granting it credit, so a
 * long alignment backpressures the producer instead of growing memory. The checkpoint timeout
 * bounds how long that can last.
 *
 * Protocol violations (a channel index out of range, a barrier after the channel's end, the same
 * barrier twice on one channel) throw EngineError `PROTOCOL`: a FIFO channel cannot produce them.
 */
import { EngineError } from '../errors/index.js';
import type { CheckpointId } from './ids.js';
import type { CheckpointMode } from './types.js';

/**
 * - `BLOCK_CHANNEL`: exactly-once; hold `channel`'s later frames.
 * - `CONTINUE`: at-least-once; barrier noted, keep reading `channel`.
 * - `ALIGNED`: barrier `checkpointId` arrived on every live channel: snapshot now, forward the
 *   barrier, then release the channels in `release` (ascending).
 * - `SUBSUMED`: a newer barrier arrived before `aborted` aligned: decline `aborted` (reason
 *   `SUBSUMED`), release `release`; if `aligned`, snapshot `checkpointId` at once, else keep
 *   aligning it (in exactly-once the barrier's channel is now blocked).
 * - `IGNORED`: an older barrier (of a finished or aborted checkpoint); drop it.
 */
export type BarrierOutcome =
  | { outcome: 'BLOCK_CHANNEL'; checkpointId: CheckpointId; channel: number }
  | { outcome: 'CONTINUE'; checkpointId: CheckpointId; channel: number }
  | { outcome: 'ALIGNED'; checkpointId: CheckpointId; release: number[] }
  | { outcome: 'SUBSUMED'; aborted: CheckpointId; checkpointId: CheckpointId; aligned: boolean; release: number[] }
  | { outcome: 'IGNORED'; checkpointId: CheckpointId };

/** After an end of input: `ALIGNED` as above, or `NO_CHANGE`. */
export type EndOfInputOutcome =
  | { outcome: 'ALIGNED'; checkpointId: CheckpointId; release: number[] }
  | { outcome: 'NO_CHANGE' };

/** `ABORTED`: stop aligning `aborted` (decline it), release `release`; `IGNORED`: nothing to abort. */
export type AbortOutcome = { outcome: 'ABORTED'; aborted: CheckpointId; release: number[] } | { outcome: 'IGNORED' };

export class BarrierAligner {
  private readonly ended: boolean[];
  private endedCount = 0;
  /** channels that delivered the current barrier */
  private readonly seen: boolean[];
  private seenCount = 0;
  private current: CheckpointId | null = null;
  /** highest id aligned or aborted; barriers at or below it are ignored */
  private finished = 0;

  /**
   * @param channels number of input channels (>= 1), indexed 0..channels-1
   * @param mode `exactly-once` blocks channels, `at-least-once` never does
   * @throws EngineError `INTERNAL` for a channel count < 1
   */
  constructor(
    readonly channels: number,
    readonly mode: CheckpointMode,
  ) {
    if (!Number.isInteger(channels) || channels < 1)
      throw new EngineError('INTERNAL', `a barrier aligner needs >= 1 channel, got ${channels}`);
    this.ended = new Array<boolean>(channels).fill(false);
    this.seen = new Array<boolean>(channels).fill(false);
  }

  /** The checkpoint being aligned, or null. */
  get aligning(): CheckpointId | null {
    return this.current;
  }

  /** Whether `channel`'s frames must be held (exactly-once, between its barrier and alignment). */
  isBlocked(channel: number): boolean {
    return this.mode === 'exactly-once' && this.current !== null && this.seen[channel] === true;
  }

  /** Barrier `checkpointId` arrived on `channel`. */
  onBarrier(channel: number, checkpointId: CheckpointId): BarrierOutcome {
    this.checkChannel(channel);
    if (this.ended[channel])
      throw new EngineError('PROTOCOL', `barrier ${checkpointId} after end of input on channel ${channel}`);
    if (this.current === null) {
      if (checkpointId <= this.finished) return { outcome: 'IGNORED', checkpointId };
      return this.start(channel, checkpointId);
    }
    if (checkpointId < this.current) return { outcome: 'IGNORED', checkpointId };
    if (checkpointId === this.current) {
      if (this.seen[channel]) throw new EngineError('PROTOCOL', `barrier ${checkpointId} twice on channel ${channel}`);
      this.seen[channel] = true;
      this.seenCount++;
      if (this.complete()) return this.aligned(channel, checkpointId);
      return this.waiting(channel, checkpointId);
    }
    const aborted = this.current;
    const release = this.finish(aborted);
    const next = this.start(channel, checkpointId);
    return { outcome: 'SUBSUMED', aborted, checkpointId, aligned: next.outcome === 'ALIGNED', release };
  }

  /** `channel` delivered END_OF_INPUT: it no longer holds back any alignment. */
  onEndOfInput(channel: number): EndOfInputOutcome {
    this.checkChannel(channel);
    if (this.ended[channel]) return { outcome: 'NO_CHANGE' };
    this.ended[channel] = true;
    this.endedCount++;
    if (this.seen[channel]) {
      this.seen[channel] = false;
      this.seenCount--;
    }
    if (this.current !== null && this.complete()) {
      const id = this.current;
      return { outcome: 'ALIGNED', checkpointId: id, release: this.finish(id) };
    }
    return { outcome: 'NO_CHANGE' };
  }

  /**
   * Abort `checkpointId` (a cancellation barrier, or the coordinator aborted it). Aborting a newer
   * id than the one aligning aborts the current one too, and later barriers up to `checkpointId`
   * are ignored.
   */
  abort(checkpointId: CheckpointId): AbortOutcome {
    if (this.current !== null && checkpointId >= this.current) {
      const aborted = this.current;
      const release = this.finish(aborted);
      this.finished = Math.max(this.finished, checkpointId);
      return { outcome: 'ABORTED', aborted, release };
    }
    this.finished = Math.max(this.finished, checkpointId);
    return { outcome: 'IGNORED' };
  }

  private start(channel: number, id: CheckpointId): BarrierOutcome {
    this.current = id;
    this.seen[channel] = true;
    this.seenCount = 1;
    if (this.complete()) return this.aligned(channel, id);
    return this.waiting(channel, id);
  }

  /** The barrier on `channel` completed the alignment; that channel was never blocked. */
  private aligned(channel: number, id: CheckpointId): BarrierOutcome {
    return { outcome: 'ALIGNED', checkpointId: id, release: this.finish(id).filter((c) => c !== channel) };
  }

  private waiting(channel: number, id: CheckpointId): BarrierOutcome {
    return this.mode === 'exactly-once'
      ? { outcome: 'BLOCK_CHANNEL', checkpointId: id, channel }
      : { outcome: 'CONTINUE', checkpointId: id, channel };
  }

  private complete(): boolean {
    return this.seenCount + this.endedCount >= this.channels;
  }

  /** Ends the current alignment; returns the channels to release (none in at-least-once). */
  private finish(id: CheckpointId): number[] {
    const release: number[] = [];
    for (let c = 0; c < this.channels; c++) {
      if (this.seen[c] && this.mode === 'exactly-once') release.push(c);
      this.seen[c] = false;
    }
    this.seenCount = 0;
    this.current = null;
    this.finished = Math.max(this.finished, id);
    return release;
  }

  private checkChannel(channel: number): void {
    if (!Number.isInteger(channel) || channel < 0 || channel >= this.channels)
      throw new EngineError('PROTOCOL', `input channel ${channel} out of range [0, ${this.channels})`);
  }
}
