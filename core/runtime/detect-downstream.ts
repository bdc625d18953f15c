import { DetectOperator } from '../detect/detect-operator.js';
import type { OperatorDesc, TaskDeploymentDescriptor } from '../graph/types.js';
import type { Row } from '../spec/types.js';
import { KeyedDownstream } from './keyed-downstream.js';
import type { OutputGate } from './output.js';
import type { Downstream, TaskCounters } from './transport.js';

/**
 * The `detect` step in a chain: spike detection over the key groups this subtask owns
 * (core/detect/detect-operator.ts). Alerts go to `next` (the sink), late readings to the `late`
 * side output. A value that is not a finite number cannot arrive (the spec requires a non-null
 * numeric field; sources and maps reject NaN and ±Infinity); if one did, it is counted as rejected
 * and skipped.
 */
export class DetectDownstream extends KeyedDownstream<DetectOperator> {
  readonly op: DetectOperator;
  constructor(
    desc: TaskDeploymentDescriptor,
    o: Extract<OperatorDesc, { kind: 'detect' }>,
    next: Downstream,
    gate: OutputGate,
    counters: TaskCounters,
  ) {
    super(desc, next, counters);
    this.op = new DetectOperator(
      { detect: o.detect, ...this.keyedConfig(desc, o.keyFields) },
      {
        emit: (row) => next.processElement(row, row.ts as number, this.wm),
        late: this.lateOutput(gate),
      },
    );
  }
  processElement(row: Row, ts: number, swm: number): void {
    if (!this.op.processElement(row, ts, swm)) this.counters.rejected++;
  }
}
