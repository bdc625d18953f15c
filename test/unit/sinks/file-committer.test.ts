import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkpointId, epoch } from '../../../core/checkpoint/ids.js';
import { isEngineError } from '../../../core/errors/index.js';
import {
  END_OF_INPUT_ID,
  FileCommitter,
  type FileCommitterState,
  fileCommitterState,
} from '../../../core/sinks/file-committer.js';

const cp = checkpointId;
const E0 = epoch(0);
const E1 = epoch(1);
const E2 = epoch(2);

// BR-15's expected output, one JSON line per (sensor, window), in emission order.
const B0 = '{"key":"bath-2","windowStart":1717200000000,"windowEnd":1717200010000,"count":2,"avg":22.2}\n';
const H0 = '{"key":"hall-4","windowStart":1717200000000,"windowEnd":1717200010000,"count":2,"avg":20.1}\n';
const B10 = '{"key":"bath-2","windowStart":1717200010000,"windowEnd":1717200020000,"count":2,"avg":23.3}\n';
const H10 = '{"key":"hall-4","windowStart":1717200010000,"windowEnd":1717200020000,"count":2,"avg":20.5}\n';
const B20 = '{"key":"bath-2","windowStart":1717200020000,"windowEnd":1717200030000,"count":2,"avg":24.2}\n';
const H20 = '{"key":"hall-4","windowStart":1717200020000,"windowEnd":1717200030000,"count":1,"avg":20.8}\n';
const H30 = '{"key":"hall-4","windowStart":1717200030000,"windowEnd":1717200040000,"count":1,"avg":21.0}\n';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh temp folder and the final file path `out/result.jsonl` inside it (folder not created). */
function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fluxo-sink-'));
  dirs.push(dir);
  return join(dir, 'out', 'result.jsonl');
}

function staging(path: string): string {
  return join(path, '..', '.result.jsonl.fluxo');
}

function content(path: string): string {
  return readFileSync(path, 'utf8');
}

function manifest(path: string): { epoch: number; prunedThrough: number; commits: unknown[] } {
  return JSON.parse(readFileSync(join(staging(path), 'manifest.json'), 'utf8'));
}

