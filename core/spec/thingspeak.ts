/**
 * The `thingspeak-csv` / `thingspeak-json` formats of the file source: spec syntax, validation
 * and field naming. The readers are in core/source/thingspeak.ts.
 *
 * ```yaml
 * source:
 *   type: file
 *   format: thingspeak-csv          # ThingSpeak export (created_at, entry_id, field1..8, …);
 *                                   # or thingspeak-json: the REST API's channel feed document
 *   path: data/feeds.csv
 *   channel: 1623014                # channel id, the sensor key; default: channel.id of a JSON
 *                                   # feed, else the file name without extension
 *   fields:                         # optional overrides, keyed by slot (field1..field8) or by
 *     field1: temperature           #   the channel's name for it ("Temperature", a CSV header)
 *     field3: { name: weather, type: string }
 *     field5: false                 # not read
 *   fieldNames: metadata            # metadata (default): names from the channel metadata / CSV
 *                                   #   header, normalised ("Light Level" → light_level); slots: field1..8
 *   melt: true                      # or { nameField: field, valueField: value, fields: [...] }
 *   eventTime: { timeZone: UTC }    # created_at is always the event time; timeZone is for text
 *                                   #   without an offset; minMs, maxMs, outputField as usual
 *   watermark: { outOfOrdernessMs: 60000 }
 *   validate: [...]
 * ```
 *
 * The export's latitude, longitude, elevation and status columns (and such keys of JSON entries)
 * are not read.
 *
 * Rows: `created_at` (text), `entry_id` (int), `channel` (string), `sensorId` (string: the
 * channel id, or `<channel>:<field>` when melted), one field per read slot (double unless typed,
 * null when empty), then the event time (`timestamp`, ms). With `melt`, each numeric field with a
 * value becomes one row `{ …, field: <name>, value: <number> }`; empty fields give no row.
 *
 * Field names are needed to check the job's steps, so when the spec does not list its fields the
 * validator reads them from the first file: the CSV header line, or the `channel` object of a
 * JSON feed (which must start within the first MiB, as the ThingSpeak API writes it). When the
 * file cannot be read there (a cluster whose files live on the TaskManagers), `fields` keyed by
 * slot (`field1: temperature`) is enough.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { constants, gunzipSync } from 'node:zlib';
import type * as z from 'zod';
import { splitCells } from '../source/csv.js';
import { FeedScanner } from '../source/json-feed.js';
import type { ColumnSpec, FieldType, FileSourceSpec, MeltSpec, ValidateRule, WatermarkSpec } from './types.js';

/** The ThingSpeak file formats. */
export const THINGSPEAK_FORMATS = ['thingspeak-csv', 'thingspeak-json'] as const;
export type ThingSpeakFormat = (typeof THINGSPEAK_FORMATS)[number];

/** CSV export columns that are never fields. */
export const THINGSPEAK_EXTRA_COLUMNS: ReadonlySet<string> = new Set(['latitude', 'longitude', 'elevation', 'status']);

/** Fields every ThingSpeak row has, besides its channel fields and the event-time field. */
export const THINGSPEAK_BUILTIN_FIELDS = ['created_at', 'entry_id', 'channel', 'sensorId'] as const;

/** How many bytes of a file the validator reads to find field names. */
const PEEK_BYTES = 1 << 20;

/**
 * A field name from channel metadata as an identifier usable in CEL: lower case, every run of
 * other characters than letters and digits becomes `_`, leading/trailing `_` dropped, a leading
 * digit gets an `f_` prefix. `"Temperature (°C)"` → `temperature_c`, `"Light Level"` →
 * `light_level`. Returns '' when nothing is left (the caller falls back to `fieldN`).
 */
export function thingSpeakFieldName(label: string): string {
  const s = label
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return /^[0-9]/.test(s) ? `f_${s}` : s;
}

/** One field slot found in a file: `fieldN` (N = slot) and the channel's name for it, if any. */
export interface PeekedField {
  slot: number;
  label: string | null;
}

