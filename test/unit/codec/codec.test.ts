import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter } from '../../../core/codec/bytes.js';
import {
  decodeBarrier,
  decodeEndOfInput,
  decodeRecords,
  decodeStatus,
  decodeWatermark,
  encodeBarrier,
  encodeEndOfInput,
  encodeStatus,
  encodeWatermark,
  FrameKind,
  FrameWriter,
  readFrameHeader,
} from '../../../core/codec/frames.js';
import { RowCodec } from '../../../core/codec/row-codec.js';
import type { Row } from '../../../core/spec/types.js';

const codec = new RowCodec([
  { name: 'sensorId', type: 'string' },
  { name: 'temperature', type: 'double' },
  { name: 'seq', type: 'int' },
  { name: 'ok', type: 'bool' },
]);

function roundTrip(rows: { row: Row; ts: number; wm: number }[], channel = 3) {
  const fw = new FrameWriter(16);
  fw.beginRecords(channel);
  for (const r of rows) fw.writeRecord(codec, r.row, r.ts, r.wm);
  expect(fw.recordCount).toBe(rows.length);
  const frame = fw.finish();
  expect(frame.byteLength).toBe(frame.buffer.byteLength);
  expect(readFrameHeader(frame)).toEqual({ kind: FrameKind.RECORDS, channel });
  const out: { row: Row; ts: number; wm: number }[] = [];
  const n = decodeRecords(frame, codec, (row, ts, wm) => out.push({ row, ts, wm }));
  expect(n).toBe(rows.length);
  return out;
}

describe('record frames', () => {
  it('round-trips rows, timestamps and source watermarks', () => {
    const rows = [
      {
        row: { sensorId: 'hall-1', temperature: 20.4, seq: 7, ok: true },
        ts: 1717200001000,
        wm: Number.NEGATIVE_INFINITY,
      },
      {
        row: { sensorId: 'kitchen-1', temperature: -3.25, seq: 2 ** 53 - 1, ok: false },
        ts: 1717200002000,
        wm: 1717199999000,
      },
    ];
    expect(roundTrip(rows)).toEqual(rows);
  });

  it('round-trips nulls of every type', () => {
    const rows = [{ row: { sensorId: null, temperature: null, seq: null, ok: null }, ts: 1, wm: 0 }];
    expect(roundTrip(rows)).toEqual(rows);
  });

  it('writes missing fields as null and drops fields outside the schema', () => {
    const out = roundTrip([{ row: { sensorId: 'x', extra: 'dropped' }, ts: 1, wm: 0 }]);
    expect(out[0].row).toEqual({ sensorId: 'x', temperature: null, seq: null, ok: null });
  });

  it('round-trips unicode, empty and long strings', () => {
    const long = 'sensor-'.repeat(40);
    const longUnicode = 'Küche-😀-'.repeat(30);
    const rows = ['', 'é', 'Küche 1', '温度计-3', '😀', long, longUnicode, `${long}é`].map((s, i) => ({
      row: { sensorId: s, temperature: i, seq: i, ok: true },
      ts: i,
      wm: i,
    }));
    expect(roundTrip(rows)).toEqual(rows);
  });

  it('round-trips an empty batch', () => {
    expect(roundTrip([])).toEqual([]);
  });

  it('keeps the buffer reusable across frames and grows it on demand', () => {
    const fw = new FrameWriter(16);
    for (let f = 0; f < 3; f++) {
      fw.beginRecords(f);
      for (let i = 0; i < 1000; i++)
        fw.writeRecord(codec, { sensorId: `s-${i}`, temperature: i / 10, seq: i, ok: i % 2 === 0 }, i, i - 5);
      const frame = fw.finish();
      let n = 0;
      decodeRecords(frame, codec, (row, ts) => {
        expect(row.sensorId).toBe(`s-${n}`);
        expect(ts).toBe(n);
        n++;
      });
      expect(n).toBe(1000);
    }
  });

  it('rejects a value of the wrong type and a truncated frame', () => {
    const fw = new FrameWriter();
    fw.beginRecords(0);
    expect(() => fw.writeRecord(codec, { sensorId: 5 }, 0, 0)).toThrow(/expects string/);
    fw.beginRecords(0);
    fw.writeRecord(codec, { sensorId: 'abc', temperature: 1 }, 0, 0);
    const frame = fw.finish();
    expect(() => decodeRecords(frame.subarray(0, frame.length - 2), codec, () => {})).toThrow(/truncated/);
  });
});

describe('control frames', () => {
  it('round-trips watermarks including both infinities', () => {
    for (const wm of [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, 0, 1717200031000]) {
      const f = encodeWatermark(2, wm);
      expect(readFrameHeader(f)).toEqual({ kind: FrameKind.WATERMARK, channel: 2 });
      expect(decodeWatermark(f)).toBe(wm);
    }
  });

  it('round-trips status, barrier and end-of-input frames', () => {
    expect(decodeStatus(encodeStatus(1, true))).toBe(true);
    expect(decodeStatus(encodeStatus(1, false))).toBe(false);
    expect(decodeBarrier(encodeBarrier(4, 17, 1717200000000, 1))).toEqual({
      checkpointId: 17,
      timestampMs: 1717200000000,
      flags: 1,
    });
    const eoi = encodeEndOfInput(0xffffffff);
    expect(readFrameHeader(eoi)).toEqual({ kind: FrameKind.END_OF_INPUT, channel: 0xffffffff });
    expect(() => decodeEndOfInput(eoi)).not.toThrow();
  });

  it('rejects a frame of the wrong kind or unknown kind', () => {
    expect(() => decodeWatermark(encodeStatus(0, true))).toThrow(/expected frame kind/);
    expect(() => readFrameHeader(new Uint8Array([9, 0, 0, 0, 0]))).toThrow(/unknown frame kind/);
  });
});

describe('byte writer and reader', () => {
  it('round-trips varints up to 2^53', () => {
    const w = new ByteWriter(4);
    const vals = [0, 1, 127, 128, 16_383, 16_384, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1];
    for (const v of vals) w.varint(v);
    const r = new ByteReader(w.toBytes());
    for (const v of vals) expect(r.varint()).toBe(v);
  });
});
