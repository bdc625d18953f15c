/**
 * Little-endian binary writer and reader shared by the data-plane frames (frames.ts) and state
 * snapshots (core/windows). Strings are `varint(byteLength + 1)` then UTF-8 bytes; varint 0 is
 * null. ASCII strings take a fast path without TextEncoder/Buffer calls.
 */
import { EngineError } from '../errors/index.js';

const encoder = new TextEncoder();

/** Number of bytes of the LEB128 varint for a non-negative integer `v` < 2^53. */
export function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** A growable byte buffer. Not thread-safe; reuse one per task with `reset()`. */
export class ByteWriter {
  buf: Uint8Array;
  dv: DataView;
  pos = 0;

  /** @param initialBytes starting capacity, default 64 KiB; grows by doubling */
  constructor(initialBytes = 64 * 1024) {
    this.buf = new Uint8Array(Math.max(16, initialBytes));
    this.dv = new DataView(this.buf.buffer);
  }

  reset(): void {
    this.pos = 0;
  }

  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  u32(v: number): void {
    this.ensure(4);
    this.dv.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  f64(v: number): void {
    this.ensure(8);
    this.dv.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  /** LEB128 varint of a non-negative integer < 2^53. */
  varint(v: number): void {
    this.ensure(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  /** `varint(byteLength + 1)` + UTF-8 bytes; `null` → varint 0. */
  string(s: string | null): void {
    if (s === null) {
      this.u8(0);
      return;
    }
    const len = s.length;
    if (len < 127) {
      // one-byte header; optimistic ASCII copy
      this.ensure(len + 1);
      const buf = this.buf;
      let p = this.pos + 1;
      for (let i = 0; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) {
          this.stringSlow(s);
          return;
        }
        buf[p++] = c;
      }
      buf[this.pos] = len + 1;
      this.pos = p;
      return;
    }
    this.stringSlow(s);
  }

  private stringSlow(s: string): void {
    const max = s.length * 3;
    this.ensure(max + 16); // room for the bytes and any header, so varint() below never reallocates
    // encode after a worst-case header, then move if the header is shorter
    const hdrMax = varintSize(max + 1);
    const { written } = encoder.encodeInto(s, this.buf.subarray(this.pos + hdrMax));
    const hdr = varintSize(written + 1);
    if (hdr !== hdrMax) this.buf.copyWithin(this.pos + hdr, this.pos + hdrMax, this.pos + hdrMax + written);
    this.varint(written + 1);
    this.pos += written;
  }

  bytes(src: Uint8Array): void {
    this.ensure(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** A copy of the bytes written so far, in its own exactly-sized ArrayBuffer (safe to transfer). */
  toBytes(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Reads what `ByteWriter` wrote. Every read checks bounds and throws `PROTOCOL` on truncation. */
export class ByteReader {
  readonly buf: Uint8Array;
  private readonly dv: DataView;
  private readonly nodeBuf: Buffer;
  pos: number;
  readonly end: number;

  constructor(buf: Uint8Array, offset = 0) {
    this.buf = buf;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.nodeBuf = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = offset;
    this.end = buf.byteLength;
  }

  private need(n: number): void {
    if (this.pos + n > this.end)
      throw new EngineError(
        'PROTOCOL',
        `truncated binary data: need ${n} bytes at offset ${this.pos}, have ${this.end - this.pos}`,
      );
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  f64(): number {
    this.need(8);
    const v = this.dv.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      this.need(1);
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new EngineError('PROTOCOL', `varint too long at offset ${this.pos}`);
  }

  string(): string | null {
    let v: number;
    const first = this.pos < this.end ? this.buf[this.pos] : 0x80;
    if (first < 0x80) {
      this.pos++;
      v = first;
    } else {
      v = this.varint();
    }
    if (v === 0) return null;
    const len = v - 1;
    this.need(len);
    const start = this.pos;
    this.pos += len;
    if (len <= 64) {
      // short strings are usually ASCII (sensor ids): latin1 decoding of ASCII bytes is the
      // cheapest native path; fall back to UTF-8 on the first byte ≥ 0x80
      const buf = this.buf;
      for (let i = start; i < start + len; i++) {
        if (buf[i] > 0x7f) return this.nodeBuf.toString('utf8', start, start + len);
      }
      return this.nodeBuf.toString('latin1', start, start + len);
    }
    return this.nodeBuf.toString('utf8', start, start + len);
  }
}
