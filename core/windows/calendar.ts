/**
 * Calendar-aligned tumbling windows: one window per local day, ISO week (Monday 00:00 to the next
 * Monday) or month in an IANA time zone, so window lengths follow daylight-saving changes. Flink's
 * `TumblingEventTimeWindows.of(size, offset)` cannot do this: a fixed offset is right for only
 * one half of the year. In Europe/Brussels the local day 2024-03-31 is
 * `[2024-03-30T23:00Z, 2024-03-31T22:00Z)`, 23 h (spring forward at 02:00 local), and
 * 2024-10-27 is `[2024-10-26T22:00Z, 2024-10-27T23:00Z)`, 25 h (fall back at 03:00 local).
 *
 * A period starts at the FIRST instant whose local date is its first day: local midnight, or the
 * end of the gap when a zone skips midnight (America/Havana's spring change), or the earlier
 * midnight when a zone repeats it (Havana's autumn change). The end of a period is the start of
 * the next, so periods tile the time line without gaps or overlaps. Starts and ends are ms since
 * the epoch (UTC). Zone rules come from the ICU data of the Node.js runtime (through luxon).
 *
 * Cost: a reading inside the last period looked up costs two comparisons; a new period costs a few
 * luxon conversions (microseconds). Readings arrive mostly in time order, so misses are rare.
 */
import { DateTime, IANAZone } from 'luxon';
import { EngineError } from '../errors/index.js';
import type { FieldDesc } from '../graph/types.js';
import type { CalendarUnit, WindowSpec } from '../spec/types.js';

const HOUR_MS = 3_600_000;

/** A local calendar date (month 1..12). */
interface LocalDate {
  year: number;
  month: number;
  day: number;
}

/** Period boundaries of one unit in one zone, with a one-period cache. */
export class CalendarPeriods {
  private readonly zone: IANAZone;
  private lastStart = Number.NaN;
  private lastEnd = Number.NaN;

  /** @throws EngineError `SPEC_INVALID` for an unknown time zone */
  constructor(
    readonly unit: CalendarUnit,
    readonly timeZone: string,
  ) {
    if (!IANAZone.isValidZone(timeZone)) throw new EngineError('SPEC_INVALID', `unknown time zone "${timeZone}"`);
    this.zone = IANAZone.create(timeZone);
  }

  /** Start (ms) of the period containing `ts` (ms). */
  startOf(ts: number): number {
    if (ts >= this.lastStart && ts < this.lastEnd) return this.lastStart;
    const first = DateTime.fromMillis(ts, { zone: this.zone }).startOf(this.unit, { useLocaleWeeks: false });
    let start = this.firstInstant(first);
    // the first instant of a date is never after an instant of that date; guard against zone data
    // luxon resolves differently from what we assume (then the period is at least not empty)
    if (start > ts) start = ts;
    this.lastStart = start;
    this.lastEnd = this.firstInstant(this.nextDate(first));
    return start;
  }

  /** Exclusive end (ms) of the period starting at `start` (a value `startOf` returned). */
  endOf(start: number): number {
    if (start === this.lastStart) return this.lastEnd;
    const first = DateTime.fromMillis(start, { zone: this.zone }).startOf(this.unit, { useLocaleWeeks: false });
    return this.firstInstant(this.nextDate(first));
  }

  /** The local date of the period starting at `start`, ISO `yyyy-MM-dd` (the first day of a week or month). */
  localDate(start: number): string {
    return DateTime.fromMillis(start, { zone: this.zone }).toISODate() ?? '';
  }

  /** The first day of the period after the one whose first day is `d`. */
  private nextDate(d: LocalDate): LocalDate {
    const n = DateTime.utc(d.year, d.month, d.day).plus(
      this.unit === 'day' ? { days: 1 } : this.unit === 'week' ? { weeks: 1 } : { months: 1 },
    );
    return { year: n.year, month: n.month, day: n.day };
  }

  /**
   * The first instant (ms) whose local date is `d`. Candidates: local midnight read with the
   * zone's offset a few hours before and after it; the earliest whose local date is `d` wins (a
   * repeated midnight: the first one; a skipped midnight: the end of the gap).
   */
  private firstInstant(d: LocalDate): number {
    const wall = Date.UTC(d.year, d.month - 1, d.day);
    let best = Number.POSITIVE_INFINITY;
    for (const probe of [wall - 12 * HOUR_MS, wall, wall + 12 * HOUR_MS]) {
      const c = wall - this.zone.offset(probe) * 60_000;
      if (c < best && this.sameLocalDate(c, d)) best = c;
    }
    if (best === Number.POSITIVE_INFINITY) {
      // no candidate falls on d (cannot happen with real zone data): luxon's own resolution
      best = DateTime.fromObject(d, { zone: this.zone }).toMillis();
    }
    return best;
  }

  private sameLocalDate(ms: number, d: LocalDate): boolean {
    const local = new Date(ms + this.zone.offset(ms) * 60_000);
    return local.getUTCFullYear() === d.year && local.getUTCMonth() + 1 === d.month && local.getUTCDate() === d.day;
  }
}

/** The window-result field holding a calendar window's local date (`yyyy-MM-dd`, its first day). */
export const LOCAL_DATE_FIELD = 'localDate';

/** The periods of a calendar window spec, or `undefined` for any other window. */
export function calendarPeriodsOf(window: WindowSpec): CalendarPeriods | undefined {
  return window.type === 'tumbling' && 'calendar' in window
    ? new CalendarPeriods(window.calendar, window.timeZone)
    : undefined;
}

/** Window-result fields with `localDate` (string) after `windowEnd` when `window` is a calendar window. */
export function withLocalDateField(fields: FieldDesc[], window: WindowSpec): FieldDesc[] {
  if (!(window.type === 'tumbling' && 'calendar' in window)) return fields;
  const at = fields.findIndex((f) => f.name === 'windowEnd') + 1;
  return [...fields.slice(0, at), { name: LOCAL_DATE_FIELD, type: 'string' }, ...fields.slice(at)];
}
