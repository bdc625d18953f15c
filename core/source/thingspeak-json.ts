/**
 * Reader for `format: thingspeak-json`: ThingSpeak channel-feed documents
 * (`{ "channel": {...}, "feeds": [ {...}, ... ] }`), streamed with FeedScanner so a file of any
 * size is read in bounded memory (one 256 KiB chunk plus the largest entry, at most
 * `maxLineBytes`).
 *
 * - One entry of `feeds` plays the part of one line: `linesRead` counts entries, a rejected
 *   entry becomes a dead letter with `source: "<path>:feeds[<index>]"` (0-based) and its JSON
 *   text as `raw` (cut to 1 KiB).
 * - The channel id (`channel`, `sensorId`) is the spec's `channel`, else `channel.id` of the
 *   metadata if it comes before the first entry (as the ThingSpeak API writes it), else the file
 *   name without extension.
 * - Position: `split` = file index, `nextLine` = 1 + the number of entries read from the file,
 *   `byteOffset` = the offset just after the last entry read. A restored reader re-scans the file
 *   from its start and skips `nextLine − 1` entries without parsing them.
 * - A file that is not a JSON object, or has no `feeds` list, fails the task with `SOURCE_IO`.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { EngineError, ioReason } from '../errors/index.js';
import type { FileSourceSpec } from '../spec/types.js';
import { type FeedItem, FeedScanner } from './json-feed.js';
import { isGzipFile, RAW_LIMIT } from './lines.js';
import { channelFromPath, ThingSpeakEntryDecoder } from './thingspeak.js';
import type { SourceBatch, SourcePosition, SourceReader } from './types.js';

const READ_CHUNK = 256 * 1024;

/** Reads the ThingSpeak JSON feeds `fileIndexes` (indexes into `spec.paths`) one after the other. */
export class ThingSpeakJsonReader implements SourceReader {
  readonly description: string;
  private readonly entry: ThingSpeakEntryDecoder;
  private readonly files: number[];
  private fileAt = 0;
  private done: boolean;
  private restore: SourcePosition | undefined;
  private stream: Readable | undefined;
  private iter: AsyncIterator<Buffer> | undefined;
  private scanner: FeedScanner | undefined;
  private display = '';
  private skip = 0;
  private entriesRead = 0;
  private endOffset = 0;
  private channelKnown = false;
  private metaChannel: string | undefined;
  private ended = false;
  /** `fieldN` key of each field of the spec */
  private readonly keys: string[];

  /** @throws EngineError `EXPR_INVALID` when a validate rule does not compile. */
  constructor(
    private readonly spec: FileSourceSpec,
    fileIndexes: number[],
    restore?: SourcePosition,
  ) {
    this.files = [...fileIndexes].sort((a, b) => a - b);
    this.entry = new ThingSpeakEntryDecoder(spec);
    this.keys = (spec.thingspeak?.fields ?? []).map((f) => `field${f.slot}`);
    const shown = this.files.map((i) => this.displayPath(i));
    this.description = shown.length === 0 ? 'file (no split)' : `thingspeak-json ${shown.join(', ')}`;
    if (restore) {
      this.restore = restore;
      while (this.fileAt < this.files.length && (this.files[this.fileAt] as number) < restore.split) this.fileAt++;
    }
    this.done = this.fileAt >= this.files.length;
  }

  private displayPath(i: number): string {
    return this.spec.displayPaths?.[i] ?? (this.spec.paths[i] as string);
  }

  private async open(): Promise<FeedScanner> {
    const idx = this.files[this.fileAt] as number;
    const p = this.spec.paths[idx] as string;
    const r = this.restore && this.restore.split === idx ? this.restore : undefined;
    this.restore = undefined;
    this.display = this.displayPath(idx);
    let gzip: boolean;
    try {
      gzip = this.spec.compression === 'gzip' || (this.spec.compression === 'auto' && (await isGzipFile(p)));
    } catch (e) {
      throw new EngineError('SOURCE_IO', `cannot open ${p}: ${ioReason(e)}`, { cause: e });
    }
    const file = createReadStream(p, { highWaterMark: READ_CHUNK });
    if (gzip) {
      const gunzip = createGunzip({ chunkSize: 64 * 1024 });
      file.on('error', (e) => gunzip.destroy(e));
      this.stream = file.pipe(gunzip);
    } else this.stream = file;
    this.iter = this.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.scanner = new FeedScanner(this.spec.maxLineBytes);
    this.skip = r ? r.nextLine - 1 : 0;
    this.entriesRead = 0;
    this.endOffset = 0;
    this.channelKnown = false;
    this.metaChannel = undefined;
    this.ended = false;
    return this.scanner;
  }

