import { describe, expect, it } from 'vitest';
import { decodeRecords, decodeWatermark, FrameKind, RowCodec, readFrameHeader } from '../../../core/codec/index.js';
import { buildJobGraph } from '../../../core/graph/build.js';
import { buildDeployment } from '../../../core/graph/deploy.js';
import type { TaskLocation } from '../../../core/graph/types.js';
import { OutputGate } from '../../../core/runtime/output.js';
import type { ChannelMessage, Transport } from '../../../core/runtime/transport.js';
import { parseJobSpec } from '../../../core/spec/schema.js';

/** A source task of a parallelism-2 keyed job, with a transport that records what it sends. */
function sourceGate(credits: number, batchRecords: number) {
  const spec = parseJobSpec({
    name: 'o',
    parallelism: 2,
    source: {
      type: 'file',
      path: '/x.csv',
      columns: ['sensorId:string', 'timestamp:int', 'temperature:double'],
      eventTime: { field: 'timestamp', unit: 'ms' },
      watermark: { outOfOrdernessMs: 0 },
    },
    steps: [{ keyBy: 'sensorId' }, { window: { type: 'tumbling', sizeMs: 1000 } }, { aggregate: { n: 'count()' } }],
    sink: { type: 'file', path: '/o.jsonl' },
  });
  const graph = buildJobGraph(spec);
  const slots = [0, 1].map((i) => ({ taskmanagerId: 'tm', slot: i, dataAddress: 'a' }));
  const desc = buildDeployment('j', 1, spec, graph, slots).find((d) => d.taskId === 'source-0');
  if (!desc) throw new Error('no source task');
  const sent: { to: string; frame: ChannelMessage }[] = [];
  const transport: Transport = {
    isLocal: () => false,
    sendFrame: (c: TaskLocation, frame) => sent.push({ to: c.taskKey.split(':')[2], frame }),
    sendCredit: () => {},
  };
  const gate = new OutputGate(desc, transport, { batchRecords, channelCredits: credits });
  const edge = graph.edges.find((e) => e.target === 'window');
  return { gate, sent, codec: new RowCodec(edge?.schema ?? []), edgeId: edge?.id as number };
}

const row = (sensorId: string, timestamp: number) => ({ sensorId, timestamp, temperature: 20 });

describe('the output gate (credit-based flow control)', () => {
  it('sends records frames only while it has credit, and reports backpressure until credit returns', () => {
    const { gate, sent, edgeId } = sourceGate(2, 1);
    // the same key always goes to the same window subtask
    for (let i = 0; i < 3; i++) gate.collect('main', row('s-1', i), i, i);
    const toWindow = () => sent.filter((s) => s.to.startsWith('window'));
    expect(toWindow()).toHaveLength(2); // the third frame waits for credit
    expect(gate.hasCapacity()).toBe(false);
    const target = toWindow()[0].to.split('-')[1];
    gate.onCredit(`${edgeId}:${target}`, 1);
    expect(toWindow()).toHaveLength(3);
    expect(gate.hasCapacity()).toBe(true);
  });

  it('keeps a watermark behind the records that wait for credit, in channel order', () => {
    const { gate, sent, codec, edgeId } = sourceGate(1, 1);
    gate.collect('main', row('s-1', 1), 1, 1);
    gate.collect('main', row('s-1', 2), 2, 2); // no credit left: waits
    gate.broadcastWatermark(2);
    const target = (sent.find((s) => s.to.startsWith('window'))?.to ?? '').split('-')[1];
    const toTarget = () => sent.filter((s) => s.to === `window-${target}`).map((s) => s.frame as Uint8Array);
    expect(toTarget().map((f) => readFrameHeader(f).kind)).toEqual([FrameKind.RECORDS]);
    gate.onCredit(`${edgeId}:${target}`, 1);
    const frames = toTarget();
    expect(frames.map((f) => readFrameHeader(f).kind)).toEqual([
      FrameKind.RECORDS,
      FrameKind.RECORDS,
      FrameKind.WATERMARK,
    ]);
    const ts: number[] = [];
    for (const f of frames.slice(0, 2)) decodeRecords(f, codec, (_r, t) => ts.push(t));
    expect(ts).toEqual([1, 2]);
    expect(decodeWatermark(frames[2])).toBe(2);
  });

  it('batches records per consumer up to batchRecords before sending', () => {
    const { gate, sent } = sourceGate(8, 3);
    for (let i = 0; i < 3; i++) gate.collect('main', row('s-1', i), i, i);
    expect(sent.filter((s) => s.to.startsWith('window'))).toHaveLength(1);
    gate.collect('main', row('s-1', 3), 3, 3);
    expect(sent.filter((s) => s.to.startsWith('window'))).toHaveLength(1);
    gate.flush();
    expect(sent.filter((s) => s.to.startsWith('window'))).toHaveLength(2);
  });
});
