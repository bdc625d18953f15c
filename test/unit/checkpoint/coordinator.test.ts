import { describe, expect, it } from 'vitest';
import { CheckpointCoordinator, type CoordinatorOptions } from '../../../core/checkpoint/coordinator.js';
import { type CheckpointId, checkpointId, epoch, jobId, taskKey } from '../../../core/checkpoint/ids.js';
import type { CheckpointConfig } from '../../../core/checkpoint/types.js';

const JOB = jobId('job-1');
const E1 = epoch(1);
const SRC = taskKey('source-0');
const W0 = taskKey('window-0');
const W1 = taskKey('window-1');
const TASKS = [SRC, W0, W1];
const CONFIG: CheckpointConfig = {
  intervalMs: 1000,
  timeoutMs: 5000,
  minPauseMs: 500,
  retained: 2,
  tolerableFailures: 1,
  mode: 'exactly-once',
};
const state = { parts: ['op.kg-0'], stateBytes: 10 };

function coordinator(over: Partial<CoordinatorOptions> = {}, cfg: Partial<CheckpointConfig> = {}) {
  const c = new CheckpointCoordinator({
    jobId: JOB,
    epoch: E1,
    config: { ...CONFIG, ...cfg },
    sourceTasks: [SRC],
    tasks: TASKS,
    startedAtMs: 0,
    ...over,
  });
  for (const t of TASKS) c.taskRunning(t);
  return c;
}

function triggered(c: CheckpointCoordinator, nowMs: number, opts = {}): CheckpointId {
  const r = c.trigger(nowMs, opts);
  if (r.outcome !== 'TRIGGERED') throw new Error(`refused: ${r.reason}`);
  return r.checkpointId;
}

function ackAll(c: CheckpointCoordinator, id: CheckpointId, nowMs: number) {
  c.acknowledge({ epoch: E1, taskKey: SRC, checkpointId: id, state }, nowMs);
  c.acknowledge({ epoch: E1, taskKey: W0, checkpointId: id, state }, nowMs);
  return c.acknowledge({ epoch: E1, taskKey: W1, checkpointId: id, state }, nowMs);
}

function complete(c: CheckpointCoordinator, id: CheckpointId, nowMs: number) {
  const r = ackAll(c, id, nowMs);
  if (r.outcome !== 'COMPLETED') throw new Error(`not completed: ${r.outcome}`);
  return c.completionStored(id, nowMs);
}

describe('CheckpointCoordinator: triggering', () => {
  it('is not due before intervalMs after the start, and due at exactly intervalMs', () => {
    const c = coordinator();
    expect(c.shouldTrigger(999)).toEqual({ trigger: false, reason: 'NOT_DUE', dueAtMs: 1000 });
    expect(c.shouldTrigger(1000)).toEqual({ trigger: true, reason: 'DUE' });
  });

  it('refuses while a task has not reported running', () => {
    const c = new CheckpointCoordinator({
      jobId: JOB,
      epoch: E1,
      config: CONFIG,
      sourceTasks: [SRC],
      tasks: TASKS,
      startedAtMs: 0,
    });
    c.taskRunning(SRC);
    c.taskRunning(W0);
    expect(c.shouldTrigger(5000)).toEqual({ trigger: false, reason: 'NOT_ALL_TASKS_RUNNING' });
    expect(c.trigger(5000)).toEqual({ outcome: 'REFUSED', reason: 'NOT_ALL_TASKS_RUNNING' });
  });

  it('triggers checkpoint 1 at the sources and waits for every task, with aligned barrier flags', () => {
    const r = coordinator().trigger(1000);
    expect(r).toEqual({
      outcome: 'TRIGGERED',
      checkpointId: 1,
      savepoint: false,
      timestampMs: 1000,
      barrierFlags: 0,
      tasksToTrigger: ['source-0'],
      tasksToAck: ['source-0', 'window-0', 'window-1'],
    });
  });

  it('uses unaligned barrier flags in at-least-once mode', () => {
    const r = coordinator({}, { mode: 'at-least-once' }).trigger(1000);
    expect(r.outcome === 'TRIGGERED' && r.barrierFlags).toBe(1);
  });

  it('allows one checkpoint at a time, even a manual one', () => {
    const c = coordinator();
    triggered(c, 1000);
    expect(c.shouldTrigger(2000)).toEqual({ trigger: false, reason: 'ALREADY_IN_PROGRESS' });
    expect(c.trigger(2000)).toEqual({ outcome: 'REFUSED', reason: 'ALREADY_IN_PROGRESS' });
    expect(c.trigger(2000, { manual: true })).toEqual({ outcome: 'REFUSED', reason: 'ALREADY_IN_PROGRESS' });
  });

  it('waits minPauseMs after a completion before the next periodic checkpoint, but not for a manual one', () => {
    const c = coordinator();
    complete(c, triggered(c, 1000), 1800);
    // interval: due at 2000; pause: not before 1800 + 500 = 2300
    expect(c.shouldTrigger(2000)).toEqual({ trigger: false, reason: 'TOO_SOON', dueAtMs: 2300 });
    expect(c.trigger(2299)).toEqual({ outcome: 'REFUSED', reason: 'TOO_SOON' });
    expect(c.trigger(2299, { manual: true }).outcome).toBe('TRIGGERED');
  });

  it('is due again at 2300 once the pause is over, and numbers checkpoints 1, 2, ...', () => {
    const c = coordinator();
    complete(c, triggered(c, 1000), 1800);
    expect(c.shouldTrigger(2300)).toEqual({ trigger: true, reason: 'DUE' });
    expect(triggered(c, 2300)).toBe(2);
  });

  it('continues numbering after the checkpoints it restored', () => {
    const c = coordinator({
      restored: [
        { ...metaOf(7), savepoint: false },
        { ...metaOf(9), savepoint: true },
      ],
    });
    expect(triggered(c, 1000)).toBe(10);
  });
});

