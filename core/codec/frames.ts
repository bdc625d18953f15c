/**
 * Data-plane frames: what one producer subtask sends to one consumer input channel, in order.
 * Little-endian layout:
 * ```
 * u8  kind     1 RECORDS, 2 WATERMARK, 3 STATUS, 4 BARRIER, 5 END_OF_INPUT
 * u32 channel  index of the input channel at the consumer (assigned at deploy)
 * RECORDS:      u32 count, then per record: f64 ts, f64 sourceWatermark, the row (row-codec.ts)
 * WATERMARK:    f64 watermark (±Infinity allowed)
 * STATUS:       u8 1 = idle, 0 = active
 * BARRIER:      f64 checkpointId, f64 timestampMs, u8 flags (0 aligned, 1 unaligned/at-least-once)
 * END_OF_INPUT: nothing more
 * ```
 * Times are ms since the epoch. Decoders throw EngineError `PROTOCOL` on a wrong kind, truncated
 * data or trailing bytes.
 */
import { EngineError } from '../errors/index.js';
import type { Row } from '../spec/types.js';
import { ByteReader, ByteWriter } from './bytes.js';
import type { RowCodec } from './row-codec.js';

export const FrameKind = {
  RECORDS: 1,
  WATERMARK: 2,
  STATUS: 3,
  BARRIER: 4,
  END_OF_INPUT: 5,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

const HEADER_BYTES = 5;

/** Barrier flags: 0 = aligned exactly-once, 1 = unaligned / at-least-once. */
export interface Barrier {
  checkpointId: number;
  timestampMs: number;
  flags: number;
}

/**
 * Builds RECORDS frames in a reused growable buffer.
 * Usage: `beginRecords(ch)`, `writeRecord(...)` × n, `finish()`; repeat.
 */
export class FrameWriter {
  private readonly w: ByteWriter;
  private count = 0;
  private open = false;

  /** @param initialBytes starting capacity (default 64 KiB); grows as needed */
  constructor(initialBytes = 64 * 1024) {
    this.w = new ByteWriter(initialBytes);
  }

  /** Starts a RECORDS frame for consumer input `channel`, discarding any unfinished frame. */
  beginRecords(channel: number): void {
    const w = this.w;
    w.reset();
    w.u8(FrameKind.RECORDS);
    w.u32(channel);
    w.u32(0); // count, patched by finish()
    this.count = 0;
    this.open = true;
  }

  /** Appends one record. @throws EngineError `INTERNAL` if no frame was begun or a value mismatches its type */
  writeRecord(codec: RowCodec, row: Row, ts: number, sourceWatermark: number): void {
    if (!this.open) throw new EngineError('INTERNAL', 'FrameWriter.writeRecord before beginRecords');
    const w = this.w;
    w.ensure(16);
    w.dv.setFloat64(w.pos, ts, true);
    w.dv.setFloat64(w.pos + 8, sourceWatermark, true);
    w.pos += 16;
    codec.write(w, row);
    this.count++;
  }

  /** Records in the frame being built. */
  get recordCount(): number {
    return this.count;
  }

  /** Bytes of the frame being built (for batching by size). */
  get byteLength(): number {
    return this.w.pos;
  }

  /**
   * Finishes the frame and returns it as a fresh, exactly-sized `Uint8Array` with its own
   * `ArrayBuffer` (byteOffset 0): the caller owns it and may transfer `result.buffer` with
   * postMessage. The writer's internal buffer is kept for the next frame.
   */
  finish(): Uint8Array {
    if (!this.open) throw new EngineError('INTERNAL', 'FrameWriter.finish before beginRecords');
    this.w.dv.setUint32(HEADER_BYTES, this.count, true);
    this.open = false;
    return this.w.toBytes();
  }
}

function control(kind: FrameKind, channel: number, extra: number): { buf: Uint8Array; dv: DataView } {
  const buf = new Uint8Array(HEADER_BYTES + extra);
  const dv = new DataView(buf.buffer);
  buf[0] = kind;
  dv.setUint32(1, channel, true);
  return { buf, dv };
}

/** A WATERMARK frame (`wm` may be ±Infinity). */
export function encodeWatermark(channel: number, wm: number): Uint8Array {
  const { buf, dv } = control(FrameKind.WATERMARK, channel, 8);
  dv.setFloat64(HEADER_BYTES, wm, true);
  return buf;
}

/** A STATUS frame: `idle` true = the channel's producer is idle. */
export function encodeStatus(channel: number, idle: boolean): Uint8Array {
  const { buf } = control(FrameKind.STATUS, channel, 1);
  buf[HEADER_BYTES] = idle ? 1 : 0;
  return buf;
}

/** A BARRIER frame for checkpoint `checkpointId` (an integer < 2^53), `flags` 0 aligned, 1 unaligned. */
export function encodeBarrier(channel: number, checkpointId: number, timestampMs: number, flags = 0): Uint8Array {
  const { buf, dv } = control(FrameKind.BARRIER, channel, 17);
  dv.setFloat64(HEADER_BYTES, checkpointId, true);
  dv.setFloat64(HEADER_BYTES + 8, timestampMs, true);
  buf[HEADER_BYTES + 16] = flags;
  return buf;
}

/** An END_OF_INPUT frame. */
export function encodeEndOfInput(channel: number): Uint8Array {
  return control(FrameKind.END_OF_INPUT, channel, 0).buf;
}

/** Reads the kind and channel of any frame. @throws EngineError `PROTOCOL` if short or of unknown kind */
export function readFrameHeader(buf: Uint8Array): { kind: FrameKind; channel: number } {
  if (buf.byteLength < HEADER_BYTES) throw new EngineError('PROTOCOL', `frame too short: ${buf.byteLength} bytes`);
  const kind = buf[0];
  if (kind < FrameKind.RECORDS || kind > FrameKind.END_OF_INPUT)
    throw new EngineError('PROTOCOL', `unknown frame kind ${kind}`);
  const channel = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(1, true);
  return { kind: kind as FrameKind, channel };
}

function reader(buf: Uint8Array, kind: FrameKind, body: number | null): ByteReader {
  const h = readFrameHeader(buf);
  if (h.kind !== kind) throw new EngineError('PROTOCOL', `expected frame kind ${kind}, got ${h.kind}`);
  if (body !== null && buf.byteLength !== HEADER_BYTES + body) {
    throw new EngineError('PROTOCOL', `frame kind ${kind} must be ${HEADER_BYTES + body} bytes, got ${buf.byteLength}`);
  }
  return new ByteReader(buf, HEADER_BYTES);
}

/**
 * Decodes a RECORDS frame, calling `handler(row, ts, sourceWatermark)` per record in order.
 * Each row is a fresh object the handler may keep. Returns the record count.
 */
export function decodeRecords(
  buf: Uint8Array,
  codec: RowCodec,
  handler: (row: Row, ts: number, sourceWatermark: number) => void,
): number {
  const r = reader(buf, FrameKind.RECORDS, null);
  const count = r.u32();
  for (let i = 0; i < count; i++) {
    const ts = r.f64();
    const wm = r.f64();
    handler(codec.read(r), ts, wm);
  }
  if (r.remaining !== 0) throw new EngineError('PROTOCOL', `${r.remaining} trailing bytes after ${count} records`);
  return count;
}

export function decodeWatermark(buf: Uint8Array): number {
  return reader(buf, FrameKind.WATERMARK, 8).f64();
}

/** True when the STATUS frame says idle. */
export function decodeStatus(buf: Uint8Array): boolean {
  const b = reader(buf, FrameKind.STATUS, 1).u8();
  if (b > 1) throw new EngineError('PROTOCOL', `bad status byte ${b}`);
  return b === 1;
}

export function decodeBarrier(buf: Uint8Array): Barrier {
  const r = reader(buf, FrameKind.BARRIER, 17);
  return { checkpointId: r.f64(), timestampMs: r.f64(), flags: r.u8() };
}

/** Checks an END_OF_INPUT frame (throws `PROTOCOL` otherwise). */
export function decodeEndOfInput(buf: Uint8Array): void {
  reader(buf, FrameKind.END_OF_INPUT, 0);
}
