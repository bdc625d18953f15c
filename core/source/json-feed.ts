/**
 * An incremental scanner for one ThingSpeak channel-feed JSON document, as the ThingSpeak REST
 * API returns it (`GET /channels/<id>/feeds.json`):
 *
 * ```json
 * { "channel": { "id": 9, "name": "…", "field1": "Temperature", … },
 *   "feeds": [ { "created_at": "…", "entry_id": 1, "field1": "23.4", … }, … ] }
 * ```
 *
 * The document is one JSON value, not JSON lines, so it is never parsed whole: the scanner walks
 * the bytes once, tracking only nesting depth and string/escape state, and cuts out the text of
 * the `channel` object and of each element of the `feeds` list; only those small texts go through
 * `JSON.parse`. Memory stays bounded by the largest element (`maxBytes`), whatever the file size.
 *
 * - Keys of the root object other than `channel` and `feeds` are skipped, whatever they hold.
 * - A `feeds` element longer than `maxBytes` is discarded as it streams past (its first 1 KiB
 *   is kept) and reported with `error`.
 * - Invalid JSON inside an element is not the scanner's business: the element's text is returned
 *   and the caller's JSON.parse rejects it. Structural damage the scanner sees (the document ends
 *   inside an element) is reported as an element with `error`.
 */

/** What `next()` found. */
export type FeedItem =
  | { kind: 'channel'; text: string }
  | { kind: 'entry'; text: string; error: string | null; index: number; endOffset: number };

const RAW_KEEP = 1024;
const BOM = [0xef, 0xbb, 0xbf];

type Capture = 'none' | 'channel' | 'entry' | 'scalar';

export class FeedScanner {
  /** number of `feeds` elements returned so far */
  entries = 0;
  /** true once the root object was opened */
  sawRoot = false;
  /** true once a `feeds` list was opened */
  sawFeeds = false;
  /** set when the input is not a JSON object at all (first significant byte) */
  notObject = false;

  private depth = 0;
  private inString = false;
  private escape = false;
  /** bytes of the string being read at depth 1 (root keys); capped at 64 */
  private key: number[] = [];
  private lastString = '';
  private pendingKey: string | null = null;
  private feedsDepth = -1;
  private feedsDone = false;
  private capture: Capture = 'none';
  private captureDepth = 0;
  private parts: Buffer[] = [];
  private partsLen = 0;
  private overlong = false;
  private buf: Buffer | null = null;
  private pos = 0;
  private captureStart = 0;
  /** stream offset of buf[0] */
  private base = 0;
  /** BOM bytes matched so far at the start of the stream, and that count when the chunk began */
  private bom = 0;
  private bomBase = 0;

  /** @param maxBytes longest `feeds` element kept (bytes); longer ones are reported with `error` */
  constructor(private readonly maxBytes: number) {}

  /** Hands the scanner the next chunk; call only after next() returned null. */
  push(chunk: Buffer): void {
    if (this.buf !== null) this.base += this.buf.length;
    const b = chunk;
    this.bomBase = this.bom;
    this.buf = b;
    this.pos = 0;
    this.captureStart = 0;
  }