describe('CheckpointCoordinator: acknowledgements', () => {
  it('counts down acks, then completes with the metadata of every task, sorted by task key', () => {
    const c = coordinator();
    const id = triggered(c, 1000);
    expect(c.acknowledge({ epoch: E1, taskKey: W1, checkpointId: id, state }, 1100)).toEqual({
      outcome: 'ACKNOWLEDGED',
      checkpointId: 1,
      remaining: 2,
    });
    c.acknowledge(
      { epoch: E1, taskKey: SRC, checkpointId: id, state: { parts: ['src.split-0'], stateBytes: 3 } },
      1200,
    );
    const r = c.acknowledge({ epoch: E1, taskKey: W0, checkpointId: id, state }, 1300);
    expect(r).toEqual({
      outcome: 'COMPLETED',
      checkpoint: {
        jobId: 'job-1',
        checkpointId: 1,
        epoch: 1,
        savepoint: false,
        mode: 'exactly-once',
        triggeredAtMs: 1000,
        completedAtMs: 1300,
        tasks: [
          { taskKey: 'source-0', parts: ['src.split-0'], stateBytes: 3 },
          { taskKey: 'window-0', parts: ['op.kg-0'], stateBytes: 10 },
          { taskKey: 'window-1', parts: ['op.kg-0'], stateBytes: 10 },
        ],
        stateBytes: 23,
      },
    });
  });

  it('calls a second ack from the same task a duplicate, before and after completion', () => {
    const c = coordinator();
    const id = triggered(c, 1000);
    c.acknowledge({ epoch: E1, taskKey: W0, checkpointId: id, state }, 1100);
    expect(c.acknowledge({ epoch: E1, taskKey: W0, checkpointId: id, state }, 1150).outcome).toBe('DUPLICATE');
    c.acknowledge({ epoch: E1, taskKey: SRC, checkpointId: id, state }, 1200);
    c.acknowledge({ epoch: E1, taskKey: W1, checkpointId: id, state }, 1200);
    expect(c.acknowledge({ epoch: E1, taskKey: W1, checkpointId: id, state }, 1250).outcome).toBe('DUPLICATE');
    c.completionStored(id, 1300);
    expect(c.acknowledge({ epoch: E1, taskKey: W1, checkpointId: id, state }, 1400).outcome).toBe('DUPLICATE');
  });

  it('calls an ack for an id it never triggered unknown', () => {
    const c = coordinator();
    triggered(c, 1000);
    expect(c.acknowledge({ epoch: E1, taskKey: W0, checkpointId: checkpointId(2), state }, 1100)).toEqual({
      outcome: 'UNKNOWN',
      checkpointId: 2,
      why: 'NEVER_TRIGGERED',
    });
  });

  it('calls an ack from another epoch unknown, even for a pending id', () => {
    const c = coordinator();
    const id = triggered(c, 1000);
    expect(c.acknowledge({ epoch: epoch(0), taskKey: W0, checkpointId: id, state }, 1100)).toEqual({
      outcome: 'UNKNOWN',
      checkpointId: 1,
      why: 'WRONG_EPOCH',
    });
    expect(c.pendingIds).toEqual([1]);
  });

  it('calls an ack from a task outside the job unknown', () => {
    const c = coordinator();
    const id = triggered(c, 1000);
    expect(c.acknowledge({ epoch: E1, taskKey: taskKey('sink-9'), checkpointId: id, state }, 1100).outcome).toBe(
      'UNKNOWN',
    );
  });

  it('discards a late ack for a checkpoint that timed out', () => {
    const c = coordinator();
    const id = triggered(c, 1000);
    c.tick(6000);
    expect(c.acknowledge({ epoch: E1, taskKey: W0, checkpointId: id, state }, 6001)).toEqual({
      outcome: 'DISCARDED',
      checkpointId: 1,
    });
  });
});

