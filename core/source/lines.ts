/**
 * A line splitter over a byte stream (a plain or gzip file), built for the source hot path.
 *
 * - Lines end at `\n`; a `\r` before it is dropped (CRLF). A last line without a final newline
 *   is returned too. An empty line is reported with `empty = true` (callers skip it silently).
 * - A line longer than `maxLineBytes` (bytes, terminator excluded) is never buffered whole:
 *   only its first 1 KiB is kept (for the dead letter) and the rest is discarded as it streams
 *   past; it is reported with `error = "line longer than N bytes"`.
 * - Fast path: the complete lines of a chunk that is pure ASCII (checked natively with
 *   buffer.isAscii), or any chunk in latin1, are decoded with one call and cut with indexOf.
 * - utf8 otherwise: each line is decoded with Buffer#toString; only if the result contains
 *   U+FFFD is the line checked strictly (TextDecoder fatal), and invalid lines are reported with
 *   `error = "invalid UTF-8"` (text shows U+FFFD). latin1 decodes every byte as one character.
 * - A UTF-8 byte-order mark at the start of the stream is dropped.
 * - Byte offsets are in the uncompressed stream; `nextOffset` is where the next line starts,
 *   which is what a checkpoint records.
 *
 * Usage (sync per line, async only per chunk):
 * ```ts
 * while (true) {
 *   if (r.next()) { use r.line / r.error / r.empty; continue; }
 *   if (!(await r.fill())) { if (r.finish()) use the last line; break; }
 * }
 * ```
 */
import { isAscii } from 'node:buffer';
import { createReadStream, promises as fsp } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { EngineError, ioReason } from '../errors/index.js';

/** Dead-letter `raw` texts are cut to this many characters. */
export const RAW_LIMIT = 1024;

