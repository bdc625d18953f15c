/**
 * ThingSpeak channel data → rows: the shared entry decoder, created_at parsing and the CSV
 * export decoder. The JSON feed reader is in thingspeak-json.ts; the spec side (syntax, field
 * names) in core/spec/thingspeak.ts.
 *
 * Decisions:
 * - Values arrive as text (`"23.4"`); numeric fields are parsed like CSV cells (toNumber). An
 *   empty or null value is null (a field not written in that update), unless the field says
 *   `nullable: false`; JSON numbers are taken as they are.
 * - A value that is not a number in a numeric field (`()` in the envmonitor export) rejects the
 *   entry: `field3 (light_level): expected a number, got "()"`.
 * - `created_at` is the event time: ISO 8601 (`2024-11-25T19:09:51+00:00`, `…Z`, with a
 *   fraction) or ThingSpeak's older CSV form `2024-01-01 12:00:00 UTC` (also `+0100`, `+01:00`);
 *   the offset in the text wins; text without one is read in `eventTime.timeZone`.
 * - Melted: one row per melted field that has a value, in slot order; an entry whose melted
 *   fields are all empty gives no row (it is not an error). Any bad value rejects the whole entry.
 */
import path from 'node:path';
import { EngineError } from '../errors/index.js';
import { thingSpeakCsvHeader } from '../spec/thingspeak.js';
import type { FieldType, FileSourceSpec, Row, ThingSpeakFieldSpec, Value } from '../spec/types.js';
import { compileTimestampParser, type TimestampParser } from '../time/timestamps.js';
import { splitCells } from './csv.js';
import { checkRules, compileRules, NUM_ERR, pushMeltedRow, toNumber } from './decode.js';
import { LineReader } from './lines.js';