async function codeOf(fn: () => unknown): Promise<{ code: string; message: string }> {
  try {
    await fn();
  } catch (e) {
    if (isEngineError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected an EngineError');
}

describe('FileCommitter: pre-commit and commit', () => {
  it('writes nothing to the final file until commit, then exactly the pre-committed rows', async () => {
    const path = tempPath();
    const c = await FileCommitter.open({ path, epoch: E0 });
    c.write(B0 + H0);
    expect(content(path)).toBe('');
    expect(readdirSync(staging(path)).sort()).toEqual(['0-1.inprogress', 'manifest.json']);

    const state = c.preCommit(cp(1));
    expect(state).toEqual({ checkpointId: 1, epoch: 0, pending: [1] });
    c.write(B10); // next interval, not part of checkpoint 1
    expect(readdirSync(staging(path)).sort()).toEqual(['0-1.pending', '0-2.inprogress', 'manifest.json']);
    expect(content(path)).toBe('');

    expect(await c.commit(cp(1))).toEqual([1]);
    expect(content(path)).toBe(B0 + H0);
    expect(manifest(path)).toEqual({
      version: 1,
      epoch: 0,
      prunedThrough: 0,
      commits: [{ checkpointId: 1, length: Buffer.byteLength(B0 + H0) }],
    });
    expect(readdirSync(staging(path)).sort()).toEqual(['0-2.inprogress', 'manifest.json']);
  });

  it('commit is idempotent: the same id again changes nothing', async () => {
    const path = tempPath();
    const c = await FileCommitter.open({ path, epoch: E0 });
    c.write(B0);
    c.preCommit(cp(1));
    await c.commit(cp(1));
    const before = manifest(path);
    expect(await c.commit(cp(1))).toEqual([]);
    expect(content(path)).toBe(B0);
    expect(manifest(path)).toEqual(before);
  });

  it('a later commit covers earlier pending checkpoints in id order; their late notice does nothing', async () => {
    const path = tempPath();
    const c = await FileCommitter.open({ path, epoch: E0 });
    c.write(B0);
    c.preCommit(cp(1));
    c.write(H0);
    c.preCommit(cp(2));
    c.write(B10);
    expect(c.preCommit(cp(3)).pending).toEqual([1, 2, 3]);

    expect(await c.commit(cp(3))).toEqual([1, 2, 3]);
    expect(content(path)).toBe(B0 + H0 + B10);
    // one entry per checkpoint, so a restore from 2 could cut at the right byte
    expect(manifest(path).commits).toEqual([
      { checkpointId: 1, length: Buffer.byteLength(B0) },
      { checkpointId: 2, length: Buffer.byteLength(B0 + H0) },
      { checkpointId: 3, length: Buffer.byteLength(B0 + H0 + B10) },
    ]);
    expect(await c.commit(cp(2))).toEqual([]);
    expect(content(path)).toBe(B0 + H0 + B10);
  });

  it('pending checkpoints stay in the state until committed', async () => {
    const path = tempPath();
    const c = await FileCommitter.open({ path, epoch: E0 });
    c.write(B0);
    c.preCommit(cp(4));
    c.write(H0);
    expect(c.preCommit(cp(6))).toEqual({ checkpointId: 6, epoch: 0, pending: [4, 6] });
    await c.commit(cp(4));
    c.write(B0);
    expect(c.preCommit(cp(7))).toEqual({ checkpointId: 7, epoch: 0, pending: [6, 7] });
  });

  it('an interval without rows makes no pending file and commits nothing', async () => {
    const path = tempPath();
    const c = await FileCommitter.open({ path, epoch: E0 });
    expect(c.preCommit(cp(1))).toEqual({ checkpointId: 1, epoch: 0, pending: [] });
    expect(await c.commit(cp(1))).toEqual([]);
    c.write(B0);
    expect(c.preCommit(cp(2))).toEqual({ checkpointId: 2, epoch: 0, pending: [2] });
    expect(c.preCommit(cp(3))).toEqual({ checkpointId: 3, epoch: 0, pending: [2] });
    await c.durable();
    expect(readdirSync(staging(path)).filter((f) => f.endsWith('.pending'))).toEqual(['0-2.pending']);
    expect(await c.commit(cp(3))).toEqual([2]);
    expect(content(path)).toBe(B0);
    expect(manifest(path).commits).toEqual([{ checkpointId: 2, length: Buffer.byteLength(B0) }]);
  });

  it('refuses a pre-commit id not above the previous one, and writes after commitAll', async () => {
    const path = tempPath();
    const c = await FileCommitter.open({ path, epoch: E0 });
    c.preCommit(cp(2));
    expect((await codeOf(() => c.preCommit(cp(2)))).code).toBe('INTERNAL');
    await c.commitAll();
    expect((await codeOf(() => c.write(B0))).code).toBe('INTERNAL');
  });
});

describe('FileCommitter: open', () => {
  it('replaces the previous output and clears the staging folder', async () => {
    const path = tempPath();
    const old = await FileCommitter.open({ path, epoch: E0 });
    old.write(B0);
    old.preCommit(cp(1));
    await old.commit(cp(1));
    old.write(H0);
    old.preCommit(cp(2));
    old.close();

    const c = await FileCommitter.open({ path, epoch: E0 });
    expect(content(path)).toBe('');
    expect(readdirSync(staging(path)).sort()).toEqual(['0-1.inprogress', 'manifest.json']);
    expect(manifest(path).commits).toEqual([]);
    c.write(B10);
    await c.commitAll();
    expect(content(path)).toBe(B10);
  });

  it('turns a file-system failure into SINK_IO naming the path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fluxo-sink-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'a-file'), 'x');
    const path = join(dir, 'a-file', 'result.jsonl');
    const err = await codeOf(() => FileCommitter.open({ path, epoch: E0 }));
    expect(err.code).toBe('SINK_IO');
    expect(err.message).toContain(join(dir, 'a-file'));
  });
});

describe('FileCommitter: recovery (BR-15)', () => {
  it('a crash after pre-commit but before commit: the replayed rows appear once', async () => {
    const path = tempPath();
    const a = await FileCommitter.open({ path, epoch: E0 });
    a.write(B0 + H0);
    const state1 = a.preCommit(cp(1)); // checkpoint after line 7
    await a.commit(cp(1));
    a.write(B10 + H10); // emitted at line 9
    a.preCommit(cp(2)); // barrier reached the sink, checkpoint 2 never completes
    a.write(B20);
    // crash: `a` is dropped
    expect(content(path)).toBe(B0 + H0);

    const b = await FileCommitter.restore({ path, epoch: E1 }, state1);
    expect(content(path)).toBe(B0 + H0);
    expect(readdirSync(staging(path)).sort()).toEqual(['1-2.inprogress', 'manifest.json']);
    b.write(B10 + H10); // replay from line 8
    b.preCommit(cp(2));
    await b.commit(cp(2));
    b.write(B20 + H20 + H30);
    await b.commitAll();
    expect(content(path)).toBe(B0 + H0 + B10 + H10 + B20 + H20 + H30);
    expect(readdirSync(staging(path))).toEqual(['manifest.json']);
  });

  it('a lost completion notice: restore commits the pending files of the restored checkpoint', async () => {
    const path = tempPath();
    const a = await FileCommitter.open({ path, epoch: E0 });
    a.write(B0);
    a.preCommit(cp(1));
    a.write(H0);
    const state2 = a.preCommit(cp(2)); // checkpoints 1 and 2 complete, neither notice arrives
    a.write(B10);
    // crash

    const b = await FileCommitter.restore({ path, epoch: E1 }, state2);
    expect(content(path)).toBe(B0 + H0);
    expect(manifest(path)).toMatchObject({ epoch: 1, commits: [{ checkpointId: 1 }, { checkpointId: 2 }] });
    b.write(B10);
    await b.commitAll();
    expect(content(path)).toBe(B0 + H0 + B10);
  });

  it('a crash after the append but before the manifest update: restore cuts it and appends once', async () => {
    const path = tempPath();
    const a = await FileCommitter.open({ path, epoch: E0 });
    a.write(B0 + H0);
    a.preCommit(cp(1));
    await a.commit(cp(1));
    a.write(B10 + H10);
    const state2 = a.preCommit(cp(2));
    // commit(2) crashes between its fsync and its manifest write: the rows are in the final file
    appendFileSync(path, B10 + H10);
    expect(content(path)).toBe(B0 + H0 + B10 + H10);

    const b = await FileCommitter.restore({ path, epoch: E1 }, state2);
    expect(content(path)).toBe(B0 + H0 + B10 + H10);
    b.write(B20 + H20 + H30);
    await b.commitAll();
    expect(content(path)).toBe(B0 + H0 + B10 + H10 + B20 + H20 + H30);
  });

  it('a crash in the middle of an append: restore cuts the partial line', async () => {
    const path = tempPath();
    const a = await FileCommitter.open({ path, epoch: E0 });
    a.write(B0);
    a.preCommit(cp(1));
    await a.commit(cp(1));
    a.write(H0);
    const state2 = a.preCommit(cp(2));
    appendFileSync(path, H0.slice(0, 20));

    const b = await FileCommitter.restore({ path, epoch: E1 }, state2);
    expect(content(path)).toBe(B0 + H0);
    await b.commitAll();
    expect(content(path)).toBe(B0 + H0);
  });

  it('output committed after the restored checkpoint is cut (a later checkpoint not restored)', async () => {
    const path = tempPath();
    const a = await FileCommitter.open({ path, epoch: E0 });
    a.write(B0);
    const state1 = a.preCommit(cp(1));
    await a.commit(cp(1));
    a.write(H0);
    a.preCommit(cp(2));
    await a.commit(cp(2));

    const b = await FileCommitter.restore({ path, epoch: E1 }, state1);
    expect(content(path)).toBe(B0);
    expect(manifest(path).commits).toEqual([{ checkpointId: 1, length: Buffer.byteLength(B0) }]);
    b.write(H0);
    b.preCommit(cp(2)); // the new attempt reuses id 2
    await b.commit(cp(2));
    expect(content(path)).toBe(B0 + H0);
  });

  it('end of input then a failover to an earlier checkpoint: the end-of-input output is cut and written again', async () => {
    const path = tempPath();
    const a = await FileCommitter.open({ path, epoch: E0 });
    a.write(B0 + H0);
    const state1 = a.preCommit(cp(1));
    await a.commit(cp(1));
    a.write(B10 + H10 + B20 + H20 + H30);
    await a.commitAll();
    expect(content(path)).toBe(B0 + H0 + B10 + H10 + B20 + H20 + H30);
    expect(manifest(path).commits).toContainEqual({
      checkpointId: END_OF_INPUT_ID,
      length: Buffer.byteLength(B0 + H0 + B10 + H10 + B20 + H20 + H30),
    });

    // another task fails before the job finishes: recovery from checkpoint 1
    const b = await FileCommitter.restore({ path, epoch: E1 }, state1);
    expect(content(path)).toBe(B0 + H0);
    b.write(B10 + H10 + B20 + H20 + H30);
    await b.commitAll();
    expect(content(path)).toBe(B0 + H0 + B10 + H10 + B20 + H20 + H30);
  });

  it('restore without state starts from scratch', async () => {
    const path = tempPath();
    const a = await FileCommitter.open({ path, epoch: E0 });
    a.write(B0);
    await a.commitAll();

    const b = await FileCommitter.restore({ path, epoch: E1 }, undefined);
    expect(content(path)).toBe('');
    expect(manifest(path)).toEqual({ version: 1, epoch: 1, prunedThrough: 0, commits: [] });
    b.write(B0);
    await b.commitAll();
    expect(content(path)).toBe(B0);
  });

  it('a crash during restore, after the manifest write: the next restore finishes the job', async () => {
    const path = tempPath();
    const a = await FileCommitter.open({ path, epoch: E0 });
    a.write(B0);
    const state1 = a.preCommit(cp(1));
    a.write(H0);
    a.preCommit(cp(2));
    await a.commit(cp(2)); // commits 1 and 2
    // restore(state1, 1) got as far as its manifest write (entries > 1 dropped, epoch 1), then died
    const m = manifest(path);
    writeFileSync(
      join(staging(path), 'manifest.json'),
      JSON.stringify({ ...m, epoch: 1, commits: m.commits.slice(0, 1) }),
    );

    const c = await FileCommitter.restore({ path, epoch: E2 }, state1);
    expect(content(path)).toBe(B0);
    c.write(H0);
    await c.commitAll();
    expect(content(path)).toBe(B0 + H0);
  });

  it('a pending file of the state that is missing is an error, not silent loss', async () => {
    const path = tempPath();
    const a = await FileCommitter.open({ path, epoch: E0 });
    a.write(B0);
    const state1 = a.preCommit(cp(1));
    rmSync(join(staging(path), '0-1.pending'));
    const err = await codeOf(() => FileCommitter.restore({ path, epoch: E1 }, state1));
    expect(err.code).toBe('SINK_IO');
    expect(err.message).toContain('0-1.pending');
  });

  it('the state survives a JSON round trip and is validated', async () => {
    const path = tempPath();
    const a = await FileCommitter.open({ path, epoch: E0 });
    a.write(B0);
    const state: FileCommitterState = fileCommitterState(JSON.parse(JSON.stringify(a.preCommit(cp(1)))));
    await (await FileCommitter.restore({ path, epoch: E1 }, state)).commitAll();
    expect(content(path)).toBe(B0);
    expect((await codeOf(() => fileCommitterState({ checkpointId: 1, epoch: 0, pending: [2] }))).code).toBe('PROTOCOL');
  });
});

describe('FileCommitter: fencing', () => {
  it('an older attempt cannot commit after a newer one restored', async () => {
    const path = tempPath();
    const old = await FileCommitter.open({ path, epoch: E0 });
    old.write(B0);
    const state1 = old.preCommit(cp(1));
    await old.commit(cp(1));
    old.write(H0);
    old.preCommit(cp(2));

    const b = await FileCommitter.restore({ path, epoch: E1 }, state1);
    const err = await codeOf(() => old.commit(cp(2)));
    expect(err.code).toBe('SINK_IO');
    expect(err.message).toContain('fenced: epoch 0 < manifest epoch 1');
    expect(content(path)).toBe(B0);

    b.write(H0);
    await b.commitAll();
    expect(content(path)).toBe(B0 + H0);
  });

  it('an older attempt cannot restore after a newer one did', async () => {
    const path = tempPath();
    await FileCommitter.restore({ path, epoch: E2 }, undefined);
    const err = await codeOf(() => FileCommitter.restore({ path, epoch: E1 }, undefined));
    expect(err.code).toBe('SINK_IO');
    expect(err.message).toContain('fenced: epoch 1 < manifest epoch 2');
  });
});

describe('FileCommitter: manifest pruning', () => {
  it('keeps the last keepCommits entries; a restore older than them fails', async () => {
    const path = tempPath();
    const a = await FileCommitter.open({ path, epoch: E0, keepCommits: 2 });
    const states: FileCommitterState[] = [];
    for (const [i, row] of [B0, H0, B10, H10].entries()) {
      a.write(row);
      states.push(a.preCommit(cp(i + 1)));
      await a.commit(cp(i + 1));
    }
    expect(manifest(path)).toMatchObject({ prunedThrough: 2, commits: [{ checkpointId: 3 }, { checkpointId: 4 }] });
    expect((await codeOf(() => FileCommitter.restore({ path, epoch: E1, keepCommits: 2 }, states[1]))).code).toBe(
      'SINK_IO',
    );

    await (await FileCommitter.restore({ path, epoch: E1, keepCommits: 2 }, states[2])).commitAll();
    expect(content(path)).toBe(B0 + H0 + B10);
    expect(existsSync(path)).toBe(true);
  });
});

describe('FileCommitter: background work', () => {
  it('end of input with nothing committed before: the in-progress file becomes the final file', async () => {
    const path = tempPath();
    const c = await FileCommitter.open({ path, epoch: E0 });
    const empty = c.preCommit(cp(1)); // a checkpoint with no rows: nothing to commit
    await c.commit(cp(1));
    c.write(B0 + H0);
    await c.commitAll();
    expect(content(path)).toBe(B0 + H0);
    expect(manifest(path).commits).toEqual([{ checkpointId: END_OF_INPUT_ID, length: Buffer.byteLength(B0 + H0) }]);
    expect(readdirSync(staging(path))).toEqual(['manifest.json']);

    // a failover to checkpoint 1 drops the end-of-input output, as for the copying path
    const b = await FileCommitter.restore({ path, epoch: E1 }, empty);
    expect(content(path)).toBe('');
    b.write(B0 + H0);
    await b.commitAll();
    expect(content(path)).toBe(B0 + H0);
  });

  it('a crash between the end-of-input rename and its manifest entry: restore cuts the output', async () => {
    const path = tempPath();
    const a = await FileCommitter.open({ path, epoch: E0 });
    const state1 = a.preCommit(cp(1));
    await a.durable();
    // the rename happened, the manifest write did not: the final file holds rows no entry covers
    writeFileSync(path, B0 + H0);
    const b = await FileCommitter.restore({ path, epoch: E1 }, state1);
    expect(content(path)).toBe('');
    b.write(B0 + H0);
    await b.commitAll();
    expect(content(path)).toBe(B0 + H0);
  });

  it('a failure of the background fsyncs rejects durable() and fails the next call', async () => {
    const path = tempPath();
    const c = await FileCommitter.open({ path, epoch: E0 });
    c.write(B0);
    c.preCommit(cp(1));
    rmSync(staging(path), { recursive: true, force: true }); // the folder fsync after the rename fails
    const err = await codeOf(() => c.durable());
    expect(err.code).toBe('SINK_IO');
    expect(err.message).toContain('.result.jsonl.fluxo');
    expect((await codeOf(() => c.write(H0))).code).toBe('SINK_IO');
    expect((await codeOf(() => c.commit(cp(1)))).code).toBe('SINK_IO');
  });

  it('writes run in the background; backlog() asks the writer to wait above 8 MiB queued', async () => {
    const path = tempPath();
    const c = await FileCommitter.open({ path, epoch: E0 });
    const line = `${'x'.repeat(1023)}\n`;
    const chunk = line.repeat(1024); // 1 MiB
    expect(c.backlog()).toBeNull();
    for (let i = 0; i < 9; i++) c.write(chunk);
    const wait = c.backlog();
    expect(wait).not.toBeNull();
    await wait;
    expect(c.backlog()).toBeNull();
    c.preCommit(cp(1));
    await c.commit(cp(1));
    expect(readFileSync(path).length).toBe(9 * 1024 * 1024);
  });

  it('a restore of the same file waits for the commit still running in this process', async () => {
    const path = tempPath();
    const a = await FileCommitter.open({ path, epoch: E0 });
    a.write(B0);
    const state1 = a.preCommit(cp(1));
    a.write(H0);
    a.preCommit(cp(2));
    const late = a.commit(cp(2)); // not awaited: the task was cancelled while it runs
    a.close();
    const b = await FileCommitter.restore({ path, epoch: E1 }, state1);
    expect(await late).toEqual([1, 2]); // it ran to its end before the restore began
    expect(content(path)).toBe(B0); // and the restore cut checkpoint 2's output
    expect(manifest(path)).toMatchObject({ epoch: 1, commits: [{ checkpointId: 1 }] });
    b.write(H0);
    await b.commitAll();
    expect(content(path)).toBe(B0 + H0);
  });
});
