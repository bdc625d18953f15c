/**
 * ThingSpeak formats of the file source: CSV exports (the header variants of the four real
 * exports in shared/data, copied verbatim below), the JSON channel feed (built from a real export
 * by test/support/thingspeak-feed.ts), created_at time zones, field names from metadata,
 * positions and restore.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createSourceReader, newSourceBatch } from '../../../core/source/index.js';
import { FeedScanner } from '../../../core/source/json-feed.js';
import { parseThingSpeakTime } from '../../../core/source/thingspeak.js';
import type { SourcePosition } from '../../../core/source/types.js';
import { thingSpeakFieldName } from '../../../core/spec/thingspeak.js';
import type { SourceSpec } from '../../../core/spec/types.js';
import { feedFromExport } from '../../support/thingspeak-feed.js';
import { readSplit, sourceSpec, tempFiles } from './helpers.js';

const examples = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples', 'data');
const ISLAMABAD = join(examples, 'thingspeak_ch1623014_islamabad_feeds.csv.gz');

// header + lines copied verbatim from the four exports (file line numbers in comments)
const ISLAMABAD_CSV = [
  'created_at,entry_id,field1,field2,field3,latitude,longitude,elevation,status',
  '2021-12-31T19:49:57+00:00,1,21.20,44.00,Clouds,,,,', // line 2
  '2022-01-01T00:00:11+00:00,384,19.50,44.00,"",,,,', // line 385: quoted empty field3
  '2022-01-02T10:14:10+00:00,2861,21.50,41.00,,,,,', // line 2862: empty field3
  '',
].join('\n');
const FHNW_CSV = [
  'created_at,entry_id,field1,field2,field3,field4,field5,latitude,longitude,elevation,status',
  '2024-11-25T19:09:51+00:00,1,22,53,33.6746,1072,0,,,,',
  '2024-11-25T19:10:08+00:00,2,22,53,33.6746,1264,0,,,,',
  '',
].join('\n');
const ENV_CSV = [
  'created_at,entry_id,temperature,humidity,light_level,tilt_status,latitude,longitude,elevation,status',
  '2025-07-12T15:58:07+00:00,1,25,60,13.58297,18.99901,,,,',
  '2025-07-12T17:01:26+00:00,184,25,54,(),18.60685,,,,', // line 185: "()" as light_level
  '',
].join('\n');
const LM35_CSV = [
  'created_at,entry_id,temperatura',
  '2025-02-26T03:13:37+00:00,1,30.3',
  '2025-02-26T03:13:53+00:00,2,30.46',
  '',
].join('\n');

function csvSource(file: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'file', format: 'thingspeak-csv', path: file, ...extra };
}

async function readCsv(content: string, extra: Record<string, unknown> = {}, name = 'feeds.csv') {
  const dir = tempFiles({ [name]: content });
  return readSplit(sourceSpec(csvSource(name, extra), dir), 0, 1, 2);
}

describe('thingspeak-csv: the header variants of the real exports', () => {
  it('field1..3 + latitude/longitude/elevation/status (Islamabad): empty and "" fields are null', async () => {
    const r = await readCsv(ISLAMABAD_CSV, { fields: { field3: { name: 'weather', type: 'string' } } });
    expect(r.deadLetters).toEqual([]);
    expect(r.rows).toEqual([
      {
        created_at: '2021-12-31T19:49:57+00:00',
        entry_id: 1,
        channel: 'feeds',
        sensorId: 'feeds',
        field1: 21.2,
        field2: 44,
        weather: 'Clouds',
        timestamp: Date.UTC(2021, 11, 31, 19, 49, 57),
      },
      expect.objectContaining({ entry_id: 384, field1: 19.5, weather: null }),
      expect.objectContaining({ entry_id: 2861, field2: 41, weather: null }),
    ]);
    expect(r.linesRead).toBe(4);
  });

  it('field1..5 (FHNW) with a channel id from the spec', async () => {
    const r = await readCsv(FHNW_CSV, { channel: 2753083 });
    expect(r.rows[1]).toEqual({
      created_at: '2024-11-25T19:10:08+00:00',
      entry_id: 2,
      channel: '2753083',
      sensorId: '2753083',
      field1: 22,
      field2: 53,
      field3: 33.6746,
      field4: 1264,
      field5: 0,
      timestamp: Date.UTC(2024, 10, 25, 19, 10, 8),
    });
  });

  it('named fields in the header (envmonitor): names from the header; a non-number is a dead letter', async () => {
    const r = await readCsv(ENV_CSV);
    expect(r.rows).toHaveLength(1);
    expect(r.rows[0]).toMatchObject({ temperature: 25, humidity: 60, light_level: 13.58297, tilt_status: 18.99901 });
    expect(r.deadLetters).toEqual([
      {
        reason: 'field3 (light_level): expected a number, got "()"',
        source: 'feeds.csv:3',
        raw: '2025-07-12T17:01:26+00:00,184,25,54,(),18.60685,,,,',
      },
    ]);
  });

  it('no latitude/longitude columns (LM35); fieldNames: slots keeps field1', async () => {
    const named = await readCsv(LM35_CSV);
    expect(named.rows.map((x) => x.temperatura)).toEqual([30.3, 30.46]);
    const slots = await readCsv(LM35_CSV, { fieldNames: 'slots' });
    expect(slots.rows.map((x) => x.field1)).toEqual([30.3, 30.46]);
  });

  it('melt: one reading per field with a value, sensor id <channel>:<field>', async () => {
    const r = await readCsv(ISLAMABAD_CSV, {
      channel: 1623014,
      fields: { field1: 'temperature', field2: 'humidity', field3: false },
      melt: true,
    });
    expect(r.rows.slice(0, 2)).toEqual([
      {
        created_at: '2021-12-31T19:49:57+00:00',
        entry_id: 1,
        channel: '1623014',
        sensorId: '1623014:temperature',
        field: 'temperature',
        value: 21.2,
        timestamp: Date.UTC(2021, 11, 31, 19, 49, 57),
      },
      expect.objectContaining({ sensorId: '1623014:humidity', field: 'humidity', value: 44 }),
    ]);
    expect(r.rows).toHaveLength(6);
  });

  it('melt skips an empty field; nullable: false rejects it instead', async () => {
    const csv = `${LM35_CSV.split('\n')[0]}\n2025-02-26T03:13:37+00:00,1,\n2025-02-26T03:13:53+00:00,2,30.46\n`;
    const melted = await readCsv(csv, { melt: true });
    expect(melted.rows.map((x) => x.value)).toEqual([30.46]);
    expect(melted.deadLetters).toEqual([]);
    const strict = await readCsv(csv, { fields: { field1: { name: 't', nullable: false } } });
    expect(strict.rows.map((x) => x.t)).toEqual([30.46]);
    expect(strict.deadLetters.map((d) => d.reason)).toEqual(['field1 (t): empty']);
  });

  it('rejects lines with another cell count, bad entry ids and bad times', async () => {
    const csv = [
      'created_at,entry_id,temperatura',
      '2025-02-26T03:13:37+00:00,1,30.3,9',
      '2025-02-26T03:13:37+00:00,x,30.3',
      '2025-02-30T03:13:37+00:00,3,30.3',
      '1999-12-31T23:59:59Z,4,30.3',
      '2025-02-26T03:13:53+00:00,5,30.46',
    ].join('\n');
    const r = await readCsv(csv);
    expect(r.rows.map((x) => x.entry_id)).toEqual([5]);
    expect(r.deadLetters.map((d) => d.reason)).toEqual([
      'expected 3 fields, got 4',
      'entry_id: expected an integer, got "x"',
      'unparseable timestamp "2025-02-30T03:13:37+00:00"',
      'timestamp out of range',
    ]);
  });

  it('validate rules see the named fields', async () => {
    const r = await readCsv(LM35_CSV, { validate: [{ rule: 'temperatura < 30.4', reason: 'too warm' }] });
    expect(r.rows).toHaveLength(1);
    expect(r.deadLetters.map((d) => d.reason)).toEqual(['too warm']);
  });

  it('a file without a ThingSpeak header fails the task with SOURCE_IO', async () => {
    const dir = tempFiles({ 'feeds.csv': LM35_CSV, 'other.csv': 'a,b\n1,2\n' });
    const spec = sourceSpec({ type: 'file', format: 'thingspeak-csv', paths: ['feeds.csv', 'other.csv'] }, dir);
    await expect(readSplit(spec)).rejects.toMatchObject({
      code: 'SOURCE_IO',
      message: expect.stringContaining('other.csv: not a ThingSpeak export header'),
    });
  });

  it('reads the shipped gzip export whole, and resumes at a byte offset after the header', async () => {
    const spec = sourceSpec(csvSource(ISLAMABAD, { fields: { field3: { name: 'weather', type: 'string' } } }));
    const all = await readSplit(spec, 0, 1, 4096);
    expect(all.rows).toHaveLength(3758);
    expect(all.rows.filter((x) => x.weather === null)).toHaveLength(232);
    const reader = createSourceReader(spec, 0, 1);
    const out = newSourceBatch();
    await reader.poll(out, 1000);
    const head = [...out.rows];
    const pos = reader.position();
    await reader.close();
    const rest = await readSplit(spec, 0, 1, 4096, pos);
    expect([...head, ...rest.rows]).toEqual(all.rows);
  });
});

describe('created_at time formats', () => {
  it('parses ISO with offset, Z, fractions and the "… UTC" export form', () => {
    const t = Date.UTC(2024, 0, 1, 12, 0, 0);
    expect(parseThingSpeakTime('2024-01-01T12:00:00+00:00')).toBe(t);
    expect(parseThingSpeakTime('2024-01-01T12:00:00Z')).toBe(t);
    expect(parseThingSpeakTime('2024-01-01 12:00:00 UTC')).toBe(t);
    expect(parseThingSpeakTime('2024-01-01T13:00:00+01:00')).toBe(t);
    expect(parseThingSpeakTime('2024-01-01 07:00:00 -0500')).toBe(t);
    expect(parseThingSpeakTime('2024-01-01T17:30:00+05:30')).toBe(t);
    expect(parseThingSpeakTime('2024-01-01T12:00:00.250Z')).toBe(t + 250);
    expect(parseThingSpeakTime('2024-01-01T12:00:00')).toBe(Number.NEGATIVE_INFINITY);
    expect(parseThingSpeakTime('2024-02-30T12:00:00Z')).toBeNaN();
    expect(parseThingSpeakTime('2024-01-01 12:00:00 CET')).toBeNaN();
  });

  it('reads text without an offset in eventTime.timeZone, across a DST change', async () => {
    const csv =
      'created_at,entry_id,field1\n2024-03-31 01:30:00,1,1\n2024-03-31 03:30:00,2,2\n2024-03-31T01:30:00Z,3,3\n';
    const r = await readCsv(csv, { eventTime: { timeZone: 'Europe/Zurich' } });
    expect(r.timestamps).toEqual([
      Date.UTC(2024, 2, 31, 0, 30),
      Date.UTC(2024, 2, 31, 1, 30),
      Date.UTC(2024, 2, 31, 1, 30),
    ]);
  });

  it('rejects zone names it cannot resolve', async () => {
    const r = await readCsv('created_at,entry_id,field1\n2024-01-01 12:00:00 CET,1,1\n');
    expect(r.deadLetters.map((d) => d.reason)).toEqual(['unparseable timestamp "2024-01-01 12:00:00 CET"']);
  });
});

describe('field names', () => {
  it('normalises channel metadata names into identifiers', () => {
    expect(thingSpeakFieldName('Temperature')).toBe('temperature');
    expect(thingSpeakFieldName('Light Level')).toBe('light_level');
    expect(thingSpeakFieldName('Temperature (°C)')).toBe('temperature_c');
    expect(thingSpeakFieldName('Humedad relativa %')).toBe('humedad_relativa');
    expect(thingSpeakFieldName('2nd sensor')).toBe('f_2nd_sensor');
    expect(thingSpeakFieldName('°')).toBe('');
  });
});

const META = { id: 1623014, name: 'IOT Weather Station', field1: 'Temperature', field2: 'Humidity', field3: 'Weather' };

function jsonSpec(dir: string, extra: Record<string, unknown> = {}, name = 'feed.json'): SourceSpec {
  return sourceSpec({ type: 'file', format: 'thingspeak-json', path: name, ...extra }, dir);
}

describe('thingspeak-json: the channel feed document', () => {
  it('names fields from the channel metadata and keys rows by channel.id', async () => {
    const dir = tempFiles({ 'feed.json': feedFromExport(ISLAMABAD, META, 400, 2) });
    const spec = jsonSpec(dir, { fields: { Weather: { name: 'weather', type: 'string' } } });
    const r = await readSplit(spec, 0, 1, 50);
    expect(r.deadLetters).toEqual([]);
    expect(r.rows).toHaveLength(400);
    expect(r.rows[0]).toEqual({
      created_at: '2021-12-31T19:49:57+00:00',
      entry_id: 1,
      channel: '1623014',
      sensorId: '1623014',
      temperature: 21.2,
      humidity: 44,
      weather: 'Clouds',
      timestamp: Date.UTC(2021, 11, 31, 19, 49, 57),
    });
    expect(r.rows[383]).toMatchObject({ entry_id: 384, temperature: 19.5, weather: null });
  });

  it('gives the same rows as the CSV export it was made from', async () => {
    const dir = tempFiles({ 'feed.json.gz': gzipSync(feedFromExport(ISLAMABAD, META)) });
    const fields = { field1: 'temperature', field2: 'humidity', field3: { name: 'weather', type: 'string' } };
    const json = await readSplit(jsonSpec(dir, { fields, channel: 'c' }, 'feed.json.gz'), 0, 1, 4096);
    const csv = await readSplit(sourceSpec(csvSource(ISLAMABAD, { fields, channel: 'c' })), 0, 1, 4096);
    expect(json.rows).toEqual(csv.rows);
    expect(json.linesRead).toBe(3758);
  });

  it('without metadata: field1..N from the first entry, channel id from the file name', async () => {
    const dir = tempFiles({ 'ch9.json': feedFromExport(ISLAMABAD, null, 3) });
    const r = await readSplit(jsonSpec(dir, { fields: { field3: false } }, 'ch9.json'));
    expect(r.rows[0]).toMatchObject({ channel: 'ch9', field1: 21.2, field2: 44 });
    expect(r.rows[0]).not.toHaveProperty('field3');
  });

  it('restores at an entry index: the rest is read exactly once', async () => {
    const dir = tempFiles({ 'feed.json': feedFromExport(ISLAMABAD, META, 1000) });
    const spec = jsonSpec(dir, { fields: { field3: false } });
    const all = await readSplit(spec, 0, 1, 4096);
    const reader = createSourceReader(spec, 0, 1);
    const out = newSourceBatch();
    await reader.poll(out, 337);
    const head = [...out.rows];
    const pos: SourcePosition = reader.position();
    expect(pos.split).toBe(0);
    expect(pos.nextLine).toBe(338);
    await reader.close();
    const rest = await readSplit(spec, 0, 1, 100, pos);
    expect([...head, ...rest.rows]).toEqual(all.rows);
  });

  it('dead letters: bad JSON, a non-object entry, a bad value, an entry cut off by the end', async () => {
    const doc =
      '{"channel":{"id":7,"field1":"Temperature"},"feeds":[' +
      '{"created_at":"2024-01-01T12:00:00Z","entry_id":1,"field1":"20.5"},' +
      '{"created_at":"2024-01-01T12:00:20Z","entry_id":2,"field1":"20,5"},' +
      '{"created_at":"2024-01-01T12:00:40Z","entry_id":3,"field1":nope},' +
      '42,' +
      '{"created_at":"2024-01-01T12:01:00Z","entry_id":4,"field1":null},' +
      '{"created_at":"2024-01-01T12:01:20Z","entry_id":5,"field1":"21"';
    const dir = tempFiles({ 'feed.json': doc });
    const r = await readSplit(jsonSpec(dir));
    expect(r.rows.map((x) => [x.entry_id, x.temperature])).toEqual([
      [1, 20.5],
      [4, null],
    ]);
    expect(r.deadLetters.map((d) => [d.source, d.reason.replace(/invalid JSON: .*/, 'invalid JSON')])).toEqual([
      ['feed.json:feeds[1]', 'field1 (temperature): expected a number, got "20,5"'],
      ['feed.json:feeds[2]', 'invalid JSON'],
      ['feed.json:feeds[3]', 'expected a JSON object'],
      ['feed.json:feeds[5]', 'the document ends inside this feeds entry'],
    ]);
  });

  it('an entry longer than maxLineBytes is a dead letter; memory stays bounded', async () => {
    const big = 'x'.repeat(5000);
    const doc = `{"channel":{"id":7,"field1":"T"},"feeds":[{"created_at":"2024-01-01T12:00:00Z","entry_id":1,"field1":"1","status":"${big}"},{"created_at":"2024-01-01T12:00:01Z","entry_id":2,"field1":"2"}]}`;
    const dir = tempFiles({ 'feed.json': doc });
    const r = await readSplit(jsonSpec(dir, { maxLineBytes: 1000 }));
    expect(r.rows.map((x) => x.t)).toEqual([2]);
    expect(r.deadLetters[0]?.reason).toBe('feeds entry longer than 1000 bytes');
    expect(r.deadLetters[0]?.raw.length).toBe(1024);
  });

  it('a document that is not a feed fails the task with SOURCE_IO', async () => {
    const dir = tempFiles({
      'feed.json': '{"channel":{"id":1,"field1":"T"},"feeds":[]}',
      'list.json': '[1,2]',
      'nofeeds.json': '{"channel":{"id":1,"field1":"T"}}',
    });
    const ok = await readSplit(jsonSpec(dir));
    expect(ok.rows).toEqual([]);
    const spec = jsonSpec(dir, { paths: ['feed.json', 'nofeeds.json'], path: undefined });
    await expect(readSplit(spec)).rejects.toMatchObject({
      code: 'SOURCE_IO',
      message: 'nofeeds.json: not a ThingSpeak channel feed (no "feeds" list)',
    });
    writeFileSync(join(dir, 'feed.json'), '[1,2]');
    await expect(readSplit(jsonSpec(dir, { fields: { field1: 't' } }))).rejects.toMatchObject({
      code: 'SOURCE_IO',
      message: 'feed.json: not a ThingSpeak channel feed (not a JSON object)',
    });
  });
});

