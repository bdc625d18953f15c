import { describe, expect, it } from 'vitest';
import { parseJobSpec } from '../../../core/spec/schema.js';
import { murmur3_32 } from '../../../core/state/keygroups.js';
import {
  compareEntryIds,
  partitionOf,
  recordKeyReader,
  streamKey,
  streamLayout,
  streamMetaKey,
} from '../../../core/streams/layout.js';

const spec = (source: Record<string, unknown>) =>
  parseJobSpec({ name: 't', source: { type: 'redis-stream', ...source }, steps: [], sink: { type: 'stdout' } });

describe('stream layout', () => {
  it('names keys fluxo:stream:{name}:{p} and partitions by murmur3 of the key', () => {
    expect(streamKey('readings', 3)).toBe('fluxo:stream:readings:3');
    expect(streamMetaKey('readings')).toBe('fluxo:stream:readings:meta');
    expect(partitionOf('sensor-7', 4)).toBe(murmur3_32('sensor-7') % 4);
    const l = streamLayout('readings', 4);
    expect(l.keyFor('sensor-7')).toBe(streamKey('readings', partitionOf('sensor-7', 4)));
    expect(() => streamLayout('a:b', 4)).toThrow(/stream name "a:b"/);
    expect(() => streamLayout('ok', 0)).toThrow(/partitions/);
  });

  it('orders entry ids numerically, not as text', () => {
    expect(compareEntryIds('9-0', '10-0')).toBeLessThan(0);
    expect(compareEntryIds('5-10', '5-9')).toBeGreaterThan(0);
    expect(compareEntryIds('5-1', '5-1')).toBe(0);
    expect(() => compareEntryIds('x', '1-0')).toThrow(/malformed/);
  });

  it('reads the key of a JSON or CSV record; undefined when it cannot', () => {
    const j = recordKeyReader('jsonl', 'sensor');
    expect(j('{"sensor":"a","t":1}')).toBe('a');
    expect(j('{"sensor":12}')).toBe('12');
    expect(j('nope')).toBeUndefined();
    const c = recordKeyReader('csv', 'room', ['date', 'room']);
    expect(c('"2016-01-11 17:00:00", kitchen ')).toBe('kitchen');
    expect(c('"unterminated')).toBeUndefined();
    expect(() => recordKeyReader('csv', 'x', ['a'])).toThrow(/key field "x" is not a column/);
  });
});

describe('redis-stream source spec', () => {
  it('applies defaults and shares the file source record rules', () => {
    const s = spec({
      stream: 'readings',
      columns: ['sensor', 'ts:int'],
      eventTime: { field: 'ts', unit: 'ms' },
    }).source;
    expect(s).toMatchObject({ type: 'redis-stream', stream: 'readings', partitions: 1, bounded: false, blockMs: 100 });
    expect(s).toMatchObject({ format: 'jsonl', columns: [{ name: 'sensor' }, { name: 'ts', type: 'int' }] });
  });

  it('lists every problem, file-only fields included, with their paths', () => {
    expect(() =>
      spec({
        stream: 'bad:name',
        partitions: 0,
        format: 'xml',
        path: 'x.csv',
        header: true,
        columns: ['ts:int'],
        eventTime: { field: 'nope', unit: 'ms' },
      }),
    ).toThrow(
      expect.objectContaining({
        problems: expect.arrayContaining([
          expect.stringMatching(/^source\.stream: expected a stream name/),
          'source.partitions: expected a positive integer',
          expect.stringMatching(/^source\.format: expected json \| jsonl \| csv/),
          'source.path: unknown field',
          'source.header: unknown field',
          'source.eventTime.field: unknown column "nope"',
        ]),
      }),
    );
  });
});