/** The first `bytes` bytes of file `p` (gunzipped when it is gzip: magic bytes or `compression`), read synchronously. */
function readHead(p: string, bytes: number, compression: 'auto' | 'gzip' | 'none'): Buffer {
  const fd = openSync(p, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const n = readSync(fd, buf, 0, bytes, 0);
    const head = buf.subarray(0, n);
    const gz = compression === 'gzip' || (compression === 'auto' && n >= 2 && head[0] === 0x1f && head[1] === 0x8b);
    if (!gz) return head;
    return gunzipSync(head, { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, bytes);
  } finally {
    closeSync(fd);
  }
}

/**
 * The field columns of a ThingSpeak CSV header: every column after `created_at` and `entry_id`
 * except latitude/longitude/elevation/status, in order (slot 1, 2, …). A header `fieldN` has no
 * label; any other name (`temperature`, `temperatura`) is the label.
 * @returns the fields, or a reason the line is not a ThingSpeak header
 */
export function thingSpeakCsvHeader(line: string): { fields: PeekedField[]; columns: string[] } | string {
  const cells: string[] = [];
  const bad = splitCells(line, ',', cells);
  if (bad !== null) return `header: ${bad}`;
  const columns = cells.map((c) => c.trim());
  if (columns[0] !== 'created_at' || columns[1] !== 'entry_id')
    return `not a ThingSpeak export header (expected "created_at,entry_id,…", got "${line.slice(0, 60)}")`;
  const fields: PeekedField[] = [];
  for (let i = 2; i < columns.length; i++) {
    const name = columns[i] as string;
    if (THINGSPEAK_EXTRA_COLUMNS.has(name)) continue;
    const slot = fields.length + 1;
    fields.push({ slot, label: /^field[1-8]$/.test(name) ? null : name });
  }
  if (fields.length > 8) return `header has ${fields.length} field columns, ThingSpeak has at most 8`;
  return { fields, columns };
}

/** Field slots named in a channel metadata object (`"field1": "Temperature"`), in slot order. */
export function thingSpeakChannelFields(channel: Record<string, unknown>): PeekedField[] {
  const out: PeekedField[] = [];
  for (let slot = 1; slot <= 8; slot++) {
    const v = channel[`field${slot}`];
    if (typeof v === 'string') out.push({ slot, label: v.trim() === '' ? null : v });
  }
  return out;
}

/**
 * Reads the field slots of a ThingSpeak file (first MiB only): the CSV header, or the `channel`
 * metadata of a JSON feed (else the `fieldN` keys of its first entry).
 * @returns the fields, or a reason they could not be read
 */
export function peekThingSpeakFields(
  p: string,
  format: ThingSpeakFormat,
  compression: 'auto' | 'gzip' | 'none',
): PeekedField[] | string {
  let head: Buffer;
  try {
    head = readHead(p, PEEK_BYTES, compression);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no such file' : String((e as Error).message);
  }
  if (format === 'thingspeak-csv') {
    let end = head.indexOf(10);
    if (end < 0) end = head.length;
    let line = head.toString('utf8', 0, end);
    if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const h = thingSpeakCsvHeader(line);
    return typeof h === 'string' ? h : h.fields;
  }
  const scanner = new FeedScanner(PEEK_BYTES);
  scanner.push(head);
  for (;;) {
    const item = scanner.next();
    if (item === null) break;
    try {
      const obj = JSON.parse(item.text) as unknown;
      if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) continue;
      const rec = obj as Record<string, unknown>;
      if (item.kind === 'channel') return thingSpeakChannelFields(rec);
      const out: PeekedField[] = [];
      for (let slot = 1; slot <= 8; slot++) if (`field${slot}` in rec) out.push({ slot, label: null });
      return out;
    } catch {
      // an entry that is not JSON: look at the next one
    }
  }
  if (scanner.notObject) return 'not a JSON object';
  return 'no "channel" metadata or "feeds" entry in the first MiB';
}

type PathPart = string | number;

/** What the spec validator lends this module: its problem list. */
export interface ThingSpeakProblems {
  add(at: readonly PathPart[], message: string): void;
}

/** The user's `source:` block after zod (thingSpeakSourceShape), validate rules with their default reasons. */
export interface RawThingSpeakSource {
  format: ThingSpeakFormat;
  path?: string | undefined;
  paths?: string[] | undefined;
  compression: 'auto' | 'gzip' | 'none';
  encoding: 'utf8' | 'latin1';
  channel?: string | number | undefined;
  fields?:
    | Record<
        string,
        string | false | { name?: string | undefined; type?: string | undefined; nullable?: boolean | undefined }
      >
    | undefined;
  fieldNames: 'metadata' | 'slots';
  melt?:
    | true
    | { nameField?: string | undefined; valueField?: string | undefined; fields?: string[] | undefined }
    | undefined;
  eventTime?:
    | {
        timeZone?: string | undefined;
        minMs?: number | undefined;
        maxMs?: number | undefined;
        outputField?: string | undefined;
      }
    | undefined;
  maxLineBytes: number;
  watermark: WatermarkSpec;
  validate: ValidateRule[];
}

/** Context the validator passes in. */
export interface ThingSpeakContext {
  resolvePath: (p: string) => string;
  typeOf: (t: string) => FieldType;
  isValidZone: (zone: string) => boolean;
  defaultMinMs: number;
  defaultMaxMs: number;
}

