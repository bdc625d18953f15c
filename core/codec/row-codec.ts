/**
 * Binary encoding of rows by schema (projection: only the schema's fields are written, in schema
 * order; other fields of the row are dropped).
 *
 * Per field, by `FieldType`:
 * - `string`: `varint(byteLength + 1)` then UTF-8 bytes; varint 0 = null (ASCII fast path);
 * - `double`, `int`: `u8 present` (0 = null, 1 = value) then `f64` LE. A plain f64 keeps every
 *   JS number exact (ints up to 2^53, −0, NaN, ±Infinity) and costs one DataView call; a varint
 *   for ints would save a few bytes but needs floating-point division for values ≥ 2^31, and
 *   sensor payloads are dominated by the id string anyway;
 * - `bool`: `u8` 0 false, 1 true, 2 null.
 * A missing field (`undefined`) is written as null.
 */
import { EngineError } from '../errors/index.js';
import type { FieldType, Row, Value } from '../spec/types.js';
import type { ByteReader, ByteWriter } from './bytes.js';

export interface CodecField {
  name: string;
  type: FieldType;
}

const STRING = 0;
const NUMBER = 1;
const BOOL = 2;

export class RowCodec {
  readonly fields: readonly CodecField[];
  private readonly names: string[];
  private readonly kinds: number[];

  /** @throws EngineError `SPEC_INVALID` for duplicate field names or an unknown type */
  constructor(fields: CodecField[]) {
    const seen = new Set<string>();
    for (const f of fields) {
      if (seen.has(f.name)) throw new EngineError('SPEC_INVALID', `row codec: duplicate field '${f.name}'`);
      seen.add(f.name);
      if (f.type !== 'string' && f.type !== 'double' && f.type !== 'int' && f.type !== 'bool') {
        throw new EngineError('SPEC_INVALID', `row codec: field '${f.name}' has unknown type '${String(f.type)}'`);
      }
    }
    this.fields = fields.map((f) => ({ ...f }));
    this.names = fields.map((f) => f.name);
    this.kinds = fields.map((f) => (f.type === 'string' ? STRING : f.type === 'bool' ? BOOL : NUMBER));
  }

  /**
   * Appends `row` to `w`.
   * @throws EngineError `INTERNAL` when a value does not match its field's type (a schema bug upstream)
   */
  write(w: ByteWriter, row: Row): void {
    const names = this.names;
    const kinds = this.kinds;
    for (let i = 0; i < names.length; i++) {
      const v = row[names[i]];
      switch (kinds[i]) {
        case STRING:
          if (typeof v === 'string') w.string(v);
          else if (v === null || v === undefined) w.u8(0);
          else throw mismatch(names[i], 'string', v);
          break;
        case NUMBER:
          if (typeof v === 'number') {
            w.ensure(9);
            w.buf[w.pos] = 1;
            w.dv.setFloat64(w.pos + 1, v, true);
            w.pos += 9;
          } else if (v === null || v === undefined) w.u8(0);
          else throw mismatch(names[i], 'number', v);
          break;
        default:
          if (typeof v === 'boolean') w.u8(v ? 1 : 0);
          else if (v === null || v === undefined) w.u8(2);
          else throw mismatch(names[i], 'bool', v);
      }
    }
  }

  /** Reads one row (a fresh object with the schema's fields in order). */
  read(r: ByteReader): Row {
    const names = this.names;
    const kinds = this.kinds;
    const row: Row = {};
    for (let i = 0; i < names.length; i++) {
      let v: Value;
      switch (kinds[i]) {
        case STRING:
          v = r.string();
          break;
        case NUMBER:
          v = r.u8() === 0 ? null : r.f64();
          break;
        default: {
          const b = r.u8();
          if (b > 2) throw new EngineError('PROTOCOL', `bad bool byte ${b} for field '${names[i]}'`);
          v = b === 2 ? null : b === 1;
        }
      }
      row[names[i]] = v;
    }
    return row;
  }
}

function mismatch(name: string, want: string, v: unknown): EngineError {
  return new EngineError('INTERNAL', `row codec: field '${name}' expects ${want}, got ${typeof v}`);
}
