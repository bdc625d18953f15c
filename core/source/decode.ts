/**
 * Line → typed rows for file sources: cell typing, melt, event time, validate rules.
 *
 * Decisions:
 * - Numbers: `Number()` on the (trimmed) cell, with strict checks: empty → null for a nullable
 *   column else `column X: empty`; NaN, ±Infinity, hex/octal/binary literals →
 *   `column X: expected a number, got "abc"`; `int` columns also need an integer value
 *   (`1.0` is accepted). Scientific notation is fine. With `decimalComma`, `,` is the decimal
 *   point and no-break spaces (U+00A0, U+202F) inside a number are thousands separators.
 * - Strings: an empty cell of a non-nullable string column rejects the line (`column X: empty`).
 * - Bools: true/false/1/0 (any case).
 * - Melt: one line gives one row per melted column (in `melt.columns` order); any bad cell,
 *   including one melted cell, rejects the whole line (no partial output).
 * - Event time is parsed after typing and written to `eventTime.outputField`; validate rules run
 *   last and see that field.
 * - JSON lines: the listed columns are picked from a JSON object (other keys ignored); numbers
 *   may also be given as numeric strings.
 */
import { EngineError } from '../errors/index.js';
import { compileRule } from '../expr/cel.js';
import { sourceExprFields } from '../spec/fields.js';
import type {
  ColumnSpec,
  FieldType,
  FileSourceSpec,
  RedisStreamSourceSpec,
  Row,
  SourceSpec,
  Value,
} from '../spec/types.js';
import { compileTimestampParser, type TimestampParser } from '../time/timestamps.js';
import { splitCells } from './csv.js';

interface Rule {
  test: (row: Row) => boolean;
  reason: string;
}

/** Compiles a source's validate rules. @throws EngineError `EXPR_INVALID`. */
export function compileRules(spec: SourceSpec): Rule[] {
  const fields = sourceExprFields(spec);
  return spec.validate.map((v) => ({ test: compileRule(v.rule, fields), reason: v.reason }));
}

/** Runs validate rules; returns null when the row passes, else the reason. */
export function checkRules(rules: Rule[], row: Row): string | null {
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i] as Rule;
    try {
      if (!r.test(row)) return r.reason;
    } catch (e) {
      return `${r.reason}: ${e instanceof EngineError ? e.message : String(e)}`;
    }
  }
  return null;
}

/**
 * Appends one of the rows a line melts into (with its event time `ts`), once it passes the
 * validate rules. A line is all or nothing: when a row fails, every row of the line appended so
 * far (those from index `first` on) is taken back, and the reason is returned for the dead letter.
 * @returns null when appended, else the failed rule's reason
 */
export function pushMeltedRow(
  rules: Rule[],
  row: Row,
  ts: number,
  rows: Row[],
  timestamps: number[],
  first: number,
): string | null {
  if (rules.length > 0) {
    const bad = checkRules(rules, row);
    if (bad !== null) {
      rows.length = first;
      timestamps.length = first;
      return bad;
    }
  }
  rows.push(row);
  timestamps.push(ts);
  return null;
}

/** Marker toNumber returns for text that is not a number. */
export const NUM_ERR = Symbol('bad number');

function isBlank(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 0xa0) return false;
  }
  return true;
}

const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/**
 * Fast path for plain decimals (`-12`, `21.53`, `1717200000000`): at most 15 significant digits,
 * so mantissa and power of ten are exact doubles and one division gives the correctly rounded
 * value — the same number `Number()` returns. Returns NaN when the text needs the general path.
 */
function fastDecimal(s: string): number {
  const n = s.length;
  let i = 0;
  let neg = false;
  let c = s.charCodeAt(0);
  if (c === 45) {
    neg = true;
    i = 1;
  }
  let m = 0;
  let digits = 0;
  let frac = -1;
  for (; i < n; i++) {
    c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      m = m * 10 + (c - 48);
      digits++;
    } else if (c === 46 && frac < 0) {
      frac = i;
    } else {
      return Number.NaN;
    }
  }
  if (digits === 0 || digits > 15) return Number.NaN;
  const v = frac < 0 ? m : m / (POW10[n - frac - 1] as number);
  return neg ? -v : v;
}

/**
 * Parses a numeric cell (see the module notes): the number, or NUM_ERR when the text is not a
 * plain decimal or scientific number (empty, NaN, ±Infinity, hex/octal/binary literals).
 */
export function toNumber(cell: string, decimalComma: boolean): number | typeof NUM_ERR {
  const f = fastDecimal(cell);
  if (!Number.isNaN(f)) return f;
  let s = cell;
  if (decimalComma) {
    if (s.indexOf(',') !== -1) s = s.replace(',', '.');
    if (s.indexOf('\u00a0') !== -1 || s.indexOf('\u202f') !== -1) s = s.replace(/[\u00a0\u202f]/g, '');
  }
  const n = Number(s);
  if (n - n !== 0) return NUM_ERR; // NaN or ±Infinity
  if (n === 0) {
    if (isBlank(s)) return NUM_ERR;
  } else if (s.length > 2) {
    const c = s.charCodeAt(1) | 0x20;
    if ((c === 0x78 || c === 0x62 || c === 0x6f) && s.charCodeAt(0) === 48) return NUM_ERR; // 0x 0b 0o
  }
  return n;
}

