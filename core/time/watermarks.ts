/**
 * Event-time watermarks: the per-split generator and the valve that combines input channels.
 *
 * Convention (shared/cases/README.md): `W = max(ts seen) − outOfOrdernessMs`, −∞ before the first
 * reading, and window `[s, e)` fires once `W ≥ e`. (Flink writes the same rule as
 * `W = max − B − 1` and fires at `W ≥ e − 1`; the two are equivalent.) All values are ms since
 * the Unix epoch; ±Infinity are valid watermarks.
 */

/**
 * Bounded out-of-orderness watermarks for one source split (Flink's
 * `BoundedOutOfOrdernessWatermarks`). `current` never decreases.
 */
export class BoundedOutOfOrdernessWatermarks {
  private maxTs = Number.NEGATIVE_INFINITY;
  private readonly boundMs: number;

  /** @param outOfOrdernessMs B ≥ 0, in ms */
  constructor(outOfOrdernessMs: number) {
    if (!(outOfOrdernessMs >= 0) || !Number.isFinite(outOfOrdernessMs)) {
      throw new RangeError(`outOfOrdernessMs must be a finite number ≥ 0, got ${outOfOrdernessMs}`);
    }
    this.boundMs = outOfOrdernessMs;
  }

  /** Records an accepted reading's event time (ms). Rejected lines must not be passed here. */
  onEvent(ts: number): void {
    if (ts > this.maxTs) this.maxTs = ts;
  }

  /** `max(ts seen) − B`, or −Infinity before the first event. */
  get current(): number {
    return this.maxTs - this.boundMs;
  }

  /** Largest event time seen so far (−Infinity before the first event); for snapshots. */
  get maxTimestamp(): number {
    return this.maxTs;
  }

  /** Restores the generator from a snapshot (`maxTimestamp`). */
  restore(maxTimestamp: number): void {
    this.maxTs = maxTimestamp;
  }
}

enum ChannelStatus {
  Active = 0,
  Idle = 1,
  Ended = 2,
}

/**
 * Combines the watermarks of `channels` input channels into one operator watermark, like Flink's
 * `StatusWatermarkValve`:
 *
 * - each channel's watermark only moves forward (a lower value is ignored);
 * - the output is the minimum over **active, aligned** channels. A channel is aligned while its
 *   watermark is ≥ the last output; a channel that comes back from idle behind the output does not
 *   pull the output back and is ignored until it catches up (BR-01 phase B);
 * - idle channels do not hold the output back. When every channel that has not ended is idle,
 *   the output becomes the maximum watermark over those idle channels (Flink's
 *   "flush all watermarks when the last active channel goes idle");
 * - an ended channel (`onEndOfInput`) counts as +Infinity; when all have ended the output is
 *   +Infinity, which fires every window (BR-02). An ended channel alone does not push the output
 *   to +Infinity while other channels are merely idle (more conservative than Flink, which would
 *   emit MAX_WATERMARK there and make any later data from the idle channels late);
 * - the output never decreases. Every method returns the new output when it advanced, else null.
 *
 * Watermarks that arrive on an idle channel are remembered (they count in the all-idle maximum)
 * but do not make the channel active; the data plane sends a STATUS active frame first.
 */
export class WatermarkValve {
  private readonly wms: Float64Array;
  private readonly status: Uint8Array;
  private output = Number.NEGATIVE_INFINITY;

  /** @param channels number of input channels, ≥ 1; all start active at −Infinity */
  constructor(channels: number) {
    if (!Number.isInteger(channels) || channels < 1)
      throw new RangeError(`channels must be an integer ≥ 1, got ${channels}`);
    this.wms = new Float64Array(channels).fill(Number.NEGATIVE_INFINITY);
    this.status = new Uint8Array(channels);
  }

  /** The combined watermark emitted so far (−Infinity initially). */
  get current(): number {
    return this.output;
  }

  get channels(): number {
    return this.wms.length;
  }

  /** True when `channel` is marked idle. */
  isIdle(channel: number): boolean {
    return this.status[this.check(channel)] === ChannelStatus.Idle;
  }

  /** A watermark `wm` arrived on `channel`. Ignored for an ended channel. */
  onWatermark(channel: number, wm: number): number | null {
    this.check(channel);
    if (this.status[channel] === ChannelStatus.Ended) return null;
    if (wm > this.wms[channel]) this.wms[channel] = wm;
    return this.recompute();
  }

  /** `channel` has become idle (no data for the idle timeout). */
  onIdle(channel: number): number | null {
    this.check(channel);
    if (this.status[channel] !== ChannelStatus.Active) return null;
    this.status[channel] = ChannelStatus.Idle;
    return this.recompute();
  }

  /** `channel` is active again (it has data). Never lowers the output. */
  onActive(channel: number): number | null {
    this.check(channel);
    if (this.status[channel] !== ChannelStatus.Idle) return null;
    this.status[channel] = ChannelStatus.Active;
    return this.recompute();
  }

  /** `channel` reached the end of its bounded input: it counts as +Infinity from now on. */
  onEndOfInput(channel: number): number | null {
    this.check(channel);
    if (this.status[channel] === ChannelStatus.Ended) return null;
    this.status[channel] = ChannelStatus.Ended;
    this.wms[channel] = Number.POSITIVE_INFINITY;
    return this.recompute();
  }

  /** True once every channel has ended. */
  get allEnded(): boolean {
    for (let i = 0; i < this.status.length; i++) if (this.status[i] !== ChannelStatus.Ended) return false;
    return true;
  }

  private check(channel: number): number {
    if (!Number.isInteger(channel) || channel < 0 || channel >= this.wms.length) {
      throw new RangeError(`channel must be in [0, ${this.wms.length}), got ${channel}`);
    }
    return channel;
  }

  private recompute(): number | null {
    let open = 0;
    let idle = 0;
    let maxIdle = Number.NEGATIVE_INFINITY;
    let aligned = 0;
    let minAligned = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.wms.length; i++) {
      const st = this.status[i];
      if (st === ChannelStatus.Ended) continue;
      open++;
      const wm = this.wms[i];
      if (st === ChannelStatus.Idle) {
        idle++;
        if (wm > maxIdle) maxIdle = wm;
      } else if (wm >= this.output) {
        aligned++;
        if (wm < minAligned) minAligned = wm;
      }
    }
    let candidate: number;
    if (open === 0) candidate = Number.POSITIVE_INFINITY;
    else if (aligned > 0) candidate = minAligned;
    else if (idle === open) candidate = maxIdle;
    else return null; // only active channels that are behind the output: hold
    if (candidate > this.output) {
      this.output = candidate;
      return candidate;
    }
    return null;
  }
}