/** The channel id a file stands for when nothing names one: its name without `.gz` / extension. */
export function channelFromPath(p: string): string {
  const base = path.basename(p).replace(/\.gz$/i, '');
  const ext = path.extname(base);
  return ext === '' ? base : base.slice(0, -ext.length);
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function digits(s: string, i: number, n: number): number {
  let v = 0;
  for (let k = i; k < i + n; k++) {
    const c = s.charCodeAt(k) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/**
 * Fast path for ThingSpeak's timestamp forms: `YYYY-MM-DD[T ]HH:MM:SS[.fff…]` then `Z`, ` UTC`,
 * `±HH:MM`, `±HHMM` or `±HH` (optionally after a space). Returns ms since the epoch, NaN when the
 * text has another shape (the caller then tries Luxon), or -Infinity when the text is in this
 * shape but has no zone (read it in the configured zone).
 */
export function parseThingSpeakTime(s: string): number {
  const n = s.length;
  if (n < 19 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(13) !== 58) return Number.NaN;
  const sep = s.charCodeAt(10);
  if ((sep !== 84 && sep !== 32) || s.charCodeAt(16) !== 58) return Number.NaN;
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  const h = digits(s, 11, 2);
  const mi = digits(s, 14, 2);
  const se = digits(s, 17, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59)
    return Number.NaN;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  if (d > (DAYS[mo - 1] as number) + (mo === 2 && leap ? 1 : 0)) return Number.NaN;
  let i = 19;
  let frac = 0;
  if (i < n && s.charCodeAt(i) === 46) {
    i++;
    let scale = 100;
    const start = i;
    while (i < n) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      frac += c * scale;
      scale /= 10;
      i++;
    }
    if (i === start) return Number.NaN;
    frac = Math.floor(frac);
  }
  let ms = Date.UTC(y, mo - 1, d, h, mi, se) + frac;
  if (i < n && s.charCodeAt(i) === 32) i++;
  if (i === n) return Number.NEGATIVE_INFINITY;
  const rest = n - i;
  const c = s.charCodeAt(i);
  if (c === 90 && rest === 1) return ms; // Z
  if (rest === 3 && s.endsWith('UTC')) return ms;
  if (c !== 43 && c !== 45) return Number.NaN;
  let oh: number;
  let om = 0;
  if (rest === 3) oh = digits(s, i + 1, 2);
  else if (rest === 5) {
    oh = digits(s, i + 1, 2);
    om = digits(s, i + 3, 2);
  } else if (rest === 6 && s.charCodeAt(i + 3) === 58) {
    oh = digits(s, i + 1, 2);
    om = digits(s, i + 4, 2);
  } else return Number.NaN;
  if (oh < 0 || oh > 23 || om < 0 || om > 59) return Number.NaN;
  const off = (oh * 60 + om) * 60_000;
  ms += c === 43 ? -off : off;
  return ms;
}

function quote(s: string): string {
  return s.length > 40 ? `"${s.slice(0, 40)}…"` : `"${s}"`;
}

/**
 * Turns one ThingSpeak entry (created_at, entry_id and the raw field values put in `raw`, one per
 * field of the spec, in spec order) into rows. One instance per reader; not thread-safe.
 */
export class ThingSpeakEntryDecoder {
  /** raw values of the current entry, parallel to the spec's fields; the caller fills it */
  readonly raw: unknown[];
  readonly fields: readonly ThingSpeakFieldSpec[];
  private readonly n: number;
  private readonly names: string[];
  private readonly labels: string[];
  private readonly types: FieldType[];
  private readonly nullable: boolean[];
  private readonly values: Value[];
  private readonly tsOut: string;
  private readonly minMs: number;
  private readonly maxMs: number;
  private readonly fallback: TimestampParser;
  private readonly rules: ReturnType<typeof compileRules>;
  private readonly melt: FileSourceSpec['melt'];
  /** for each field: its position among melted fields, or -1 */
  private readonly meltPos: number[];
  private channel = '';
  private meltSensor: string[] = [];
  private reason = '';

  /** @throws EngineError `EXPR_INVALID` when a validate rule does not compile. */
  constructor(spec: FileSourceSpec) {
    const fields = spec.thingspeak?.fields ?? [];
    this.fields = fields;
    this.n = fields.length;
    this.raw = new Array(this.n).fill(null);
    this.values = new Array(this.n).fill(null);
    this.names = fields.map((f) => f.name);
    this.labels = fields.map((f) => `field${f.slot} (${f.name})`);
    this.types = fields.map((f) => f.type);
    this.nullable = fields.map((f) => f.nullable);
    this.tsOut = spec.eventTime.outputField;
    this.minMs = spec.eventTime.minMs;
    this.maxMs = spec.eventTime.maxMs;
    this.fallback = compileTimestampParser({ ...spec.eventTime, iso: true });
    this.rules = compileRules(spec);
    this.melt = spec.melt;
    const melted = spec.melt?.columns ?? [];
    this.meltPos = this.names.map((nm) => melted.indexOf(nm));
  }

  /** Sets the channel id written to `channel` / `sensorId` of the following rows. */
  setChannel(id: string): void {
    this.channel = id;
    this.meltSensor = this.names.map((nm) => `${id}:${nm}`);
  }

  /** The current channel id ('' before setChannel). */
  get channelId(): string {
    return this.channel;
  }

  private time(v: unknown): number | string {
    if (typeof v !== 'string' || v === '')
      return v === undefined || v === null || v === '' ? 'created_at: missing' : 'created_at: expected text';
    const t = v.length > 0 && (v.charCodeAt(0) <= 32 || v.charCodeAt(v.length - 1) <= 32) ? v.trim() : v;
    const ms = parseThingSpeakTime(t);
    if (ms === Number.NEGATIVE_INFINITY) return this.fallback(`${t.slice(0, 10)}T${t.slice(11)}`, {});
    if (Number.isNaN(ms)) return this.fallback(t, {});
    return ms >= this.minMs && ms < this.maxMs ? ms : 'timestamp out of range';
  }

  private convert(j: number, v: unknown): Value | undefined {
    if (v === null || v === undefined || v === '') {
      if (this.nullable[j]) return null;
      this.reason = `${this.labels[j]}: empty`;
      return undefined;
    }
    const t = this.types[j];
    if (typeof v === 'string') {
      if (t === 'string') return v;
      const s = v.charCodeAt(0) <= 32 || v.charCodeAt(v.length - 1) <= 32 ? v.trim() : v;
      if (s === '') {
        if (this.nullable[j]) return null;
        this.reason = `${this.labels[j]}: empty`;
        return undefined;
      }
      if (t === 'bool') {
        const l = s.toLowerCase();
        if (l === 'true' || l === '1') return true;
        if (l === 'false' || l === '0') return false;
        this.reason = `${this.labels[j]}: expected true or false, got ${quote(s)}`;
        return undefined;
      }
      const num = toNumber(s, false);
      if (num === NUM_ERR || (t === 'int' && !Number.isInteger(num))) {
        this.reason = `${this.labels[j]}: expected ${t === 'int' ? 'an integer' : 'a number'}, got ${quote(s)}`;
        return undefined;
      }
      return num;
    }
    if (typeof v === 'number') {
      if (t === 'string') return String(v);
      if (t === 'double' || (t === 'int' && Number.isInteger(v))) return v;
      this.reason = `${this.labels[j]}: expected ${t === 'int' ? 'an integer' : 'true or false'}, got ${v}`;
      return undefined;
    }
    if (typeof v === 'boolean' && t === 'bool') return v;
    this.reason = `${this.labels[j]}: expected a value, got ${typeof v === 'object' ? 'an object' : String(v)}`;
    return undefined;
  }

  /**
   * Decodes the entry whose field values are in `raw`. Pushes its rows and their timestamps and
   * returns null, or returns the rejection reason and pushes nothing.
   */
  decode(createdAt: unknown, entryId: unknown, rows: Row[], timestamps: number[]): string | null {
    let id: number;
    if (typeof entryId === 'number') id = entryId;
    else if (typeof entryId === 'string' && entryId !== '') {
      const x = toNumber(entryId.trim(), false);
      id = x === NUM_ERR ? Number.NaN : x;
    } else return 'entry_id: missing';
    if (!Number.isInteger(id)) return `entry_id: expected an integer, got ${quote(String(entryId))}`;
    const values = this.values;
    for (let j = 0; j < this.n; j++) {
      const v = this.convert(j, this.raw[j]);
      if (v === undefined) return this.reason;
      values[j] = v;
    }
    const ts = this.time(createdAt);
    if (typeof ts === 'string') return ts;
    const names = this.names;
    if (this.melt === undefined) {
      const row: Row = {
        created_at: createdAt as string,
        entry_id: id,
        channel: this.channel,
        sensorId: this.channel,
      };
      for (let j = 0; j < this.n; j++) row[names[j] as string] = values[j] as Value;
      row[this.tsOut] = ts;
      if (this.rules.length > 0) {
        const bad = checkRules(this.rules, row);
        if (bad !== null) return bad;
      }
      rows.push(row);
      timestamps.push(ts);
      return null;
    }
    const first = rows.length;
    const { nameField, valueField } = this.melt;
    for (let j = 0; j < this.n; j++) {
      if (this.meltPos[j] === -1 || values[j] === null) continue;
      const row: Row = {
        created_at: createdAt as string,
        entry_id: id,
        channel: this.channel,
        sensorId: this.meltSensor[j] as string,
      };
      for (let k = 0; k < this.n; k++) if (this.meltPos[k] === -1) row[names[k] as string] = values[k] as Value;
      row[nameField] = names[j] as string;
      row[valueField] = values[j] as Value;
      row[this.tsOut] = ts;
      const bad = pushMeltedRow(this.rules, row, ts, rows, timestamps, first);
      if (bad !== null) return bad;
    }
    return null;
  }
}

/**
 * Lines of a ThingSpeak CSV export → rows. The header of each file (read by startFile, also
 * when a restored reader starts mid-file) says where created_at, entry_id and each field slot
 * are; a field of the spec that the file lacks is null. Lines with another number of cells than
 * the header are rejected (`expected 9 fields, got 7`).
 */
export class ThingSpeakCsvDecoder {
  private readonly entry: ThingSpeakEntryDecoder;
  private readonly cells: string[] = [];
  /** per spec field: its column index in the current file, or -1 */
  private colOf: number[] = [];
  private ncols = 0;
  private expected = '';

  /** @throws EngineError `EXPR_INVALID` when a validate rule does not compile. */
  constructor(private readonly spec: FileSourceSpec) {
    this.entry = new ThingSpeakEntryDecoder(spec);
  }

  /**
   * Reads the header line of file `p` and prepares for its lines; sets the channel id (the
   * spec's, else the file name).
   * @throws EngineError `SOURCE_IO` when the file cannot be read or has no ThingSpeak header.
   */
  async startFile(p: string, display: string): Promise<void> {
    const r = new LineReader(p, {
      compression: this.spec.compression,
      encoding: this.spec.encoding ?? 'utf8',
      maxLineBytes: this.spec.maxLineBytes,
    });
    let line: string | null = null;
    try {
      await r.open();
      for (;;) {
        if (r.next()) {
          line = r.line;
          break;
        }
        if (!(await r.fill())) {
          if (r.finish()) line = r.line;
          break;
        }
      }
    } finally {
      await r.close();
    }
    const h = line === null ? 'the file is empty' : thingSpeakCsvHeader(line);
    if (typeof h === 'string') throw new EngineError('SOURCE_IO', `${display}: ${h}`);
    this.ncols = h.columns.length;
    this.expected = `expected ${this.ncols} fields`;
    const fieldCols: number[] = [];
    h.columns.forEach((c, i) => {
      if (i >= 2 && !['latitude', 'longitude', 'elevation', 'status'].includes(c)) fieldCols.push(i);
    });
    this.colOf = this.entry.fields.map((f) => fieldCols[f.slot - 1] ?? -1);
    this.entry.setChannel(this.spec.thingspeak?.channel ?? channelFromPath(p));
  }

  /** Decodes one data line (not the header); null when accepted, else the rejection reason. */
  decode(line: string, rows: Row[], timestamps: number[]): string | null {
    const cells = this.cells;
    const bad = splitCells(line, ',', cells);
    if (bad !== null) return bad;
    if (cells.length !== this.ncols) return `${this.expected}, got ${cells.length}`;
    const raw = this.entry.raw;
    const colOf = this.colOf;
    for (let j = 0; j < colOf.length; j++) {
      const c = colOf[j] as number;
      raw[j] = c < 0 ? null : cells[c];
    }
    return this.entry.decode(cells[0], cells[1], rows, timestamps);
  }
}