  /**
   * Scans on; returns the next item, or null when the chunk is used up (push another, or call
   * end() at the end of the input).
   */
  next(): FeedItem | null {
    const buf = this.buf;
    if (buf === null || this.notObject) return null;
    const n = buf.length;
    let i = this.pos;
    while (i < n) {
      const c = buf[i] as number;
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === 0x5c) this.escape = true;
        else if (c === 0x22) {
          this.inString = false;
          if (this.depth === 1 && this.capture === 'none') this.lastString = Buffer.from(this.key).toString('utf8');
        } else if (this.depth === 1 && this.capture === 'none' && this.key.length < 64) this.key.push(c);
        i++;
        continue;
      }
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        i++;
        continue;
      }
      if (!this.sawRoot) {
        // a UTF-8 byte-order mark (possibly split across chunks) before the root object
        if (this.bom < 3 && c === BOM[this.bom] && this.bom === i - this.pos + this.bomBase) {
          this.bom++;
          i++;
          continue;
        }
        if (c !== 0x7b) {
          this.notObject = true;
          this.pos = n;
          return null;
        }
        this.sawRoot = true;
      }
      if (c === 0x22) {
        this.inString = true;
        if (this.depth === 1) this.key.length = 0;
        if (this.capture === 'none' && this.depth === this.feedsDepth && !this.feedsDone) this.begin('scalar', i);
        i++;
        continue;
      }
      if (this.capture === 'scalar' && this.depth === this.feedsDepth && (c === 0x2c || c === 0x5d)) {
        // a scalar element ends before the comma / closing bracket
        const item = this.finishEntry(buf, i);
        this.pos = i;
        return item;
      }
      if (c === 0x7b || c === 0x5b) {
        if (this.capture === 'none') {
          if (this.depth === 1 && c === 0x7b && this.pendingKey === 'channel') this.begin('channel', i);
          else if (this.depth === 1 && c === 0x5b && this.pendingKey === 'feeds' && !this.sawFeeds) {
            this.sawFeeds = true;
            this.feedsDepth = 2;
          } else if (this.depth === this.feedsDepth && !this.feedsDone) this.begin('entry', i);
        }
        this.depth++;
        i++;
        continue;
      }
      if (c === 0x7d || c === 0x5d) {
        this.depth--;
        i++;
        if (this.capture !== 'none' && this.capture !== 'scalar' && this.depth === this.captureDepth) {
          if (this.capture === 'channel') {
            const text = this.take(buf, i).toString('utf8');
            this.capture = 'none';
            this.pos = i;
            return { kind: 'channel', text };
          }
          const item = this.finishEntry(buf, i);
          this.pos = i;
          return item;
        }
        if (this.depth === 1 && this.feedsDepth === 2 && !this.feedsDone && c === 0x5d) this.feedsDone = true;
        continue;
      }
      if (this.depth === 1 && this.capture === 'none') {
        if (c === 0x3a) this.pendingKey = this.lastString;
        else if (c === 0x2c) this.pendingKey = null;
      } else if (this.capture === 'none' && this.depth === this.feedsDepth && !this.feedsDone && c !== 0x2c) {
        this.begin('scalar', i);
      }
      i++;
    }
    // chunk used up: keep the captured part
    if (this.capture !== 'none') this.keep(buf, this.captureStart, n);
    this.pos = n;
    return null;
  }

  /** At the end of the input: an element cut off by the end of the document, if any. */
  end(): FeedItem | null {
    if (this.capture === 'none') return null;
    const buf = this.buf ?? Buffer.alloc(0);
    this.captureStart = buf.length;
    if (this.capture === 'scalar' && !this.inString) return this.finishEntry(buf, buf.length);
    const wasChannel = this.capture === 'channel';
    const item = this.finishEntry(buf, buf.length);
    if (wasChannel) return null;
    if (item.kind === 'entry' && item.error === null) item.error = 'the document ends inside this feeds entry';
    return item;
  }

  private begin(kind: Capture, at: number): void {
    this.capture = kind;
    this.captureDepth = this.depth;
    this.captureStart = at;
    this.parts.length = 0;
    this.partsLen = 0;
    this.overlong = false;
  }

  private keep(buf: Buffer, from: number, to: number): void {
    if (to <= from) return;
    if (this.overlong) return;
    if (this.capture !== 'channel' && this.partsLen + (to - from) > this.maxBytes) {
      const head = Buffer.concat([...this.parts, buf.subarray(from, Math.min(to, from + RAW_KEEP))]);
      this.parts = [Buffer.from(head.subarray(0, RAW_KEEP))];
      this.partsLen = this.parts[0]?.length ?? 0;
      this.overlong = true;
      return;
    }
    this.parts.push(Buffer.from(buf.subarray(from, to)));
    this.partsLen += to - from;
  }

  private take(buf: Buffer, to: number): Buffer {
    if (this.parts.length === 0 && !this.overlong) return buf.subarray(this.captureStart, to);
    this.keep(buf, this.captureStart, to);
    const whole = Buffer.concat(this.parts, this.partsLen);
    this.parts.length = 0;
    this.partsLen = 0;
    return whole;
  }

  private finishEntry(buf: Buffer, to: number): FeedItem {
    const long = this.overlong || this.partsLen + (to - this.captureStart) > this.maxBytes;
    const bytes = this.take(buf, to);
    this.capture = 'none';
    this.overlong = false;
    const index = this.entries++;
    return {
      kind: 'entry',
      text: (long ? bytes.subarray(0, RAW_KEEP) : bytes).toString('utf8'),
      error: long ? `feeds entry longer than ${this.maxBytes} bytes` : null,
      index,
      endOffset: this.base + to,
    };
  }
}
