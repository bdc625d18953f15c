import { keyGroupPart } from '../checkpoint/types.js';
import type { TaskDeploymentDescriptor } from '../graph/types.js';
import type { Row } from '../spec/types.js';
import type { KeyedOperatorConfig } from '../state/keyed-operator.js';
import { keyGroupRange } from '../state/keygroups.js';
import { keyGroupOfPart } from '../state/snapshot-values.js';
import type { OutputGate } from './output.js';
import type { Downstream, TaskCounters } from './transport.js';

/** What a keyed operator offers its chain link: watermarks, end of input, per-key-group state. */
export interface KeyedOperator {
  /** counts the task reports: readings dropped as late, keys held */
  readonly metrics: { late: number; keys: number };
  processWatermark(wm: number): void;
  endOfInput(): void;
  snapshotKeyGroups(start: number, end: number): Uint8Array[];
  restoreKeyGroup(keyGroup: number, bytes: Uint8Array): void;
}

/**
 * A keyed operator (window, detect, running) as a link of its vertex's chain, over the key groups
 * this subtask owns. The first keyed vertex has id `window` whatever its operator, rollup stages
 * `window-2`, `window-3`… (the JobManager hands key groups to keyed vertices on restore), so its
 * state parts are `<vertex>.kg-N`; each operator's snapshot carries its own magic byte, so one
 * never loads the other's state.
 */
export abstract class KeyedDownstream<Op extends KeyedOperator> implements Downstream {
  abstract readonly op: Op;
  /** the last watermark passed on: the watermark tag of what the operator emits */
  protected wm = Number.NEGATIVE_INFINITY;
  protected readonly keyGroups: { start: number; end: number };
  constructor(
    desc: TaskDeploymentDescriptor,
    protected readonly next: Downstream,
    protected readonly counters: TaskCounters,
  ) {
    this.keyGroups = keyGroupRange(desc.subtask, desc.parallelism, desc.graph.maxParallelism);
    this.vertexId = desc.vertexId;
  }
  /** the keyed vertex (`window`, `window-2`…): the prefix of its state parts */
  private readonly vertexId: string;
  /** The operator's key fields and the key groups this subtask owns. */
  protected keyedConfig(desc: TaskDeploymentDescriptor, keyFields: string[]): KeyedOperatorConfig {
    return {
      keyFields,
      maxParallelism: desc.graph.maxParallelism,
      keyGroupStart: this.keyGroups.start,
      keyGroupEnd: this.keyGroups.end,
    };
  }
  abstract processElement(row: Row, ts: number, swm: number): void;
  /** Copies the operator's metrics into the task counters (operators with more extend it). */
  sync(): void {
    this.counters.late = this.op.metrics.late;
    this.counters.keys = this.op.metrics.keys;
  }
  /** The operator's late output: a late reading goes to the `late` side output with the watermark that made it late. */
  protected lateOutput(gate: OutputGate): (row: Row, ts: number, watermark: number) => void {
    return (row, ts, watermark) => gate.collect('late', { ...row, watermarkMs: watermark }, ts, watermark);
  }
  processWatermark(wm: number): void {
    this.wm = wm;
    this.op.processWatermark(wm);
    this.sync();
    this.next.processWatermark(wm);
  }
  async endOfInput(): Promise<void> {
    this.op.endOfInput();
    this.sync();
    await this.next.endOfInput();
  }
  /** Restores one key group from a checkpoint part (`window.kg-N`); false when the part is not one. */
  restore(part: string, bytes: Uint8Array): boolean {
    const kg = keyGroupOfPart(this.vertexId, part);
    if (kg === undefined) return false;
    this.op.restoreKeyGroup(kg, bytes);
    return true;
  }
  /** The state of every key group this subtask owns, as checkpoint parts (taken synchronously). */
  snapshot(): [string, Uint8Array][] {
    const { start, end } = this.keyGroups;
    return this.op
      .snapshotKeyGroups(start, end)
      .map((b, i): [string, Uint8Array] => [keyGroupPart(this.vertexId, start + i), b]);
  }
}
