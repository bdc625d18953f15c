import { describe, expect, it } from 'vitest';
import type { EventTimeSpec } from '../../../core/spec/types.js';
import { compileTimestampParser } from '../../../core/time/timestamps.js';

const base: EventTimeSpec = {
  field: 't',
  joinFields: [],
  timeZone: 'UTC',
  minMs: 946684800000,
  maxMs: 4102444800000,
  outputField: 't',
};

describe('compileTimestampParser', () => {
  it('unit ms: integers only, numbers or numeric strings', () => {
    const p = compileTimestampParser({ ...base, unit: 'ms' });
    expect(p(1717200000000, {})).toBe(1717200000000);
    expect(p(' 1717200000000 ', {})).toBe(1717200000000);
    expect(p('abc', {})).toBe('unparseable timestamp "abc"');
    expect(p(1717200000000.5, {})).toBe('unparseable timestamp "1717200000000.5"');
    expect(p(null, {})).toBe('missing timestamp');
  });

  it('units s and us convert to ms', () => {
    expect(compileTimestampParser({ ...base, unit: 's' })(1717200003, {})).toBe(1717200003000);
    expect(compileTimestampParser({ ...base, unit: 's' })('1717200003.25', {})).toBe(1717200003250);
    expect(compileTimestampParser({ ...base, unit: 'us' })(1717200000123456, {})).toBe(1717200000123);
  });

  it('rejects timestamps outside [minMs, maxMs)', () => {
    const p = compileTimestampParser({ ...base, unit: 'ms' });
    expect(p(946684800000, {})).toBe(946684800000);
    expect(p(946684799999, {})).toBe('timestamp out of range');
    expect(p(4102444800000, {})).toBe('timestamp out of range');
    expect(p(1717200003, {})).toBe('timestamp out of range');
  });

  it('format in a time zone, day first', () => {
    const p = compileTimestampParser({ ...base, format: 'dd-MM-yyyy HH:mm', timeZone: 'Asia/Kolkata' });
    // 08-12-2018 09:30 in India (UTC+5:30) = 04:00 UTC
    expect(p('08-12-2018 09:30', {})).toBe(Date.UTC(2018, 11, 8, 4, 0));
    expect(p('08-12-2018 09:30', {})).toBe(Date.UTC(2018, 11, 8, 4, 0)); // cached
    expect(p('2018-12-08 09:30', {})).toBe('unparseable timestamp "2018-12-08 09:30"');
  });

  it('joins fields and reads hours without a leading zero', () => {
    const p = compileTimestampParser({ ...base, field: 'Date', joinFields: ['Time'], format: 'dd/MM/yyyy H:mm' });
    expect(p('25/03/2012', { Date: '25/03/2012', Time: '2:15' })).toBe(Date.UTC(2012, 2, 25, 2, 15));
    expect(p('25/03/2012', { Date: '25/03/2012', Time: '14:15' })).toBe(Date.UTC(2012, 2, 25, 14, 15));
    expect(p('25/03/2012', { Date: '25/03/2012', Time: '' })).toBe('missing timestamp');
  });

  it('ISO with an offset wins over the zone; without one the zone applies', () => {
    const p = compileTimestampParser({ ...base, iso: true, timeZone: 'Europe/Brussels' });
    expect(p('2025-02-26T03:13:37+00:00', {})).toBe(Date.UTC(2025, 1, 26, 3, 13, 37));
    expect(p('2025-02-26T03:13:37', {})).toBe(Date.UTC(2025, 1, 26, 2, 13, 37));
    expect(p('yesterday', {})).toBe('unparseable timestamp "yesterday"');
  });
});