  private async closeFile(): Promise<void> {
    this.stream?.destroy();
    this.stream = undefined;
    this.iter = undefined;
    this.scanner = undefined;
  }

  async poll(out: SourceBatch, maxLines: number): Promise<boolean> {
    out.rows.length = 0;
    out.timestamps.length = 0;
    out.deadLetters.length = 0;
    out.linesRead = 0;
    let lines = 0;
    while (lines < maxLines && !this.done) {
      const sc = this.scanner ?? (await this.open());
      const item = this.ended ? sc.end() : sc.next();
      if (item !== null) {
        if (this.handle(item, out)) lines++;
        continue;
      }
      if (sc.notObject)
        throw new EngineError('SOURCE_IO', `${this.display}: not a ThingSpeak channel feed (not a JSON object)`);
      if (!this.ended && (await this.fill(sc))) continue;
      if (!this.ended) {
        this.ended = true;
        continue;
      }
      if (!sc.sawFeeds)
        throw new EngineError('SOURCE_IO', `${this.display}: not a ThingSpeak channel feed (no "feeds" list)`);
      await this.closeFile();
      this.fileAt++;
      this.done = this.fileAt >= this.files.length;
    }
    out.linesRead = lines;
    return !this.done;
  }

  private async fill(sc: FeedScanner): Promise<boolean> {
    const iter = this.iter;
    if (!iter) return false;
    let r: IteratorResult<Buffer>;
    try {
      r = await iter.next();
    } catch (e) {
      throw new EngineError('SOURCE_IO', `cannot read ${this.display}: ${ioReason(e)}`, { cause: e });
    }
    if (r.done) return false;
    sc.push(r.value);
    return true;
  }

  /** Handles one scanned item; true when it was a feeds entry read (not skipped). */
  private handle(item: FeedItem, out: SourceBatch): boolean {
    if (item.kind === 'channel') {
      try {
        const meta = JSON.parse(item.text) as { id?: unknown };
        if (meta !== null && (typeof meta.id === 'number' || typeof meta.id === 'string'))
          this.metaChannel = String(meta.id);
      } catch {
        // unreadable metadata: the channel id falls back to the file name
      }
      return false;
    }
    if (item.index < this.skip) {
      this.entriesRead = item.index + 1;
      this.endOffset = item.endOffset;
      return false;
    }
    this.entriesRead = item.index + 1;
    this.endOffset = item.endOffset;
    if (!this.channelKnown) {
      const idx = this.files[this.fileAt] as number;
      this.entry.setChannel(
        this.spec.thingspeak?.channel ?? this.metaChannel ?? channelFromPath(this.spec.paths[idx] as string),
      );
      this.channelKnown = true;
    }
    const reason = item.error ?? this.decodeEntry(item.text, out);
    if (reason !== null) {
      out.deadLetters.push({
        reason,
        source: `${this.display}:feeds[${item.index}]`,
        raw: item.text.length > RAW_LIMIT ? item.text.slice(0, RAW_LIMIT) : item.text,
      });
    }
    return true;
  }

  private decodeEntry(text: string, out: SourceBatch): string | null {
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      return `invalid JSON: ${(e as Error).message}`;
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return 'expected a JSON object';
    const o = obj as Record<string, unknown>;
    const raw = this.entry.raw;
    const keys = this.keys;
    for (let j = 0; j < keys.length; j++) raw[j] = o[keys[j] as string];
    return this.entry.decode(o.created_at, o.entry_id, out.rows, out.timestamps);
  }

  position(): SourcePosition {
    const idx = this.files[Math.min(this.fileAt, this.files.length - 1)] ?? 0;
    if (this.scanner) return { split: idx, nextLine: this.entriesRead + 1, byteOffset: this.endOffset };
    if (this.done) return { split: this.files.length === 0 ? 0 : idx + 1, nextLine: 1, byteOffset: 0 };
    if (this.restore) return { ...this.restore };
    return { split: idx, nextLine: 1, byteOffset: 0 };
  }

  async close(): Promise<void> {
    await this.closeFile();
    this.done = true;
  }
}
