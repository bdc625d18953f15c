import { describe, expect, it } from 'vitest';
import { parseFaults } from '../../../core/fault/inject.js';

describe('FLUXO_FAULTS parsing', () => {
  it('is off when unset or blank', () => {
    expect(parseFaults(undefined)).toBeNull();
    expect(parseFaults('  ')).toBeNull();
  });

  it('reads crash points and the sink delay', () => {
    const f = parseFaults('crash@alignment:3, crash@records:5000,slow@sink:300');
    expect(f?.sinkDelayMs).toBe(300);
    expect(f?.crash.map((c) => [c.point, c.at])).toEqual([
      ['alignment', 3],
      ['records', 5000],
    ]);
  });

  it('refuses every bad entry at once, naming each', () => {
    expect(() => parseFaults('crash@nowhere:1,boom,slow@source:5')).toThrow(
      /crash@nowhere:1: unknown crash point nowhere.*boom: expected.*slow@source:5: only slow@sink/,
    );
  });
});