/**
 * Turns a validated `thingspeak-*` source block into a FileSourceSpec (format
 * `thingspeak-csv|json`, `thingspeak` block, and the columns / melt / event time the rest of the
 * engine reads). Records every problem under `source.…`; returns undefined if there was one.
 */
export function normaliseThingSpeakSource(
  raw: RawThingSpeakSource,
  ctx: ThingSpeakContext,
  problems: ThingSpeakProblems,
): FileSourceSpec | undefined {
  let ok = true;
  const fail = (sub: PathPart[], msg: string) => {
    problems.add(['source', ...sub], msg);
    ok = false;
  };
  if ((raw.path === undefined) === (raw.paths === undefined)) fail([], 'set exactly one of path, paths');
  const given = raw.paths ?? (raw.path !== undefined ? [raw.path] : []);
  const paths = given.map(ctx.resolvePath);
  const overrides = raw.fields ?? {};
  const overrideKeys = Object.keys(overrides);

  // which slots exist: from the first file, else from the overrides keyed by slot
  let present: PeekedField[] | undefined;
  let peekError: string | undefined;
  if (paths.length > 0) {
    const peeked = peekThingSpeakFields(paths[0] as string, raw.format, raw.compression);
    if (typeof peeked === 'string') peekError = peeked;
    else present = peeked;
  }
  if (present === undefined) {
    const slotKeys = overrideKeys.filter((k) => /^field[1-8]$/.test(k));
    if (overrideKeys.length === 0 || slotKeys.length !== overrideKeys.length) {
      if (paths.length > 0)
        fail(
          ['fields'],
          `cannot read the field names of ${given[0]} (${peekError}); list the fields by slot, e.g. { field1: temperature }`,
        );
      return undefined;
    }
    present = slotKeys.map((k) => ({ slot: Number(k.slice(5)), label: null })).sort((a, b) => a.slot - b.slot);
  }

  // overrides → slots
  const bySlot = new Map<number, (typeof overrides)[string]>();
  for (const key of overrideKeys) {
    const m = /^field([1-8])$/.exec(key);
    const f = m
      ? present.find((p) => p.slot === Number(m[1]))
      : present.find((p) => p.label === key || (p.label !== null && thingSpeakFieldName(p.label) === key));
    if (!f) {
      const have = present.map((p) => (p.label === null ? `field${p.slot}` : `field${p.slot} "${p.label}"`)).join(', ');
      fail(['fields', key], `no such field in ${given[0] ?? 'the file'} (it has ${have || 'no fields'})`);
      continue;
    }
    if (bySlot.has(f.slot)) fail(['fields', key], `field${f.slot} is listed twice`);
    bySlot.set(f.slot, overrides[key] as (typeof overrides)[string]);
  }

  const fields: { slot: number; name: string; type: FieldType; nullable: boolean }[] = [];
  for (const p of present) {
    const o = bySlot.get(p.slot);
    if (o === false) continue;
    const oName = typeof o === 'string' ? o : o?.name;
    const fromLabel = raw.fieldNames === 'metadata' && p.label !== null ? thingSpeakFieldName(p.label) : '';
    const name = oName ?? (fromLabel !== '' ? fromLabel : `field${p.slot}`);
    const at: PathPart[] =
      o === undefined ? ['fields'] : ['fields', overrideKeys.find((k) => bySlot.get(p.slot) === overrides[k]) ?? ''];
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(at, `field name "${name}" must be an identifier`);
    const type = typeof o === 'object' && o.type !== undefined ? ctx.typeOf(o.type) : 'double';
    const nullable = typeof o === 'object' && o.nullable !== undefined ? o.nullable : true;
    fields.push({ slot: p.slot, name, type, nullable });
  }
  if (fields.length === 0) fail(['fields'], 'no field to read');

  const et = raw.eventTime ?? {};
  const timeZone = et.timeZone ?? 'UTC';
  if (!ctx.isValidZone(timeZone)) fail(['eventTime', 'timeZone'], `unknown time zone "${timeZone}"`);
  const minMs = et.minMs ?? ctx.defaultMinMs;
  const maxMs = et.maxMs ?? ctx.defaultMaxMs;
  if (minMs >= maxMs) fail(['eventTime', 'maxMs'], 'must be greater than minMs');
  const names = new Set<string>(THINGSPEAK_BUILTIN_FIELDS);
  const outputField = et.outputField ?? (fields.some((f) => f.name === 'timestamp') ? 'eventTimeMs' : 'timestamp');
  if (names.has(outputField)) fail(['eventTime', 'outputField'], `"${outputField}" is a ThingSpeak row field`);
  for (const f of fields) {
    if (names.has(f.name) || f.name === outputField)
      fail(['fields'], `field${f.slot} would be called "${f.name}", which is taken; rename it in fields`);
    names.add(f.name);
  }

  let melt: MeltSpec | undefined;
  if (raw.melt !== undefined) {
    const m = raw.melt === true ? {} : raw.melt;
    const nameField = m.nameField ?? 'field';
    const valueField = m.valueField ?? 'value';
    const numeric = fields.filter((f) => f.type === 'double' || f.type === 'int').map((f) => f.name);
    const cols = m.fields ?? numeric;
    cols.forEach((c, i) => {
      const f = fields.find((x) => x.name === c);
      if (!f) fail(['melt', 'fields', i], `unknown field "${c}" (fields: ${fields.map((x) => x.name).join(', ')})`);
      else if (f.type !== 'double' && f.type !== 'int') fail(['melt', 'fields', i], `field "${c}" is not a number`);
    });
    if (cols.length === 0) fail(['melt'], 'no numeric field to melt');
    for (const [k, v] of [
      ['nameField', nameField],
      ['valueField', valueField],
    ] as const) {
      if ((names.has(v) && !cols.includes(v)) || v === outputField) fail(['melt', k], `"${v}" is already a field`);
    }
    if (nameField === valueField) fail(['melt', 'valueField'], 'must differ from nameField');
    melt = { columns: cols, nameField, valueField, valueType: 'double', names: {} };
  }
  if (!ok) return undefined;

  const columns: ColumnSpec[] = [
    { name: 'created_at', type: 'string', nullable: false },
    { name: 'entry_id', type: 'int', nullable: false },
    { name: 'channel', type: 'string', nullable: false },
    { name: 'sensorId', type: 'string', nullable: false },
    ...fields.map((f) => ({
      name: f.name,
      // melted fields are numbers in the rows' value field
      type: melt?.columns.includes(f.name) ? ('double' as FieldType) : f.type,
      nullable: f.nullable,
    })),
  ];
  const spec: FileSourceSpec = {
    type: 'file',
    paths,
    displayPaths: given,
    format: raw.format,
    compression: raw.compression,
    encoding: raw.encoding,
    delimiter: ',',
    header: raw.format === 'thingspeak-csv',
    trim: true,
    decimalComma: false,
    columns,
    extraColumns: 'ignore',
    maxLineBytes: raw.maxLineBytes,
    follow: false,
    eventTime: { field: 'created_at', joinFields: [], iso: true, timeZone, minMs, maxMs, outputField },
    watermark: raw.watermark,
    validate: raw.validate,
    thingspeak: { fields },
  };
  if (raw.channel !== undefined) (spec.thingspeak as { channel?: string }).channel = String(raw.channel);
  if (melt) spec.melt = melt;
  return spec;
}

