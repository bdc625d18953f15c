/**
 * The CheckpointStore contract, run against every implementation: in memory (unit) and Redis
 * (test/integration/checkpoint-store.test.ts).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { checkpointId, epoch, jobId, taskKey } from '../../../core/checkpoint/ids.js';
import type { CheckpointStore, StateRef } from '../../../core/checkpoint/store.js';
import type { CompletedCheckpoint } from '../../../core/checkpoint/types.js';

const JOB = jobId('job-a');
const OTHER = jobId('job-b');
const T0 = taskKey('window-0');

function ref(id: number, part: string, e = 1): StateRef {
  return { jobId: JOB, checkpointId: checkpointId(id), epoch: epoch(e), taskKey: T0, part };
}

function meta(id: number, parts: string[], savepoint = false): CompletedCheckpoint {
  return {
    jobId: JOB,
    checkpointId: checkpointId(id),
    epoch: epoch(1),
    savepoint,
    mode: 'exactly-once',
    triggeredAtMs: 1000 * id,
    completedAtMs: 1000 * id + 50,
    tasks: [{ taskKey: T0, parts, stateBytes: 3 * parts.length }],
    stateBytes: 3 * parts.length,
  };
}

export function checkpointStoreContract(name: string, make: () => Promise<CheckpointStore> | CheckpointStore): void {
  describe(`${name} (CheckpointStore contract)`, () => {
    let store: CheckpointStore;
    beforeEach(async () => {
      store = await make();
    });

    it('has no completed checkpoint for a new job', async () => {
      expect(await store.latestCompleted(JOB)).toBeNull();
      expect(await store.listCompleted(JOB)).toEqual([]);
    });

    it('returns the bytes written, and a second write of the same part replaces them', async () => {
      const bytes = new Uint8Array([0, 1, 2, 255]);
      await store.putTaskState(ref(1, 'op.kg-0'), bytes);
      bytes[0] = 9; // the store copied the bytes
      expect(Array.from((await store.getTaskState(ref(1, 'op.kg-0'))) ?? [])).toEqual([0, 1, 2, 255]);
      await store.putTaskState(ref(1, 'op.kg-0'), new Uint8Array([7]));
      expect(Array.from((await store.getTaskState(ref(1, 'op.kg-0'))) ?? [])).toEqual([7]);
      expect(await store.getTaskState(ref(1, 'op.kg-1'))).toBeNull();
    });

    it("writes a task's parts at once: each readable, the checkpoint completable, deleted with it", async () => {
      const parts = Array.from({ length: 130 }, (_, kg) => ({
        ref: ref(4, `op.kg-${kg}`),
        bytes: new Uint8Array([kg, kg >> 8, 42]),
      }));
      await store.putTaskStates(parts);
      for (const kg of [0, 1, 129])
        expect(Array.from((await store.getTaskState(ref(4, `op.kg-${kg}`))) ?? [])).toEqual([kg, kg >> 8, 42]);
      const names = parts.map((p) => p.ref.part);
      await store.completeCheckpoint(meta(4, names));
      expect((await store.latestCompleted(JOB))?.tasks[0]?.parts).toEqual(names);
      await store.delete(JOB, checkpointId(4));
      expect(await store.getTaskState(ref(4, 'op.kg-7'))).toBeNull();
      await store.putTaskStates([]); // nothing to write
    });

    it('refuses parts of two tasks or two checkpoints in one putTaskStates, writing none', async () => {
      const other = { ...ref(5, 'op.kg-1'), taskKey: taskKey('window-1') };
      await expect(
        store.putTaskStates([
          { ref: ref(5, 'op.kg-0'), bytes: new Uint8Array([1]) },
          { ref: other, bytes: new Uint8Array([2]) },
        ]),
      ).rejects.toMatchObject({ code: 'INTERNAL' });
      await expect(
        store.putTaskStates([
          { ref: ref(5, 'op.kg-0'), bytes: new Uint8Array([1]) },
          { ref: ref(6, 'op.kg-0'), bytes: new Uint8Array([2]) },
        ]),
      ).rejects.toMatchObject({ code: 'INTERNAL' });
      expect(await store.getTaskState(ref(5, 'op.kg-0'))).toBeNull();
    });

    it('lists every id with state, completed or not, until it is deleted', async () => {
      expect(await store.stateIds(JOB)).toEqual([]);
      await store.putTaskState(ref(3, 'p'), new Uint8Array([3]));
      await store.completeCheckpoint(meta(3, ['p']));
      await store.putTaskStates([{ ref: ref(8, 'op.kg-0'), bytes: new Uint8Array([8]) }]); // never completed
      expect(await store.stateIds(JOB)).toEqual([3, 8]);
      expect(await store.stateIds(OTHER)).toEqual([]);
      await store.delete(JOB, checkpointId(8));
      await store.delete(JOB, checkpointId(3));
      expect(await store.stateIds(JOB)).toEqual([]);
      expect(await store.getTaskState(ref(8, 'op.kg-0'))).toBeNull();
    });

    it('keeps state of two epochs under one checkpoint id apart', async () => {
      await store.putTaskState(ref(1, 'p', 1), new Uint8Array([1]));
      await store.putTaskState(ref(1, 'p', 2), new Uint8Array([2]));
      expect(Array.from((await store.getTaskState(ref(1, 'p', 1))) ?? [])).toEqual([1]);
    });

    it('lists completed checkpoints in id order and names the highest as latest', async () => {
      for (const id of [2, 1, 3]) {
        await store.putTaskState(ref(id, 'p'), new Uint8Array([id]));
        await store.completeCheckpoint(meta(id, ['p'], id === 3));
      }
      expect((await store.listCompleted(JOB)).map((c) => c.checkpointId)).toEqual([1, 2, 3]);
      expect(await store.latestCompleted(JOB)).toEqual(meta(3, ['p'], true));
      expect(await store.listCompleted(OTHER)).toEqual([]);
    });

    it('refuses to complete a checkpoint whose state is missing, and writes nothing', async () => {
      await store.putTaskState(ref(1, 'a'), new Uint8Array([1]));
      await expect(store.completeCheckpoint(meta(1, ['a', 'b']))).rejects.toMatchObject({ code: 'INTERNAL' });
      expect(await store.latestCompleted(JOB)).toBeNull();
    });

    it('completing the same checkpoint twice is harmless', async () => {
      await store.putTaskState(ref(1, 'a'), new Uint8Array([1]));
      await store.completeCheckpoint(meta(1, ['a']));
      await store.completeCheckpoint(meta(1, ['a']));
      expect(await store.listCompleted(JOB)).toEqual([meta(1, ['a'])]);
    });

    it('deletes metadata and every state part of a checkpoint, of any epoch, and only that one', async () => {
      await store.putTaskState(ref(1, 'a'), new Uint8Array([1]));
      await store.putTaskState(ref(1, 'a', 0), new Uint8Array([1]));
      await store.putTaskState(ref(2, 'a'), new Uint8Array([2]));
      await store.completeCheckpoint(meta(1, ['a']));
      await store.completeCheckpoint(meta(2, ['a']));
      await store.delete(JOB, checkpointId(1));
      expect((await store.listCompleted(JOB)).map((c) => c.checkpointId)).toEqual([2]);
      expect(await store.getTaskState(ref(1, 'a'))).toBeNull();
      expect(await store.getTaskState(ref(1, 'a', 0))).toBeNull();
      expect(Array.from((await store.getTaskState(ref(2, 'a'))) ?? [])).toEqual([2]);
    });

    it('deletes the partial state of a checkpoint that never completed, and a second delete is harmless', async () => {
      await store.putTaskState(ref(5, 'a'), new Uint8Array([1]));
      await store.delete(JOB, checkpointId(5));
      await store.delete(JOB, checkpointId(5));
      expect(await store.getTaskState(ref(5, 'a'))).toBeNull();
    });
  });
}
