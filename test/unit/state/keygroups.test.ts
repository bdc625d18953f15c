import { describe, expect, it } from 'vitest';
import { keyGroupOf, keyGroupRange, keyOf, murmur3_32, subtaskForKeyGroup } from '../../../core/state/keygroups.js';

describe('murmur3_32', () => {
  // Reference values of MurmurHash3_x86_32, computed with the `mmh3` Python package 5.3.0
  // (mmh3.hash(s.encode(), seed, signed=False)).
  const vectors: [string, number, number][] = [
    ['', 0, 0x0],
    ['', 1, 0x514e28b7],
    ['', 42, 0x087fcd5c],
    ['hello', 0, 0x248bfa47],
    ['hello', 42, 0xe2dbd2e1],
    ['The quick brown fox jumps over the lazy dog', 0, 0x2e4ff723],
    ['The quick brown fox jumps over the lazy dog', 42, 0x347ca102],
    ['sensor-00042', 0, 0xc43f622d],
    ['sensor-00042', 42, 0x99227696],
    ['héllo wörld €😀', 0, 0x9ba59b81],
    ['héllo wörld €😀', 42, 0x27cd215b],
  ];
  for (const [s, seed, want] of vectors) {
    it(`hashes ${JSON.stringify(s)} with seed ${seed} to 0x${want.toString(16)}`, () => {
      expect(murmur3_32(s, seed)).toBe(want);
    });
  }
});

describe('key groups', () => {
  it('puts every key in a group inside [0, maxParallelism)', () => {
    for (let i = 0; i < 1000; i++) {
      const g = keyGroupOf(`sensor-${i}`, 128);
      expect(g).toBeGreaterThanOrEqual(0);
      expect(g).toBeLessThan(128);
    }
  });

  it('spreads 10,000 sensor ids over all 128 groups', () => {
    const counts = new Array<number>(128).fill(0);
    for (let i = 0; i < 10000; i++) counts[keyGroupOf(`sensor-${String(i).padStart(5, '0')}`, 128)]++;
    expect(Math.min(...counts)).toBeGreaterThan(40);
    expect(Math.max(...counts)).toBeLessThan(120);
  });

  for (const [p, maxP] of [
    [1, 128],
    [2, 128],
    [3, 128],
    [5, 128],
    [7, 10],
    [10, 10],
    [128, 128],
    [3, 7],
    [4, 4096],
  ]) {
    it(`assigns each of ${maxP} key groups to exactly one of ${p} subtasks, contiguously`, () => {
      const owner = new Array<number>(maxP).fill(-1);
      let next = 0;
      for (let i = 0; i < p; i++) {
        const { start, end } = keyGroupRange(i, p, maxP);
        expect(start).toBe(next);
        for (let g = start; g <= end; g++) {
          expect(owner[g]).toBe(-1);
          owner[g] = i;
          expect(subtaskForKeyGroup(g, p, maxP)).toBe(i);
        }
        next = end + 1;
      }
      expect(next).toBe(maxP);
      expect(owner.includes(-1)).toBe(false);
    });
  }

  it('rejects a parallelism above maxParallelism', () => {
    expect(() => keyGroupRange(0, 129, 128)).toThrow(RangeError);
    expect(() => keyGroupRange(3, 3, 128)).toThrow(RangeError);
  });
});

describe('keyOf', () => {
  it('uses the value of a single key field as the key', () => {
    expect(keyOf({ sensorId: 'hall-1', t: 1 }, ['sensorId'])).toBe('hall-1');
    expect(keyOf({ n: 42 }, ['n'])).toBe('42');
    expect(keyOf({ b: true }, ['b'])).toBe('true');
    expect(keyOf({ s: null }, ['s'])).toBe('');
  });

  it('joins several key fields with a pipe, with null as the empty string', () => {
    expect(keyOf({ house: 'h1', room: 'kitchen' }, ['house', 'room'])).toBe('h1|kitchen');
    expect(keyOf({ house: null, room: 'kitchen' }, ['house', 'room'])).toBe('|kitchen');
  });
});