/** zod shape of a `thingspeak-*` source block; built by schema.ts from its shared pieces. */
export function thingSpeakSourceShape(p: {
  z: typeof z;
  nonEmpty: () => z.ZodString;
  anyInt: () => z.ZodType<number>;
  posInt: () => z.ZodType<number>;
  fieldType: z.ZodType<string>;
  watermark: z.ZodType;
  validate: z.ZodType;
  maxLineBytes: number;
}) {
  const { z: zz, nonEmpty } = p;
  const fieldSpec = zz.union(
    [
      nonEmpty(),
      zz.literal(false),
      zz.strictObject({ name: nonEmpty().optional(), type: p.fieldType.optional(), nullable: zz.boolean().optional() }),
    ],
    { error: 'expected a field name, false (skip it) or { name, type, nullable }' },
  );
  return zz.strictObject({
    type: zz.literal('file'),
    format: zz.enum(THINGSPEAK_FORMATS),
    path: nonEmpty().optional(),
    paths: zz.array(nonEmpty()).min(1, { error: 'must list at least one path' }).optional(),
    compression: zz.enum(['auto', 'gzip', 'none']).default('auto'),
    encoding: zz.enum(['utf8', 'latin1']).default('utf8'),
    channel: zz.union([nonEmpty(), zz.int()], { error: 'expected a channel id' }).optional(),
    fields: zz.record(zz.string(), fieldSpec).optional(),
    fieldNames: zz.enum(['metadata', 'slots']).default('metadata'),
    melt: zz
      .union(
        [
          zz.literal(true),
          zz.strictObject({
            nameField: nonEmpty().optional(),
            valueField: nonEmpty().optional(),
            fields: zz.array(nonEmpty()).optional(),
          }),
        ],
        { error: 'expected true or { nameField, valueField, fields }' },
      )
      .optional(),
    eventTime: zz
      .strictObject({
        timeZone: nonEmpty().optional(),
        minMs: p.anyInt().optional(),
        maxMs: p.anyInt().optional(),
        outputField: nonEmpty().optional(),
      })
      .optional(),
    maxLineBytes: p.posInt().default(p.maxLineBytes),
    watermark: p.watermark,
    validate: p.validate,
  });
}