describe('CheckpointCoordinator: timeouts and failures', () => {
  it('aborts a checkpoint at triggeredAtMs + timeoutMs as EXPIRED and counts it', () => {
    const c = coordinator();
    triggered(c, 1000);
    expect(c.tick(5999)).toEqual({ aborted: [], failureCountExceeded: false, nextDeadlineMs: 6000 });
    expect(c.tick(6000)).toEqual({
      aborted: [{ checkpointId: 1, savepoint: false, reason: 'EXPIRED', counted: true }],
      failureCountExceeded: false,
      nextDeadlineMs: null,
    });
    expect(c.failureCount).toBe(1);
  });

  it('reports the failure limit exceeded at the second consecutive failure with tolerableFailures 1', () => {
    const c = coordinator();
    triggered(c, 1000);
    expect(c.tick(6000).failureCountExceeded).toBe(false);
    const id2 = triggered(c, 7000);
    const r = c.decline({ epoch: E1, taskKey: W1, checkpointId: id2, reason: 'TASK_ERROR', message: 'disk full' });
    expect(r).toEqual({
      outcome: 'ABORTED',
      aborted: {
        checkpointId: 2,
        savepoint: false,
        reason: 'DECLINED',
        counted: true,
        declinedBy: { taskKey: 'window-1', reason: 'TASK_ERROR', message: 'disk full' },
      },
      failureCountExceeded: true,
    });
    expect(c.failureCountExceeded).toBe(true);
  });

  it('resets the failure count when a checkpoint completes', () => {
    const c = coordinator();
    triggered(c, 1000);
    c.tick(6000);
    complete(c, triggered(c, 7000), 7100);
    expect(c.failureCount).toBe(0);
  });

  it('does not count a decline because a newer barrier subsumed it', () => {
    const c = coordinator();
    const id = triggered(c, 1000);
    const r = c.decline({ epoch: E1, taskKey: W0, checkpointId: id, reason: 'SUBSUMED' });
    expect(r.outcome === 'ABORTED' && r.aborted.counted).toBe(false);
    expect(c.failureCount).toBe(0);
  });

  it('counts a failed metadata write and then refuses to confirm it', () => {
    const c = coordinator();
    const id = triggered(c, 1000);
    expect(ackAll(c, id, 1100).outcome).toBe('COMPLETED');
    expect(c.completionFailed(id)).toEqual({
      aborted: { checkpointId: 1, savepoint: false, reason: 'FINALIZE_FAILED', counted: true },
      failureCountExceeded: false,
    });
    expect(() => c.completionStored(id, 1200)).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });

  it('does not expire a checkpoint awaiting its metadata write', () => {
    const c = coordinator();
    const id = triggered(c, 1000);
    ackAll(c, id, 1100);
    expect(c.tick(60_000).aborted).toEqual([]);
  });

  it('aborts a pending checkpoint without counting when a task it waits for stops', () => {
    const c = coordinator();
    const id = triggered(c, 1000);
    c.acknowledge({ epoch: E1, taskKey: W0, checkpointId: id, state }, 1100);
    expect(c.taskNotRunning(W0)).toEqual([]);
    expect(c.taskNotRunning(W1)).toEqual([
      { checkpointId: 1, savepoint: false, reason: 'TASK_NOT_RUNNING', counted: false },
    ]);
  });

  it('aborts everything on shutdown and refuses later triggers', () => {
    const c = coordinator();
    triggered(c, 1000);
    expect(c.shutdown('JOB_FAILOVER')).toEqual([
      { checkpointId: 1, savepoint: false, reason: 'JOB_FAILOVER', counted: false },
    ]);
    expect(c.trigger(9000)).toEqual({ outcome: 'REFUSED', reason: 'SHUTDOWN' });
    expect(c.shouldTrigger(9000)).toEqual({ trigger: false, reason: 'SHUTDOWN' });
  });
});

