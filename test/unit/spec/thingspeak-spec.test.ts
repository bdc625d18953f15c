/**
 * Validation of `format: thingspeak-csv | thingspeak-json` file sources: field names read from
 * the file at validation time, overrides, melt, and the problems reported.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { EngineError } from '../../../core/errors/index.js';
import { sourceFieldTypes } from '../../../core/spec/fields.js';
import { parseJobSpec } from '../../../core/spec/schema.js';
import type { FileSourceSpec } from '../../../core/spec/types.js';

const examples = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples');
const ENV = 'data/thingspeak_envmonitor_feeds.csv.gz';

function job(source: Record<string, unknown>, steps: unknown[] = []) {
  return {
    name: 't',
    source: { type: 'file', format: 'thingspeak-csv', path: ENV, ...source },
    steps,
    sink: { type: 'stdout' },
  };
}

function parse(source: Record<string, unknown>, steps: unknown[] = []): FileSourceSpec {
  return parseJobSpec(job(source, steps), { baseDir: examples }).source as FileSourceSpec;
}

function problemsOf(source: Record<string, unknown>, steps: unknown[] = []): string[] {
  try {
    parseJobSpec(job(source, steps), { baseDir: examples });
  } catch (e) {
    expect((e as EngineError).code).toBe('SPEC_INVALID');
    return (e as EngineError).problems;
  }
  throw new Error('expected SPEC_INVALID');
}

describe('thingspeak source spec', () => {
  it('reads field names from the export header (gzip) and types the rows', () => {
    const s = parse({});
    expect(s.format).toBe('thingspeak-csv');
    expect(s.thingspeak?.fields.map((f) => [f.slot, f.name, f.type, f.nullable])).toEqual([
      [1, 'temperature', 'double', true],
      [2, 'humidity', 'double', true],
      [3, 'light_level', 'double', true],
      [4, 'tilt_status', 'double', true],
    ]);
    expect(sourceFieldTypes(s)).toEqual({
      created_at: 'string',
      entry_id: 'int',
      channel: 'string',
      sensorId: 'string',
      temperature: 'double',
      humidity: 'double',
      light_level: 'double',
      tilt_status: 'double',
      timestamp: 'int',
    });
    expect(s.eventTime).toMatchObject({ field: 'created_at', iso: true, timeZone: 'UTC', outputField: 'timestamp' });
  });

  it('overrides by slot or by name, skips with false, melts the numeric fields', () => {
    const s = parse(
      {
        channel: 42,
        fields: { field1: 'temp', light_level: { name: 'light', type: 'string' }, tilt_status: false },
        melt: { nameField: 'metric', valueField: 'reading' },
      },
      [
        { keyBy: 'sensorId' },
        { window: { type: 'tumbling', sizeMs: 3600000 } },
        { aggregate: { avg: 'avg(reading)' } },
      ],
    );
    expect(s.thingspeak).toEqual({
      channel: '42',
      fields: [
        { slot: 1, name: 'temp', type: 'double', nullable: true },
        { slot: 2, name: 'humidity', type: 'double', nullable: true },
        { slot: 3, name: 'light', type: 'string', nullable: true },
      ],
    });
    expect(s.melt).toEqual({
      columns: ['temp', 'humidity'],
      nameField: 'metric',
      valueField: 'reading',
      valueType: 'double',
      names: {},
    });
    expect(sourceFieldTypes(s)).toMatchObject({ light: 'string', metric: 'string', reading: 'double' });
  });

  it('a wide (not melted) field is nullable, so aggregates need melt or nullable: false', () => {
    expect(
      problemsOf({}, [
        { keyBy: 'sensorId' },
        { window: { type: 'tumbling', sizeMs: 60000 } },
        { aggregate: { a: 'avg(temperature)' } },
      ]),
    ).toEqual(['steps[2].aggregate.a: field "temperature" is nullable, expected a non-null number']);
    parse({ fields: { temperature: { nullable: false } } }, [
      { keyBy: 'sensorId' },
      { window: { type: 'tumbling', sizeMs: 60000 } },
      { aggregate: { a: 'avg(temperature)' } },
    ]);
  });

  it('without a readable file, fields keyed by slot are enough', () => {
    const s = parse({
      path: 'data/missing.json',
      format: 'thingspeak-json',
      fields: { field2: 'humidity', field1: 'temperature' },
    });
    expect(s.thingspeak?.fields.map((f) => [f.slot, f.name])).toEqual([
      [1, 'temperature'],
      [2, 'humidity'],
    ]);
    expect(problemsOf({ path: 'data/missing.csv' })).toEqual([
      'source.fields: cannot read the field names of data/missing.csv (no such file); list the fields by slot, e.g. { field1: temperature }',
    ]);
  });

  it('reports every problem with its path', () => {
    expect(
      problemsOf({
        format: 'thingspeak',
        channel: [1],
      }),
    ).toEqual([
      'source.format: expected thingspeak-csv | thingspeak-json, got "thingspeak"',
      'source.channel: expected a channel id',
    ]);
    expect(
      problemsOf({
        fields: { field7: 'x', Light: 'y', humidity: 'channel', temperature: 'bad name' },
        melt: { fields: ['nope'], valueField: 'light_level' },
        eventTime: { timeZone: 'Mars/Olympus' },
        follow: true,
      }),
    ).toEqual(['source.follow: unknown field']);
    expect(
      problemsOf({
        fields: { field7: 'x', Light: 'y', humidity: 'channel', temperature: 'bad name' },
        melt: { fields: ['nope'], valueField: 'light_level' },
        eventTime: { timeZone: 'Mars/Olympus' },
      }),
    ).toEqual([
      'source.fields.field7: no such field in data/thingspeak_envmonitor_feeds.csv.gz (it has field1 "temperature", field2 "humidity", field3 "light_level", field4 "tilt_status")',
      'source.fields.Light: no such field in data/thingspeak_envmonitor_feeds.csv.gz (it has field1 "temperature", field2 "humidity", field3 "light_level", field4 "tilt_status")',
      'source.fields.temperature: field name "bad name" must be an identifier',
      'source.eventTime.timeZone: unknown time zone "Mars/Olympus"',
      'source.fields: field2 would be called "channel", which is taken; rename it in fields',
      'source.melt.fields[0]: unknown field "nope" (fields: bad name, channel, light_level, tilt_status)',
      'source.melt.valueField: "light_level" is already a field',
    ]);
  });

  it('the shipped example validates', async () => {
    const { loadJobSpecFile } = await import('../../../core/spec/load.js');
    const spec = loadJobSpecFile(join(examples, 'thingspeak-channel.yaml'));
    expect(spec.source.type === 'file' && spec.source.thingspeak?.fields.map((f) => f.name)).toEqual([
      'temperature',
      'humidity',
      'light_level',
    ]);
  });
});