function quote(s: string): string {
  return s.length > 40 ? `"${s.slice(0, 40)}…"` : `"${s}"`;
}

/**
 * Decodes lines of one file source (or records of one redis-stream source) into rows. One
 * instance per reader (holds reusable buffers).
 * `decode` returns null when the line was accepted (rows and timestamps pushed to the given
 * arrays) or the rejection reason; a rejected line pushes nothing.
 */
export class LineDecoder {
  private readonly cells: string[] = [];
  private readonly cols: ColumnSpec[];
  private readonly ncols: number;
  private readonly names: string[];
  private readonly types: FieldType[];
  private readonly nullable: boolean[];
  private readonly melted: boolean[];
  private readonly delim: string;
  private readonly trim: boolean;
  private readonly decimalComma: boolean;
  private readonly ignoreExtra: boolean;
  private readonly jsonl: boolean;
  private readonly tsField: string;
  private readonly tsOut: string;
  private readonly parseTs: TimestampParser;
  private readonly rules: Rule[];
  private readonly melt: FileSourceSpec['melt'];
  private readonly meltIdx: number[];
  private readonly meltNames: string[];
  private readonly expected: string;
  /** raw values of melted columns of the current line, by column index */
  private readonly meltCells: Value[] = [];
  /** reason of the last failed cell conversion */
  private reason = '';

  /** base fields copied into each melted row: those read downstream (all when not known) */
  private readonly meltKeep: string[] | undefined;

  /**
   * @param fields the fields read downstream; melted rows carry only these of the base columns
   *   (default: all). Every column is still parsed and type-checked.
   * @throws EngineError `EXPR_INVALID` when a validate rule does not compile.
   */
  constructor(spec: FileSourceSpec | RedisStreamSourceSpec, fields?: string[]) {
    this.cols = spec.columns;
    this.ncols = spec.columns.length;
    this.names = spec.columns.map((c) => c.name);
    this.types = spec.columns.map((c) => c.type);
    this.nullable = spec.columns.map((c) => c.nullable);
    const meltSet = new Set(spec.melt?.columns ?? []);
    this.melted = spec.columns.map((c) => meltSet.has(c.name));
    this.melt = spec.melt;
    this.meltIdx = (spec.melt?.columns ?? []).map((c) => this.names.indexOf(c));
    this.meltNames = (spec.melt?.columns ?? []).map((c) => spec.melt?.names[c] ?? c);
    this.delim = spec.delimiter;
    this.trim = spec.trim;
    this.decimalComma = spec.decimalComma;
    this.ignoreExtra = spec.extraColumns === 'ignore';
    this.jsonl = spec.format === 'jsonl';
    this.tsField = spec.eventTime.field;
    this.tsOut = spec.eventTime.outputField;
    this.parseTs = compileTimestampParser(spec.eventTime);
    this.rules = compileRules(spec);
    this.expected = `expected ${this.ncols} field${this.ncols === 1 ? '' : 's'}`;
    if (fields && spec.melt) {
      const want = new Set(fields);
      // validate rules see the melted rows, so their fields are kept too
      for (const r of spec.validate) for (const id of r.rule.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []) want.add(id);
      this.meltKeep = spec.columns.filter((c) => !meltSet.has(c.name) && want.has(c.name)).map((c) => c.name);
    }
  }

  decode(line: string, rows: Row[], timestamps: number[]): string | null {
    const row: Row = {};
    const err = this.jsonl ? this.fromJson(line, row) : this.fromCsv(line, row);
    if (err !== null) return err;
    const ts = this.parseTs(row[this.tsField] ?? null, row);
    if (typeof ts === 'string') return ts;
    if (this.melt === undefined) {
      if (row[this.tsOut] !== ts) row[this.tsOut] = ts;
      if (this.rules.length > 0) {
        const bad = checkRules(this.rules, row);
        if (bad !== null) return bad;
      }
      rows.push(row);
      timestamps.push(ts);
      return null;
    }
    return this.emitMelted(row, ts, rows, timestamps);
  }

  private fromCsv(line: string, row: Row): string | null {
    const cells = this.cells;
    const bad = splitCells(line, this.delim, cells);
    if (bad !== null) return bad;
    const n = cells.length;
    if (n !== this.ncols && !(this.ignoreExtra && n > this.ncols)) return `${this.expected}, got ${n}`;
    const names = this.names;
    const melted = this.melted;
    for (let i = 0; i < this.ncols; i++) {
      let cell = cells[i] as string;
      if (this.trim && cell.length > 0) {
        const a = cell.charCodeAt(0);
        const b = cell.charCodeAt(cell.length - 1);
        if (a <= 32 || b <= 32 || a === 0xa0 || b === 0xa0) cell = cell.trim();
      }
      if (melted[i]) {
        // keep the text; typed in emitMelted
        this.meltCells[i] = cell;
        continue;
      }
      const v = this.convert(i, cell);
      if (v === undefined) return this.reason;
      row[names[i] as string] = v;
    }
    return null;
  }