describe('CheckpointCoordinator: subsumption, retention and savepoints', () => {
  it('keeps the 2 newest checkpoints: completing 3 returns 1 for deletion', () => {
    const c = coordinator();
    expect(complete(c, triggered(c, 1000), 1100).toDelete).toEqual([]);
    expect(complete(c, triggered(c, 2000), 2100).toDelete).toEqual([]);
    const r = complete(c, triggered(c, 3000), 3100);
    expect(r.toDelete).toEqual([1]);
    expect(r.notifyTasks).toEqual(['source-0', 'window-0', 'window-1']);
  });

  it('deletes restored checkpoints beyond retained at the next completion, oldest first', () => {
    const c = coordinator({ restored: [metaOf(3), metaOf(1), metaOf(2)] });
    expect(complete(c, triggered(c, 1000), 1100).toDelete).toEqual([1, 2]);
  });

  it('runs a savepoint beside a pending checkpoint; the savepoint completing subsumes the older checkpoint', () => {
    const c = coordinator();
    const cp = triggered(c, 1000);
    const sp = triggered(c, 1200, { savepoint: true });
    expect(sp).toBe(2);
    const r = complete(c, sp, 1300);
    expect(r.subsumed).toEqual([{ checkpointId: cp, savepoint: false, reason: 'SUBSUMED', counted: false }]);
    expect(r.toDelete).toEqual([]);
    expect(c.acknowledge({ epoch: E1, taskKey: W0, checkpointId: cp, state }, 1400).outcome).toBe('DISCARDED');
  });

  it('never subsumes a pending savepoint nor deletes a completed one', () => {
    const c = coordinator();
    const sp = triggered(c, 1000, { savepoint: true });
    complete(c, triggered(c, 1100, { manual: true }), 1200); // 2
    expect(c.pendingIds).toEqual([sp]);
    complete(c, sp, 1300);
    expect(complete(c, triggered(c, 3000), 3100).toDelete).toEqual([]); // 3: retained [2, 3]
    expect(complete(c, triggered(c, 4000), 4100).toDelete).toEqual([2]); // 4: retained [3, 4]
  });

  it('does not count a failed savepoint', () => {
    const c = coordinator();
    triggered(c, 1000, { savepoint: true });
    expect(c.tick(6000).aborted).toEqual([{ checkpointId: 1, savepoint: true, reason: 'EXPIRED', counted: false }]);
  });
});

describe('CheckpointCoordinator: config', () => {
  it('rejects an invalid config listing every problem', () => {
    expect(() => coordinator({}, { retained: 0, timeoutMs: -1 })).toThrow(
      expect.objectContaining({
        code: 'SPEC_INVALID',
        problems: ['timeoutMs: must be a number >= 1, got -1', 'retained: must be an integer >= 1, got 0'],
      }),
    );
  });
});

function metaOf(id: number) {
  return {
    jobId: JOB,
    checkpointId: checkpointId(id),
    epoch: epoch(0),
    savepoint: false,
    mode: 'exactly-once' as const,
    triggeredAtMs: 0,
    completedAtMs: 0,
    tasks: [],
    stateBytes: 0,
  };
}
