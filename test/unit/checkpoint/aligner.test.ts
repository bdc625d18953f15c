import { describe, expect, it } from 'vitest';
import { BarrierAligner } from '../../../core/checkpoint/aligner.js';
import { checkpointId } from '../../../core/checkpoint/ids.js';

const n1 = checkpointId(1);
const n2 = checkpointId(2);
const n3 = checkpointId(3);

describe('BarrierAligner, exactly-once, 3 channels', () => {
  const orders = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
  ];
  for (const [a, b, c] of orders) {
    it(`blocks ${a} then ${b}, aligns on ${c} and releases [${[a, b].sort()}]`, () => {
      const al = new BarrierAligner(3, 'exactly-once');
      expect(al.onBarrier(a, n1)).toEqual({ outcome: 'BLOCK_CHANNEL', checkpointId: 1, channel: a });
      expect(al.onBarrier(b, n1)).toEqual({ outcome: 'BLOCK_CHANNEL', checkpointId: 1, channel: b });
      expect(al.isBlocked(a) && al.isBlocked(b) && !al.isBlocked(c)).toBe(true);
      expect(al.onBarrier(c, n1)).toEqual({ outcome: 'ALIGNED', checkpointId: 1, release: [a, b].sort() });
      expect([0, 1, 2].some((ch) => al.isBlocked(ch))).toBe(false);
      expect(al.aligning).toBeNull();
    });
  }

  it('counts a channel that ends mid-alignment as aligned', () => {
    const al = new BarrierAligner(3, 'exactly-once');
    al.onBarrier(0, n1);
    al.onBarrier(2, n1);
    expect(al.onEndOfInput(1)).toEqual({ outcome: 'ALIGNED', checkpointId: 1, release: [0, 2] });
  });

  it('aligns the next checkpoint over the channels that have not ended', () => {
    const al = new BarrierAligner(3, 'exactly-once');
    expect(al.onEndOfInput(1)).toEqual({ outcome: 'NO_CHANGE' });
    expect(al.onBarrier(0, n1).outcome).toBe('BLOCK_CHANNEL');
    expect(al.onBarrier(2, n1)).toEqual({ outcome: 'ALIGNED', checkpointId: 1, release: [0] });
  });

  it('aligns at once with a single live channel', () => {
    const al = new BarrierAligner(1, 'exactly-once');
    expect(al.onBarrier(0, n1)).toEqual({ outcome: 'ALIGNED', checkpointId: 1, release: [] });
  });

  it('aborts n when barrier n+1 arrives first, releasing the channels blocked for n and blocking for n+1', () => {
    const al = new BarrierAligner(3, 'exactly-once');
    al.onBarrier(0, n1);
    expect(al.onBarrier(1, n2)).toEqual({
      outcome: 'SUBSUMED',
      aborted: 1,
      checkpointId: 2,
      aligned: false,
      release: [0],
    });
    expect(al.isBlocked(0)).toBe(false);
    expect(al.isBlocked(1)).toBe(true);
    expect(al.onBarrier(0, n1)).toEqual({ outcome: 'IGNORED', checkpointId: 1 });
    al.onBarrier(0, n2);
    expect(al.onBarrier(2, n2)).toEqual({ outcome: 'ALIGNED', checkpointId: 2, release: [0, 1] });
  });

  it('ignores a barrier of a checkpoint already aligned', () => {
    const al = new BarrierAligner(2, 'exactly-once');
    al.onBarrier(0, n2);
    al.onBarrier(1, n2);
    expect(al.onBarrier(0, n1)).toEqual({ outcome: 'IGNORED', checkpointId: 1 });
    expect(al.onBarrier(0, n2)).toEqual({ outcome: 'IGNORED', checkpointId: 2 });
  });

  it('releases everything on abort and ignores the rest of the aborted barriers', () => {
    const al = new BarrierAligner(3, 'exactly-once');
    al.onBarrier(2, n1);
    al.onBarrier(0, n1);
    expect(al.abort(n1)).toEqual({ outcome: 'ABORTED', aborted: 1, release: [0, 2] });
    expect(al.onBarrier(1, n1)).toEqual({ outcome: 'IGNORED', checkpointId: 1 });
    expect(al.abort(n1)).toEqual({ outcome: 'IGNORED' });
  });

  it('ignores barriers up to an id aborted before they arrived', () => {
    const al = new BarrierAligner(2, 'exactly-once');
    expect(al.abort(n2)).toEqual({ outcome: 'IGNORED' });
    expect(al.onBarrier(0, n2).outcome).toBe('IGNORED');
    expect(al.onBarrier(0, n3).outcome).toBe('BLOCK_CHANNEL');
  });

  it('throws PROTOCOL for the same barrier twice on a channel, a barrier after end of input, or a bad channel', () => {
    const al = new BarrierAligner(3, 'exactly-once');
    al.onBarrier(0, n1);
    expect(() => al.onBarrier(0, n1)).toThrow(expect.objectContaining({ code: 'PROTOCOL' }));
    al.onEndOfInput(1);
    expect(() => al.onBarrier(1, n1)).toThrow(expect.objectContaining({ code: 'PROTOCOL' }));
    expect(() => al.onBarrier(3, n1)).toThrow(expect.objectContaining({ code: 'PROTOCOL' }));
  });
});

describe('BarrierAligner, at-least-once', () => {
  it('never blocks and snapshots when the last barrier arrives', () => {
    const al = new BarrierAligner(3, 'at-least-once');
    expect(al.onBarrier(1, n1)).toEqual({ outcome: 'CONTINUE', checkpointId: 1, channel: 1 });
    expect(al.isBlocked(1)).toBe(false);
    expect(al.onBarrier(0, n1)).toEqual({ outcome: 'CONTINUE', checkpointId: 1, channel: 0 });
    expect(al.onBarrier(2, n1)).toEqual({ outcome: 'ALIGNED', checkpointId: 1, release: [] });
  });

  it('subsumes n when a fast channel already delivers n+1', () => {
    const al = new BarrierAligner(2, 'at-least-once');
    al.onBarrier(0, n1);
    expect(al.onBarrier(0, n2)).toEqual({
      outcome: 'SUBSUMED',
      aborted: 1,
      checkpointId: 2,
      aligned: false,
      release: [],
    });
    expect(al.onBarrier(1, n1).outcome).toBe('IGNORED');
    expect(al.onBarrier(1, n2)).toEqual({ outcome: 'ALIGNED', checkpointId: 2, release: [] });
  });
});