describe('FeedScanner', () => {
  it('finds the same items whatever the chunk boundaries, with braces and quotes inside strings', () => {
    const doc = Buffer.from(
      '\ufeff{ "note": {"feeds": [1]}, "channel" : {"id":3,"name":"a \\"}{[\\" b","field1":"T"},\n "feeds" : [ {"created_at":"x","field1":"}]\\\\"} , "s" , null ,{"a":[{}]} ] , "tail": {"feeds":[9]} }',
    );
    const scan = (size: number) => {
      const s = new FeedScanner(1 << 20);
      const items: string[] = [];
      for (let i = 0; i < doc.length; i += size) {
        s.push(doc.subarray(i, i + size));
        for (let it = s.next(); it !== null; it = s.next()) items.push(`${it.kind}:${it.text.trim()}`);
      }
      const last = s.end();
      if (last) items.push(`end:${last.text}`);
      return items;
    };
    const expected = [
      'channel:{"id":3,"name":"a \\"}{[\\" b","field1":"T"}',
      'entry:{"created_at":"x","field1":"}]\\\\"}',
      'entry:"s"',
      'entry:null',
      'entry:{"a":[{}]}',
    ];
    expect(scan(doc.length)).toEqual(expected);
    for (const size of [1, 2, 3, 7, 16]) expect(scan(size)).toEqual(expected);
  });
});
