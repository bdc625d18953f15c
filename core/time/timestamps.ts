/**
 * Event-time extraction: turns the event-time field(s) of a row into ms since the Unix epoch.
 */
import { DateTime } from 'luxon';
import type { EventTimeSpec, Row, Value } from '../spec/types.js';

/** Default plausibility range (BR-05): 2000-01-01T00:00Z inclusive .. 2100-01-01T00:00Z exclusive. */
export const DEFAULT_MIN_MS = 946_684_800_000;
export const DEFAULT_MAX_MS = 4_102_444_800_000;

/**
 * Parses one event time: returns ms since the epoch (an integer), or a string with the reason
 * the value is rejected.
 * `value` is the value of `spec.field`; `row` supplies `spec.joinFields`.
 */
export type TimestampParser = (value: Value, row: Row) => number | string;

const CACHE_SIZE = 256;

function show(v: Value): string {
  const s = String(v);
  return s.length > 64 ? `${s.slice(0, 64)}…` : s;
}

/**
 * Builds a parser for `spec`:
 * - `unit` `ms` | `s` | `us`: a number, or a string of decimal digits (optional sign). `ms` and
 *   `us` must be integers (`1717200001000.5` is rejected as unparseable); `s` may have a fraction
 *   (rounded to the nearest ms); `us` is floored to ms.
 * - `format`: a Luxon pattern (`dd-MM-yyyy HH:mm`, `dd/MM/yyyy H:mm`; `H` also reads two-digit
 *   hours) read in `spec.timeZone`.
 * - `iso`: ISO 8601; an offset in the text wins, text without one is read in `spec.timeZone`.
 * With `joinFields`, the values of `field` and the join fields are joined with one space first.
 * Text values are trimmed. Parsed text is cached (last 256 distinct strings) because Luxon is slow
 * and consecutive rows often share a minute.
 *
 * Rejection reasons: `missing timestamp` (null/empty), `unparseable timestamp "abc"`,
 * `timestamp out of range` (outside `[spec.minMs, spec.maxMs)`).
 * Never throws.
 */
export function compileTimestampParser(spec: EventTimeSpec): TimestampParser {
  const { minMs, maxMs } = spec;
  const joins = spec.joinFields ?? [];
  const inRange = (ms: number): number | string => (ms >= minMs && ms < maxMs ? ms : 'timestamp out of range');

  if (spec.unit !== undefined) {
    const mult = spec.unit === 's' ? 1000 : spec.unit === 'us' ? 0.001 : 1;
    const unit = spec.unit;
    const fromNumber = (n: number, raw: Value): number | string => {
      if (!Number.isFinite(n)) return `unparseable timestamp "${show(raw)}"`;
      if (unit === 'ms') {
        if (!Number.isInteger(n)) return `unparseable timestamp "${show(raw)}"`;
        return inRange(n);
      }
      if (unit === 'us') {
        if (!Number.isInteger(n)) return `unparseable timestamp "${show(raw)}"`;
        return inRange(Math.floor(n / 1000));
      }
      return inRange(Math.round(n * mult));
    };
    return (value: Value): number | string => {
      if (typeof value === 'number') return fromNumber(value, value);
      if (value === null || value === '') return 'missing timestamp';
      if (typeof value !== 'string') return `unparseable timestamp "${show(value)}"`;
      const t = value.trim();
      if (t === '' || !/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(t))
        return `unparseable timestamp "${show(value)}"`;
      return fromNumber(Number(t), value);
    };
  }

  const zone = spec.timeZone || 'UTC';
  let parseText: (text: string) => number;
  if (spec.format !== undefined) {
    const format = spec.format;
    parseText = (text) => {
      const dt = DateTime.fromFormat(text, format, { zone });
      return dt.isValid ? dt.toMillis() : Number.NaN;
    };
  } else {
    parseText = (text) => {
      const dt = DateTime.fromISO(text, { zone, setZone: true });
      return dt.isValid ? dt.toMillis() : Number.NaN;
    };
  }

  const cache = new Map<string, number>();
  const cached = (text: string): number => {
    let ms = cache.get(text);
    if (ms === undefined) {
      ms = parseText(text);
      if (cache.size >= CACHE_SIZE) cache.clear();
      cache.set(text, ms);
    }
    return ms;
  };

  return (value: Value, row: Row): number | string => {
    if (value === null || value === '') return 'missing timestamp';
    let text = typeof value === 'string' ? value.trim() : String(value);
    for (let i = 0; i < joins.length; i++) {
      const extra = row[joins[i] as string];
      if (extra === null || extra === undefined || extra === '') return 'missing timestamp';
      text += ` ${typeof extra === 'string' ? extra.trim() : String(extra)}`;
    }
    const ms = cached(text);
    if (Number.isNaN(ms)) return `unparseable timestamp "${show(text)}"`;
    return inRange(ms);
  };
}