  /** Converts one cell of column i; undefined on failure (reason in this.reason). */
  private convert(i: number, cell: string): Value | undefined {
    if (cell.length === 0) {
      if (this.nullable[i]) return null;
      this.reason = `column ${this.names[i]}: empty`;
      return undefined;
    }
    switch (this.types[i]) {
      case 'string':
        // cells of 13+ chars may be V8 slices of a whole 256 KiB chunk string; copy them so a
        // string kept in state (a key) does not retain the chunk
        return cell.length < 13 ? cell : `${cell}\u0000`.slice(0, -1);
      case 'double': {
        const n = toNumber(cell, this.decimalComma);
        if (n === NUM_ERR) {
          this.reason = `column ${this.names[i]}: expected a number, got ${quote(cell)}`;
          return undefined;
        }
        return n;
      }
      case 'int': {
        const n = toNumber(cell, this.decimalComma);
        if (n === NUM_ERR || !Number.isInteger(n)) {
          this.reason = `column ${this.names[i]}: expected an integer, got ${quote(cell)}`;
          return undefined;
        }
        return n;
      }
      default: {
        const l = cell.toLowerCase();
        if (l === 'true' || l === '1') return true;
        if (l === 'false' || l === '0') return false;
        this.reason = `column ${this.names[i]}: expected true or false, got ${quote(cell)}`;
        return undefined;
      }
    }
  }

  private fromJson(line: string, row: Row): string | null {
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      return `invalid JSON: ${(e as Error).message}`;
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return 'expected a JSON object';
    const o = obj as Record<string, unknown>;
    for (let i = 0; i < this.ncols; i++) {
      const name = this.names[i] as string;
      const v = o[name];
      if (v === undefined || v === null) {
        if (this.nullable[i] && !this.melted[i]) {
          row[name] = null;
          continue;
        }
        return `column ${name}: missing`;
      }
      if (this.melted[i]) {
        this.meltCells[i] = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : String(v);
        continue;
      }
      const t = this.types[i];
      if (typeof v === 'number') {
        if (t === 'double' || (t === 'int' && Number.isInteger(v))) {
          row[name] = v;
          continue;
        }
        if (t === 'int') return `column ${name}: expected an integer, got ${v}`;
        return `column ${name}: expected ${t === 'bool' ? 'true or false' : 'a string'}, got ${v}`;
      }
      if (typeof v === 'boolean') {
        if (t !== 'bool') return `column ${name}: expected ${t === 'string' ? 'a string' : 'a number'}, got ${v}`;
        row[name] = v;
        continue;
      }
      if (typeof v === 'string') {
        const c = this.convert(i, this.trim && t !== 'string' ? v.trim() : v);
        if (c === undefined) return this.reason;
        row[name] = c;
        continue;
      }
      return `column ${name}: expected a value, got ${Array.isArray(v) ? 'a list' : 'an object'}`;
    }
    return null;
  }

  private emitMelted(base: Row, ts: number, rows: Row[], timestamps: number[]): string | null {
    const melt = this.melt as NonNullable<FileSourceSpec['melt']>;
    const k = this.meltIdx.length;
    const values: Value[] = new Array(k);
    for (let j = 0; j < k; j++) {
      const idx = this.meltIdx[j] as number;
      const name = this.names[idx] as string;
      const raw = this.meltCells[idx];
      let v: Value | undefined;
      if (typeof raw === 'string') {
        v = this.convert(idx, raw);
        if (v === null) {
          this.reason = `column ${name}: empty`;
          v = undefined;
        }
      } else if (melt.valueType === 'double' || melt.valueType === 'int') {
        v = typeof raw === 'number' && (melt.valueType === 'double' || Number.isInteger(raw)) ? raw : undefined;
        if (v === undefined) this.reason = `column ${name}: expected a number, got ${String(raw)}`;
      } else {
        v = raw === undefined ? undefined : raw;
        if (v === undefined) this.reason = `column ${name}: missing`;
      }
      if (v === undefined) return this.reason;
      values[j] = v;
    }
    const first = rows.length;
    const keep = this.meltKeep;
    for (let j = 0; j < k; j++) {
      let row: Row;
      if (keep === undefined) row = { ...base };
      else {
        row = {};
        for (let f = 0; f < keep.length; f++) row[keep[f]] = base[keep[f]];
      }
      row[melt.nameField] = this.meltNames[j] as string;
      row[melt.valueField] = values[j] as Value;
      row[this.tsOut] = ts;
      const bad = pushMeltedRow(this.rules, row, ts, rows, timestamps, first);
      if (bad !== null) return bad;
    }
    return null;
  }

  /** Column specs, in file order. */
  get columns(): readonly ColumnSpec[] {
    return this.cols;
  }
}