export interface LineReaderOptions {
  compression: 'auto' | 'gzip' | 'none';
  encoding: 'utf8' | 'latin1';
  /** maximum line length in bytes (terminator excluded) */
  maxLineBytes: number;
  /** resume: byte offset of the next line in the uncompressed stream (default 0) */
  startOffset?: number;
  /** resume: number of lines before `startOffset` (so line numbers continue) */
  startLine?: number;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const READ_CHUNK = 256 * 1024;

/** True when the file starts with the gzip magic bytes 0x1f 0x8b. */
export async function isGzipFile(path: string): Promise<boolean> {
  const fh = await fsp.open(path, 'r');
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

export class LineReader {
  /** text of the current line (terminator and a trailing `\r` removed) */
  line = '';
  /** rejection reason of the current line, or null */
  error: string | null = null;
  /** true when the current line is empty */
  empty = false;
  /** 1-based number of the current line */
  lineNo: number;
  /** byte offset where the next line starts */
  nextOffset: number;

  private stream: Readable | undefined;
  private iter: AsyncIterator<Buffer> | undefined;
  private buf: Buffer | null = null;
  private pos = 0;
  /** offset of buf[0] in the uncompressed stream */
  private bufOffset: number;
  private carry: Buffer[] = [];
  private carryLen = 0;
  /** overlong-line mode: discarding bytes until the next newline */
  private skipping = false;
  private skipHead: Buffer | null = null;
  private eof = false;
  /**
   * String mode: the complete lines of the current chunk decoded at once (ASCII chunks, or any
   * chunk in latin1), so one char is one byte and offsets are char offsets. null when off.
   */
  private str: string | null = null;
  private strPos = 0;
  /** stream offset of str[0] */
  private strBase = 0;
  /** buf position just after the region covered by str */
  private strEnd = 0;
  private atStart: boolean;
  private readonly latin1: boolean;
  private readonly max: number;

  constructor(
    private readonly path: string,
    private readonly opts: LineReaderOptions,
  ) {
    this.lineNo = opts.startLine ?? 0;
    this.nextOffset = opts.startOffset ?? 0;
    this.bufOffset = this.nextOffset;
    this.atStart = this.nextOffset === 0;
    this.latin1 = opts.encoding === 'latin1';
    this.max = opts.maxLineBytes;
  }

  /**
   * Opens the file. For gzip input a resume offset is reached by re-reading and skipping lines.
   * @throws EngineError `SOURCE_IO` when the file cannot be opened.
   */
  async open(): Promise<void> {
    let gzip: boolean;
    try {
      gzip = this.opts.compression === 'gzip' || (this.opts.compression === 'auto' && (await isGzipFile(this.path)));
    } catch (e) {
      throw new EngineError('SOURCE_IO', `cannot open ${this.path}: ${ioReason(e)}`, { cause: e });
    }
    const skipTo = this.nextOffset;
    const skipLines = this.lineNo;
    if (gzip) {
      const file = createReadStream(this.path, { highWaterMark: READ_CHUNK });
      const gunzip = createGunzip({ chunkSize: 64 * 1024 });
      file.on('error', (e) => gunzip.destroy(e));
      this.stream = file.pipe(gunzip);
      this.bufOffset = 0;
      this.nextOffset = 0;
      this.lineNo = 0;
      this.atStart = true;
    } else {
      this.stream = createReadStream(this.path, { highWaterMark: READ_CHUNK, start: skipTo });
    }
    this.iter = this.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    if (gzip && skipTo > 0) {
      // re-read and drop whole lines up to the checkpointed offset
      while (this.nextOffset < skipTo) {
        if (this.next()) continue;
        if (!(await this.fill())) {
          this.finish();
          break;
        }
      }
      this.lineNo = skipLines;
    }
  }

  /**
   * Reads the next chunk. Resolves false at the end of the stream.
   * @throws EngineError `SOURCE_IO` on a read or decompression error.
   */
  async fill(): Promise<boolean> {
    if (this.eof || !this.iter) return false;
    let r: IteratorResult<Buffer>;
    try {
      r = await this.iter.next();
    } catch (e) {
      throw new EngineError('SOURCE_IO', `cannot read ${this.path}: ${ioReason(e)}`, { cause: e });
    }
    if (r.done) {
      this.eof = true;
      return false;
    }
    let b = r.value;
    if (this.atStart) {
      this.atStart = false;
      if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) {
        b = b.subarray(3);
        this.bufOffset += 3;
        this.nextOffset += 3;
      }
    }
    this.buf = b;
    this.pos = 0;
    this.tryStringMode();
    return true;
  }

  private tryStringMode(): void {
    const buf = this.buf;
    if (buf === null || this.carryLen > 0 || this.skipping) return;
    const last = buf.lastIndexOf(10);
    if (last < this.pos) return;
    if (!this.latin1 && !isAscii(buf.subarray(this.pos, last + 1))) return;
    this.str = buf.toString('latin1', this.pos, last + 1);
    this.strPos = 0;
    this.strBase = this.bufOffset + this.pos;
    this.strEnd = last + 1;
  }

  private nextInString(str: string): boolean {
    const start = this.strPos;
    const nl = str.indexOf('\n', start);
    this.lineNo++;
    this.strPos = nl + 1;
    this.nextOffset = this.strBase + nl + 1;
    if (this.strPos >= str.length) {
      this.str = null;
      this.pos = this.strEnd;
    }
    if (nl - start > this.max) {
      this.line = str.slice(start, start + RAW_LIMIT);
      this.error = `line longer than ${this.max} bytes`;
      this.empty = false;
      return true;
    }
    let end = nl;
    if (end > start && str.charCodeAt(end - 1) === 13) end--;
    this.error = null;
    this.empty = end === start;
    this.line = this.empty ? '' : str.slice(start, end);
    return true;
  }

  /**
   * Advances to the next complete line of the current chunk. Returns false when the chunk is
   * used up (call fill()).
   */
  next(): boolean {
    if (this.str !== null) return this.nextInString(this.str);
    const buf = this.buf;
    if (buf === null) return false;
    const pos = this.pos;
    const nl = buf.indexOf(10, pos);
    if (nl === -1) {
      this.keepPartial(buf, pos);
      this.bufOffset += buf.length;
      this.buf = null;
      return false;
    }
    this.lineNo++;
    this.pos = nl + 1;
    this.nextOffset = this.bufOffset + nl + 1;
    if (this.skipping) {
      this.emitOverlong();
    } else if (this.carryLen > 0) {
      const total = this.carryLen + (nl - pos);
      if (total > this.max) {
        this.skipHead = Buffer.concat(this.carry).subarray(0, RAW_LIMIT);
        this.emitOverlong();
      } else {
        this.carry.push(buf.subarray(pos, nl));
        const whole = Buffer.concat(this.carry, total);
        this.carry.length = 0;
        this.carryLen = 0;
        this.decode(whole, 0, total);
        this.tryStringMode();
      }
    } else if (nl - pos > this.max) {
      this.skipHead = buf.subarray(pos, pos + RAW_LIMIT);
      this.emitOverlong();
    } else {
      this.decode(buf, pos, nl);
    }
    return true;
  }

  /** At end of stream: returns true if a last line without a final newline is pending (now current). */
  finish(): boolean {
    if (!this.skipping && this.carryLen === 0) return false;
    this.lineNo++;
    this.nextOffset = this.bufOffset;
    if (this.skipping) this.emitOverlong();
    else {
      const whole = Buffer.concat(this.carry, this.carryLen);
      this.carry.length = 0;
      this.carryLen = 0;
      this.decode(whole, 0, whole.length);
    }
    return true;
  }

  async close(): Promise<void> {
    this.stream?.destroy();
    this.stream = undefined;
    this.iter = undefined;
    this.buf = null;
    this.str = null;
  }

  private keepPartial(buf: Buffer, pos: number): void {
    const rest = buf.length - pos;
    if (rest === 0) return;
    if (this.skipping) return;
    if (this.carryLen + rest > this.max) {
      // start discarding: keep only the head for the dead letter
      const head =
        this.carryLen > 0 ? Buffer.concat([...this.carry, buf.subarray(pos, pos + RAW_LIMIT)]) : buf.subarray(pos);
      this.skipHead = Buffer.from(head.subarray(0, RAW_LIMIT));
      this.carry.length = 0;
      this.carryLen = 0;
      this.skipping = true;
      return;
    }
    // copy: the chunk itself must not be retained
    this.carry.push(Buffer.from(buf.subarray(pos)));
    this.carryLen += rest;
  }

  private emitOverlong(): void {
    const head = this.skipHead ?? Buffer.alloc(0);
    this.line = head.toString(this.latin1 ? 'latin1' : 'utf8');
    this.error = `line longer than ${this.max} bytes`;
    this.empty = false;
    this.skipping = false;
    this.skipHead = null;
  }

  private decode(buf: Buffer, start: number, end: number): void {
    if (end > start && buf[end - 1] === 13) end--;
    this.error = null;
    if (end === start) {
      this.line = '';
      this.empty = true;
      return;
    }
    this.empty = false;
    if (this.latin1) {
      this.line = buf.toString('latin1', start, end);
      return;
    }
    const s = buf.toString('utf8', start, end);
    this.line = s;
    if (s.indexOf('\uFFFD') !== -1) {
      try {
        strictUtf8.decode(buf.subarray(start, end));
      } catch {
        this.error = 'invalid UTF-8';
      }
    }
  }
}
