import type { OperatorDesc, TaskDeploymentDescriptor } from '../graph/types.js';
import { RunningOperator, UPDATED_AT_FIELD } from '../running/running-operator.js';
import type { Row } from '../spec/types.js';
import { KeyedDownstream } from './keyed-downstream.js';
import type { OutputGate } from './output.js';
import type { Downstream, TaskCounters } from './transport.js';

/**
 * The `running` step in a chain: a continuous keyed aggregate over the key groups this subtask
 * owns (core/running/running-operator.ts). Each update row goes to `next` (the sink) with its
 * `updatedAt` as event time; late readings go to the `late` side output.
 */
export class RunningDownstream extends KeyedDownstream<RunningOperator> {
  readonly op: RunningOperator;
  constructor(
    desc: TaskDeploymentDescriptor,
    o: Extract<OperatorDesc, { kind: 'running' }>,
    next: Downstream,
    gate: OutputGate,
    counters: TaskCounters,
  ) {
    super(desc, next, counters);
    this.op = new RunningOperator(
      { aggregates: o.aggregates, ...this.keyedConfig(desc, o.keyFields) },
      {
        emit: (row) => next.processElement(row, row[UPDATED_AT_FIELD] as number, this.wm),
        late: this.lateOutput(gate),
      },
    );
  }
  processElement(row: Row, ts: number, swm: number): void {
    this.op.processElement(row, ts, swm);
  }
}
