/**
 * JobCheckpointing, the JobManager's driver of the coordinator, against an in-memory store whose
 * metadata write can be held back: the race between a job ending and a checkpoint's metadata
 * write in flight (seen as a JobManager crash when a job was canceled mid-write).
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { InMemoryCheckpointStore } from '../../../core/checkpoint/store.js';
import type { CompletedCheckpoint } from '../../../core/checkpoint/types.js';
import { JobCheckpointing } from '../../../jobmanager/checkpointing.js';

class HeldStore extends InMemoryCheckpointStore {
  release: (() => void) | undefined;
  override async completeCheckpoint(c: CompletedCheckpoint): Promise<void> {
    await new Promise<void>((r) => {
      this.release = r;
    });
    await super.completeCheckpoint(c);
  }
}

function setup(store: InMemoryCheckpointStore) {
  const triggered: number[] = [];
  const jc = new JobCheckpointing({
    jobId: 'job1',
    attempt: 1,
    config: {
      intervalMs: 1_000_000,
      timeoutMs: 60_000,
      minPauseMs: 0,
      retained: 3,
      tolerableFailures: 0,
      mode: 'exactly-once',
    },
    sourceTasks: ['source-0'],
    tasks: ['source-0', 'window-0'],
    store,
    triggerSources: async (id) => {
      triggered.push(id);
    },
    notifyComplete: async () => {},
    onFailuresExceeded: () => {},
    log: pino({ level: 'silent' }),
  });
  return { jc, triggered };
}

async function ackAll(store: InMemoryCheckpointStore, jc: JobCheckpointing, id: number): Promise<void> {
  for (const task of ['source-0', 'window-0']) {
    await store.putTaskState(
      { jobId: 'job1', checkpointId: id, epoch: 1, taskKey: task, part: 'p' } as never,
      new Uint8Array([1]),
    );
    jc.onAck(task, 1, id, ['p'], 1);
  }
}

describe('JobCheckpointing', () => {
  it('a metadata write in flight when the job ends lands as a kept checkpoint, without a crash', async () => {
    const store = new HeldStore();
    const { jc } = setup(store);
    const done = jc.triggerNow();
    done.catch(() => {});
    await ackAll(store, jc, 1);
    expect(store.release).toBeDefined(); // the write is in flight
    jc.stop('SHUTDOWN');
    store.release?.();
    await jc.settled();
    // complete and valid: metadata and state both there, nothing deleted under it
    const kept = await store.listCompleted('job1' as never);
    expect(kept.map((c) => c.checkpointId)).toEqual([1]);
    expect(store.statePartCount).toBe(2);
  });

  it('never reuses an id: a new attempt starts above the highest id triggered before', async () => {
    const store = new InMemoryCheckpointStore();
    const { jc, triggered } = setup(store);
    void jc.triggerNow().catch(() => {});
    await new Promise((r) => setTimeout(r, 5));
    expect(triggered).toEqual([1]);
    jc.stop('JOB_FAILOVER');
    const next = new JobCheckpointing({
      jobId: 'job1',
      attempt: 2,
      config: {
        intervalMs: 1_000_000,
        timeoutMs: 60_000,
        minPauseMs: 0,
        retained: 3,
        tolerableFailures: 0,
        mode: 'exactly-once',
      },
      sourceTasks: ['source-0'],
      tasks: ['source-0'],
      store,
      firstCheckpointId: jc.lastTriggeredId + 1,
      triggerSources: async (id) => {
        triggered.push(id);
      },
      notifyComplete: async () => {},
      onFailuresExceeded: () => {},
      log: pino({ level: 'silent' }),
    });
    void next.triggerNow().catch(() => {});
    await new Promise((r) => setTimeout(r, 5));
    next.stop('SHUTDOWN');
    expect(triggered).toEqual([1, 2]);
  });
});
