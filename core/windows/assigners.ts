/**
 * Window assigners: which windows `[start, end)` a timestamp (ms) belongs to.
 *
 * Windows are identified by their start; `windowEnd(start)` gives the exclusive end. Assigners
 * write starts into a caller-owned array so the hot path allocates nothing per record.
 */
import { EngineError } from '../errors/index.js';
import type { CalendarUnit, WindowSpec } from '../spec/types.js';
import { CalendarPeriods } from './calendar.js';

/**
 * Start of the tumbling window of `sizeMs` (shifted by `offsetMs`) that contains `ts`:
 * `offset + floor((ts − offset) / size) · size`, with a true floor, so a negative remainder
 * (ts before the offset, or a negative ts) still gives `start ≤ ts` (FLINK-26334, BR-06).
 * Same as Flink's `TimeWindow.getWindowStartWithOffset`. Any offset works; it acts modulo size.
 */
export function windowStartWithOffset(ts: number, offsetMs: number, sizeMs: number): number {
  const rem = (ts - offsetMs) % sizeMs;
  return rem < 0 ? ts - (rem + sizeMs) : ts - rem;
}

export interface WindowAssigner {
  readonly kind: 'tumbling' | 'sliding' | 'session';
  /**
   * window length in ms (for sessions: the gap, the length of a single reading's proto-session;
   * for calendar windows the nominal length of the unit: use `windowEnd`, lengths vary with DST)
   */
  readonly sizeMs: number;
  /** the most windows one timestamp can be assigned to (`out` needs no more room than this) */
  readonly maxWindowsPerElement: number;
  /** true for session windows: windows of a key merge when they overlap */
  readonly merging: boolean;
  /**
   * Writes the start of every window containing `ts` into `out[0 .. n)` and returns `n`.
   * Sliding windows are written latest start first (Flink's order). For sessions: the
   * proto-session `[ts, ts + gap)`, i.e. `out[0] = ts`, n = 1.
   */
  assign(ts: number, out: number[]): number;
  /** exclusive end of the window starting at `start` (for sessions: of a proto-session) */
  windowEnd(start: number): number;
  /** calendar windows only: the local date (`yyyy-MM-dd`, first day) of the window starting at `start` */
  localDate?(start: number): string;
}

class TumblingAssigner implements WindowAssigner {
  readonly kind = 'tumbling' as const;
  readonly maxWindowsPerElement = 1;
  readonly merging = false;
  constructor(
    readonly sizeMs: number,
    private readonly offsetMs: number,
  ) {}
  assign(ts: number, out: number[]): number {
    const rem = (ts - this.offsetMs) % this.sizeMs;
    out[0] = rem < 0 ? ts - (rem + this.sizeMs) : ts - rem;
    return 1;
  }
  windowEnd(start: number): number {
    return start + this.sizeMs;
  }
}

/** Nominal lengths of calendar units (a `sizeMs` for display; the real ends come from `windowEnd`). */
const NOMINAL_MS: Record<CalendarUnit, number> = { day: 86_400_000, week: 604_800_000, month: 2_678_400_000 };

/** Tumbling windows of local days, weeks or months in a time zone (core/windows/calendar.ts). */
class CalendarAssigner implements WindowAssigner {
  readonly kind = 'tumbling' as const;
  readonly maxWindowsPerElement = 1;
  readonly merging = false;
  readonly sizeMs: number;
  private readonly periods: CalendarPeriods;
  constructor(unit: CalendarUnit, timeZone: string) {
    this.periods = new CalendarPeriods(unit, timeZone);
    this.sizeMs = NOMINAL_MS[unit];
  }
  assign(ts: number, out: number[]): number {
    out[0] = this.periods.startOf(ts);
    return 1;
  }
  windowEnd(start: number): number {
    return this.periods.endOf(start);
  }
  localDate(start: number): string {
    return this.periods.localDate(start);
  }
}

class SlidingAssigner implements WindowAssigner {
  readonly kind = 'sliding' as const;
  readonly merging = false;
  readonly maxWindowsPerElement: number;
  constructor(
    readonly sizeMs: number,
    private readonly slideMs: number,
    private readonly offsetMs: number,
  ) {
    this.maxWindowsPerElement = Math.ceil(sizeMs / slideMs);
  }
  assign(ts: number, out: number[]): number {
    let n = 0;
    const lastStart = windowStartWithOffset(ts, this.offsetMs, this.slideMs);
    for (let start = lastStart; start > ts - this.sizeMs; start -= this.slideMs) out[n++] = start;
    return n;
  }
  windowEnd(start: number): number {
    return start + this.sizeMs;
  }
}

class SessionAssigner implements WindowAssigner {
  readonly kind = 'session' as const;
  readonly maxWindowsPerElement = 1;
  readonly merging = true;
  constructor(readonly sizeMs: number) {}
  assign(ts: number, out: number[]): number {
    out[0] = ts;
    return 1;
  }
  windowEnd(start: number): number {
    return start + this.sizeMs;
  }
}

function positive(name: string, v: number): void {
  if (!Number.isFinite(v) || v <= 0)
    throw new EngineError('SPEC_INVALID', `window ${name} must be a positive number of ms, got ${v}`);
}

/**
 * Builds the assigner for a normalised window spec. Sliding with `slideMs == sizeMs` is planned
 * as tumbling (BR-08); a slide larger than the size leaves gaps (readings between windows belong
 * to none and count as late at the operator). A tumbling spec with `calendar` gives local days,
 * weeks or months in its `timeZone`.
 * @throws EngineError `SPEC_INVALID` for a non-positive size, slide or gap, a non-finite offset, or
 *   an unknown time zone
 */
export function createAssigner(spec: WindowSpec): WindowAssigner {
  switch (spec.type) {
    case 'tumbling':
      if ('calendar' in spec) return new CalendarAssigner(spec.calendar, spec.timeZone);
      positive('size', spec.sizeMs);
      if (!Number.isFinite(spec.offsetMs))
        throw new EngineError('SPEC_INVALID', `window offset must be finite, got ${spec.offsetMs}`);
      return new TumblingAssigner(spec.sizeMs, spec.offsetMs);
    case 'sliding':
      positive('size', spec.sizeMs);
      positive('slide', spec.slideMs);
      if (!Number.isFinite(spec.offsetMs))
        throw new EngineError('SPEC_INVALID', `window offset must be finite, got ${spec.offsetMs}`);
      if (spec.slideMs === spec.sizeMs) return new TumblingAssigner(spec.sizeMs, spec.offsetMs);
      return new SlidingAssigner(spec.sizeMs, spec.slideMs, spec.offsetMs);
    case 'session':
      positive('gap', spec.gapMs);
      return new SessionAssigner(spec.gapMs);
  }
}
