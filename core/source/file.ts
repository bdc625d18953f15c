/**
 * Reader for file sources (CSV / JSON lines, plain or gzip).
 */
import type { FileSourceSpec } from '../spec/types.js';
import { LineDecoder } from './decode.js';
import { LineReader, RAW_LIMIT } from './lines.js';
import { ThingSpeakCsvDecoder } from './thingspeak.js';
import type { SourceBatch, SourcePosition, SourceReader } from './types.js';

/**
 * Reads the files `fileIndexes` (indexes into `spec.paths`) one after the other, in increasing
 * order. Dead letters carry `source: "<path as written>:<line>"` (1-based) and `raw` cut to
 * 1 KiB. Empty lines and the header line count in `linesRead` but produce nothing.
 * Position: `split` is the index of the file being read, `nextLine` / `byteOffset` the next
 * line in it; a restored reader skips the files before `split`.
 */
export class FileSourceReader implements SourceReader {
  readonly description: string;
  private readonly decoder: LineDecoder | ThingSpeakCsvDecoder;
  private readonly files: number[];
  private fileAt = 0;
  private reader: LineReader | undefined;
  private display = '';
  private done = false;
  private restore: SourcePosition | undefined;
  private stopped = false;

  /** @throws EngineError `EXPR_INVALID` when a validate rule does not compile. */
  constructor(
    private readonly spec: FileSourceSpec,
    fileIndexes: number[],
    restore?: SourcePosition,
    fields?: string[],
  ) {
    this.files = [...fileIndexes].sort((a, b) => a - b);
    this.decoder = spec.format === 'thingspeak-csv' ? new ThingSpeakCsvDecoder(spec) : new LineDecoder(spec, fields);
    const shown = this.files.map((i) => this.displayPath(i));
    this.description = shown.length === 0 ? 'file (no split)' : `file ${shown.join(', ')}`;
    if (restore) {
      this.restore = restore;
      while (this.fileAt < this.files.length && (this.files[this.fileAt] as number) < restore.split) this.fileAt++;
    }
    this.done = this.fileAt >= this.files.length;
  }

  private displayPath(i: number): string {
    return this.spec.displayPaths?.[i] ?? (this.spec.paths[i] as string);
  }

  private async openCurrent(): Promise<LineReader> {
    const idx = this.files[this.fileAt] as number;
    const r = this.restore && this.restore.split === idx ? this.restore : undefined;
    this.restore = undefined;
    // a ThingSpeak export's header maps its columns, also when resuming mid-file
    if (this.decoder instanceof ThingSpeakCsvDecoder)
      await this.decoder.startFile(this.spec.paths[idx] as string, this.displayPath(idx));
    const reader = new LineReader(this.spec.paths[idx] as string, {
      compression: this.spec.compression,
      encoding: this.spec.encoding ?? 'utf8',
      maxLineBytes: this.spec.maxLineBytes,
      startOffset: r?.byteOffset ?? 0,
      startLine: r ? r.nextLine - 1 : 0,
    });
    await reader.open();
    this.display = this.displayPath(idx);
    this.reader = reader;
    return reader;
  }

  async poll(out: SourceBatch, maxLines: number): Promise<boolean> {
    out.rows.length = 0;
    out.timestamps.length = 0;
    out.deadLetters.length = 0;
    out.linesRead = 0;
    let lines = 0;
    while (lines < maxLines && !this.done) {
      const r = this.reader ?? (await this.openCurrent());
      if (r.next()) {
        lines++;
        this.handle(r, out);
        continue;
      }
      if (await r.fill()) continue;
      if (this.spec.follow && !this.stopped) {
        // at the current end of a followed file: remember where the next line starts (an
        // unterminated last line may still be growing) and read from there on the next poll
        this.restore = { split: this.files[this.fileAt] as number, nextLine: r.lineNo + 1, byteOffset: r.nextOffset };
        await r.close();
        this.reader = undefined;
        break;
      }
      if (r.finish()) {
        lines++;
        this.handle(r, out);
      }
      await r.close();
      this.reader = undefined;
      this.fileAt++;
      this.done = this.fileAt >= this.files.length;
    }
    out.linesRead = lines;
    return !this.done;
  }

  private handle(r: LineReader, out: SourceBatch): void {
    if (r.error !== null) {
      this.reject(r.error, r.line, r.lineNo, out);
      return;
    }
    if (r.empty || (r.lineNo === 1 && this.spec.header)) return;
    const reason = this.decoder.decode(r.line, out.rows, out.timestamps);
    if (reason !== null) this.reject(reason, r.line, r.lineNo, out);
  }

  private reject(reason: string, line: string, lineNo: number, out: SourceBatch): void {
    out.deadLetters.push({
      reason,
      source: `${this.display}:${lineNo}`,
      raw: line.length > RAW_LIMIT ? line.slice(0, RAW_LIMIT) : line,
    });
  }

  position(): SourcePosition {
    const idx = this.files[Math.min(this.fileAt, this.files.length - 1)] ?? 0;
    if (this.reader) return { split: idx, nextLine: this.reader.lineNo + 1, byteOffset: this.reader.nextOffset };
    if (this.done) return { split: this.files.length === 0 ? 0 : idx + 1, nextLine: 1, byteOffset: 0 };
    if (this.restore) return { ...this.restore };
    return { split: idx, nextLine: 1, byteOffset: 0 };
  }

  /** For a followed source: read up to the current end of the files, then end (drain). */
  stopFollowing(): void {
    this.stopped = true;
  }

  async close(): Promise<void> {
    await this.reader?.close();
    this.reader = undefined;
    this.done = true;
  }
}
