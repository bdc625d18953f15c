import { describe, expect, it } from 'vitest';
import { BoundedOutOfOrdernessWatermarks, WatermarkValve } from '../../../core/time/watermarks.js';

describe('BoundedOutOfOrdernessWatermarks', () => {
  it('is -Infinity before the first reading', () => {
    expect(new BoundedOutOfOrdernessWatermarks(2000).current).toBe(Number.NEGATIVE_INFINITY);
  });

  it('trails the largest timestamp seen by the bound and never goes back', () => {
    const g = new BoundedOutOfOrdernessWatermarks(2000);
    g.onEvent(10_000);
    expect(g.current).toBe(8000);
    g.onEvent(5000); // out of order: no effect
    expect(g.current).toBe(8000);
    g.onEvent(13_000);
    expect(g.current).toBe(11_000);
  });

  it('accepts a bound of zero and rejects a negative one', () => {
    const g = new BoundedOutOfOrdernessWatermarks(0);
    g.onEvent(7);
    expect(g.current).toBe(7);
    expect(() => new BoundedOutOfOrdernessWatermarks(-1)).toThrow(RangeError);
  });

  it('restores from its max timestamp', () => {
    const g = new BoundedOutOfOrdernessWatermarks(2000);
    g.restore(20_000);
    expect(g.current).toBe(18_000);
  });
});

describe('WatermarkValve', () => {
  it('emits the minimum over its channels once each has a watermark', () => {
    const v = new WatermarkValve(3);
    expect(v.onWatermark(0, 10)).toBeNull();
    expect(v.onWatermark(1, 20)).toBeNull();
    expect(v.onWatermark(2, 5)).toBe(5);
    expect(v.onWatermark(2, 30)).toBe(10);
    expect(v.current).toBe(10);
  });

  it('ignores a watermark lower than the channel already had', () => {
    const v = new WatermarkValve(1);
    expect(v.onWatermark(0, 10)).toBe(10);
    expect(v.onWatermark(0, 3)).toBeNull();
    expect(v.current).toBe(10);
  });

  it('stops waiting for idle channels', () => {
    const v = new WatermarkValve(3);
    v.onWatermark(0, 31_000);
    expect(v.current).toBe(Number.NEGATIVE_INFINITY);
    expect(v.onIdle(1)).toBeNull();
    expect(v.onIdle(2)).toBe(31_000);
  });

  it('flushes the highest watermark when every channel is idle', () => {
    const v = new WatermarkValve(2);
    v.onWatermark(0, 10);
    v.onWatermark(1, 40);
    expect(v.current).toBe(10);
    expect(v.onIdle(1)).toBeNull(); // channel 0 still active at 10
    expect(v.onIdle(0)).toBe(40);
  });

  it('does not move back when an idle channel wakes up behind the output', () => {
    const v = new WatermarkValve(3);
    v.onWatermark(0, 31_000);
    v.onIdle(1);
    v.onIdle(2);
    expect(v.current).toBe(31_000);
    // phase B of BR-01: P0 goes idle, P1 wakes up with a lower watermark
    expect(v.onIdle(0)).toBeNull();
    expect(v.onActive(1)).toBeNull();
    expect(v.onWatermark(1, 23_000)).toBeNull();
    expect(v.current).toBe(31_000);
    expect(v.onWatermark(1, 34_000)).toBe(34_000);
  });

  it('treats an ended channel as +Infinity and reaches +Infinity when all have ended', () => {
    const v = new WatermarkValve(2);
    v.onWatermark(0, 10);
    v.onWatermark(1, 20);
    expect(v.onEndOfInput(0)).toBe(20);
    expect(v.onEndOfInput(1)).toBe(Number.POSITIVE_INFINITY);
    expect(v.allEnded).toBe(true);
  });

  it('reaches +Infinity at end of input even when some channels were idle at the time', () => {
    const v = new WatermarkValve(3);
    v.onWatermark(1, 34_000);
    v.onIdle(0);
    v.onIdle(2);
    expect(v.current).toBe(34_000);
    v.onEndOfInput(0);
    v.onEndOfInput(2);
    expect(v.current).toBe(34_000);
    expect(v.onEndOfInput(1)).toBe(Number.POSITIVE_INFINITY);
  });

  it('does not jump to +Infinity because one channel ended while the others are idle', () => {
    const v = new WatermarkValve(2);
    v.onWatermark(0, 5);
    v.onWatermark(1, 7);
    v.onIdle(1);
    expect(v.onEndOfInput(0)).toBe(7);
    expect(v.current).toBe(7);
  });

  it('ignores watermarks after the end of input and rejects unknown channels', () => {
    const v = new WatermarkValve(1);
    v.onEndOfInput(0);
    expect(v.onWatermark(0, 5)).toBeNull();
    expect(() => v.onWatermark(1, 5)).toThrow(RangeError);
  });
});
