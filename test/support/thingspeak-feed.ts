/**
 * Builds a ThingSpeak channel-feed JSON document (the shape of the REST API's
 * `GET /channels/<id>/feeds.json`) from a real ThingSpeak CSV export, so the JSON reader is
 * tested on real values without a real JSON download in the repo. Every value is copied from the
 * CSV as text (`"21.20"`), an empty cell becomes `null` (as the API writes a field not set in an
 * update), `entry_id` becomes a number, `created_at` keeps the export's text. Only the channel
 * metadata is supplied by the caller (the exports do not carry it).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

/** Channel metadata as the API writes it: `{ id, name, field1: "Temperature", … }`. */
export type ChannelMeta = Record<string, string | number>;

/** Reads a (possibly gzip) CSV export into its header and rows of cells; quoted empty cells (`""`) become empty. */
export function readExport(path: string): { header: string[]; rows: string[][] } {
  let buf = readFileSync(path);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  const lines = buf
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '');
  const cells = (l: string) => l.split(',').map((c) => (c === '""' ? '' : c));
  return { header: cells(lines[0] as string), rows: lines.slice(1).map(cells) };
}

/**
 * The JSON feed of an export: `feeds` entries carry created_at, entry_id and the export's field
 * columns renamed `field1..N` in order (latitude, longitude, elevation, status are left out).
 * `limit` keeps the first n rows. Returned as text, pretty-printed with `indent` spaces (0 = one line).
 */
export function feedFromExport(path: string, channel: ChannelMeta | null, limit?: number, indent = 0): string {
  const { header, rows } = readExport(path);
  const extra = new Set(['latitude', 'longitude', 'elevation', 'status']);
  const fieldCols = header.map((h, i) => (i >= 2 && !extra.has(h) ? i : -1)).filter((i) => i >= 0);
  const feeds = rows.slice(0, limit).map((r) => {
    const e: Record<string, unknown> = { created_at: r[0], entry_id: Number(r[1]) };
    fieldCols.forEach((c, k) => {
      const v = r[c] ?? '';
      e[`field${k + 1}`] = v === '' ? null : v;
    });
    return e;
  });
  const doc: Record<string, unknown> = {};
  if (channel) doc.channel = channel;
  doc.feeds = feeds;
  return JSON.stringify(doc, null, indent);
}
