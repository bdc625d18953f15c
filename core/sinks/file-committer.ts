/**
 * Two-phase commit of an exactly-once JSON-lines file sink with ONE final output file, after
 * Flink's `TwoPhaseCommitSinkFunction` (pre-commit at the barrier, commit on the completion
 * notice) and the exactly-once output of BR-14/BR-15: after any failure and recovery, the final
 * file holds every row of the failure-free run exactly once.
 *
 * Files (`<dir>/<base>` is the final file `path`):
 * ```
 * <dir>/<base>                                   final output, only ever appended by commits
 * <dir>/.<base>.fluxo/<epoch>-<n>.inprogress     rows since the last barrier (n = next checkpoint id)
 * <dir>/.<base>.fluxo/<epoch>-<id>.pending       rows of checkpoint id, pre-committed, not yet committed
 * <dir>/.<base>.fluxo/manifest.json              { version: 1, epoch, prunedThrough, commits: [{ checkpointId, length }] }
 * <dir>/.<base>.fluxo/manifest.json.tmp          the next manifest, before its rename
 * ```
 * `commits` is ascending by id and has ONE entry per committed pending file: `length` is the final
 * file's length in bytes right after that file's rows were appended. So the committed output of
 * every checkpoint m is the prefix of `length(greatest entry ≤ m)` bytes, even when one commit
 * covered several checkpoints (a lost completion notice). Invariant between operations: the final
 * file's committed part is the prefix of `length(last entry)` bytes (0 with no entry); any bytes
 * after it come from an interrupted append and are cut by the next commit or restore.
 *
 * Order of operations, and why a crash between any two steps is repaired by the next `restore`:
 *
 * `preCommit(c)`: 1. rename the in-progress file to `<epoch>-<c>.pending` (its descriptor stays
 * open); 2. open the next in-progress file and return the state `{ checkpointId: c, epoch, pending }`
 * for the checkpoint; 3. in the background: fsync + close the pending file, fsync the folder. The
 * task acknowledges c only after step 3 (`durable`). A crash anywhere here means checkpoint c was
 * never acknowledged, so recovery uses some m < c and deletes these files as stale; the replay
 * writes the rows again.
 *
 * Slow steps (fsyncs, copies, the manifest) run in the background, one after another in call
 * order, so the task keeps processing while the disk works; `commit` and `commitAll` run entirely
 * there.
 *
 * `commit(c)`: 1. read the manifest, refuse if its epoch is newer (fenced); 2. skip pending ids
 * already in it; 3. cut the final file to `length(last entry)`; 4. append the pending files ≤ c in
 * id order; 5. fsync the final file; 6. write the manifest with one new entry per file (temp file,
 * fsync, rename, fsync folder); 7. delete those pending files. Crash before 6: the manifest does not
 * have them, the pending files still exist and are listed in every later checkpoint's state (or, for
 * the latest, in the restored state), so `restore` cuts the partial append off and appends them
 * again. Crash after 6: they are committed; the files left over are deleted by `restore` as stale.
 *
 * `restore(state of m, epoch f)` (m = 0 without state): 1. read the manifest, refuse if its epoch
 * is newer than f (we are the zombie); 2. write the manifest with epoch f and without entries > m, in
 * one atomic step: from now on older attempts are fenced, before anything is cut that they might
 * append to again; 3. cut the final file to `length(greatest entry ≤ m)`, which removes output
 * committed after m (end-of-input output, a commit whose checkpoint was not the one restored, an
 * append whose manifest update was lost): the deterministic replay from m produces it again;
 * 4. commit (steps 3–7 above) the pending files of the state not in the manifest (the completion
 * notice of m, or of earlier ones, may have been lost: checkpoint m is complete, so they must be
 * output); 5. delete every other file of the folder (in-progress files, pending files of other
 * epochs or of ids > m, leftovers of steps 7 and 2); 6. open the in-progress file for m + 1.
 * Crash after 2: the manifest already has no entry > m, and the next restore (from m, or from a
 * later checkpoint of the new attempt) repeats 3–6, which are idempotent. A pending file is deleted
 * only after its entry is in the manifest, and restore(m) never drops an entry ≤ m, so a file listed
 * in the state of m and missing from the manifest still exists.
 *
 * `commitAll()` (end of input): commit the pending files, then the in-progress file under
 * `END_OF_INPUT_ID` (steps 1–7; the in-progress file is not fsynced on its own, only the final
 * file). Fast path when no pending file is left to commit and the committed length is 0: fsync the
 * in-progress file, rename it over the final file, fsync the final file's folder, add the manifest
 * entry. Crash before the entry: the final file holds rows no entry covers; every restore cuts it
 * to `length(greatest entry ≤ m)` = 0 (all entries have length 0), and end-of-input output is
 * written again by the replay anyway.
 *
 * `open(epoch)` (a fresh job, no restore): manifest `{ epoch, commits: [] }` first, then cut the
 * final file to 0, then clear the folder: a job's output replaces the previous output. A crash
 * anywhere before the first completed checkpoint leads to `restore(undefined)`, which does the same.
 *
 * Limits: fencing is check-then-act on plain files. It stops an older attempt that commits after
 * the newer attempt's restore step 2, not one whose commit is already between its steps 1 and 6
 * at that moment: the runtime must cancel the old task (or wait for it to die) before restoring.
 * Epochs order the attempts of one job only; `open` of a new job resets the manifest epoch.
 * Checkpoint ids must follow the restored lineage: after restore(m) the new attempt's ids are > m
 * (ids reused from the failed attempt are fine, their entries and files were dropped), and a later
 * restore is from m or from a checkpoint of the new attempt, never from a checkpoint > m of the old.
 * The folder is not safe for two committers of the same `path` at once (one sink subtask per file);
 * within one process, `open` and `restore` first wait for the background work of every earlier
 * committer of the same file, so a cancelled task's commit still running ends (or fails) before
 * its successor restores.
 */
import { close, constants, fsync, openSync, renameSync, write } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { type CheckpointId, type Epoch, checkpointId as toCheckpointId } from '../checkpoint/ids.js';
import { EngineError, ioReason } from '../errors/index.js';

/**
 * The id `commitAll` commits the end-of-input rows under: no real checkpoint has it, so every
 * later `restore` (from a checkpoint taken before the end of input) drops that output, which the
 * replay writes again.
 */
export const END_OF_INPUT_ID = Number.MAX_SAFE_INTEGER as CheckpointId;

/** Default number of manifest entries kept (older ones are pruned; see `keepCommits`). */
export const DEFAULT_KEEP_COMMITS = 1000;

export interface FileCommitterOptions {
  /** the final output file, as users see it; its folder is created when missing */
  path: string;
  /** the fencing epoch: `sinkEpoch` of the task (the job attempt, 1 for the first run, +1 per restart, plus the epoch base of a job restored from a savepoint) */
  epoch: Epoch;
  /**
   * Manifest entries kept, ≥ 1, default 1000. The manifest is rewritten on every commit, so it is
   * bounded; a restore from a checkpoint older than every kept entry fails with `SINK_IO`. Keep it
   * above the number of checkpoints between the oldest retained checkpoint and the latest.
   */
  keepCommits?: number;
}

/**
 * The sink's part of checkpoint `checkpointId`: JSON-able, a few bytes. Returned as a fresh object
 * the committer keeps no reference to; treat it as immutable once stored.
 */
export interface FileCommitterState {
  /** the checkpoint this state belongs to (the barrier it was taken at) */
  checkpointId: CheckpointId;
  /** the attempt that wrote the pending files */
  epoch: Epoch;
  /** ids of the pending files `<epoch>-<id>.pending` not yet committed at the barrier, ascending, all ≤ `checkpointId` */
  pending: CheckpointId[];
}

interface CommitEntry {
  checkpointId: number;
  /** final file length in bytes after this id's rows were appended */
  length: number;
}

interface Manifest {
  version: 1;
  epoch: number;
  /** the greatest id of a pruned entry (0 if none): ids ≤ it count as committed */
  prunedThrough: number;
  commits: CommitEntry[];
}

const MANIFEST = 'manifest.json';
const COPY_BYTES = 1 << 20;
/** Writes queued (bytes) above which `backlog()` asks the task to wait. */
const MAX_QUEUED_BYTES = 8 << 20;

/**
 * The background file work of the committers of this process, per final file (resolved path):
 * `open` and `restore` start only after the work of an earlier committer of the same file has
 * ended, so a closed task's commit still copying cannot interleave with its successor's restore.
 */
const busy = new Map<string, Promise<void>>();

/**
 * The committer of one final file. Not thread-safe. `write` and `preCommit` are synchronous and
 * cheap; the slow file work (fsync, the copy into the final file, the manifest) runs in the
 * background, one step after another in call order, so the task keeps processing while the disk
 * works. A background failure is thrown by the next call (and rejects `durable`, `commit`,
 * `commitAll`). Create it with `FileCommitter.open` (fresh job) or `FileCommitter.restore` (new
 * attempt after a failure); see the module comment for the order of operations. Every
 * file-system failure is EngineError `SINK_IO` naming the file; a call out of protocol (write
 * after `commitAll`, a pre-commit id not above the previous one) throws `INTERNAL`.
 */
export class FileCommitter {
  readonly path: string;
  readonly epoch: Epoch;
  /** the staging folder `<dir>/.<base>.fluxo` */
  readonly stagingDir: string;
  private readonly key: string;
  private readonly manifestPath: string;
  private readonly keepCommits: number;
  private fd: number | null = null;
  private inProgress = '';
  /** the last pre-committed id, or the restored checkpoint id */
  private lastId: number;
  /** pre-committed, not yet committed ids, ascending */
  private pending: CheckpointId[] = [];
  private finished = false;
  /** the background work queue: every step runs after the previous one has ended; never rejects */
  private tail: Promise<void> = Promise.resolve();
  private failure: EngineError | null = null;
  /** bytes of `write` calls not yet written */
  private queuedBytes = 0;
  /** bytes written to the current in-progress file (0: nothing since it was opened) */
  private intervalBytes = 0;

  private constructor(opts: FileCommitterOptions, lastId: number) {
    this.path = opts.path;
    this.key = resolve(opts.path);
    this.epoch = opts.epoch;
    this.stagingDir = join(dirname(opts.path), `.${basename(opts.path)}.fluxo`);
    this.manifestPath = join(this.stagingDir, MANIFEST);
    this.keepCommits = opts.keepCommits ?? DEFAULT_KEEP_COMMITS;
    if (!Number.isSafeInteger(this.keepCommits) || this.keepCommits < 1)
      throw new EngineError('INTERNAL', `keepCommits must be an integer ≥ 1, got ${opts.keepCommits}`);
    this.lastId = lastId;
  }

  /**
   * A fresh job: the final file is truncated (created if missing) and the staging folder cleared,
   * as a file sink's output is replaced by each job. Ids start after 0.
   * @throws EngineError `SINK_IO` when the folder or a file cannot be created, written or removed
   */
  static open(opts: FileCommitterOptions): Promise<FileCommitter> {
    return FileCommitter.start(opts, 0, async (c) => {
      await c.io('cannot create', c.stagingDir, () => mkdir(c.stagingDir, { recursive: true }));
      await c.writeManifest({ version: 1, epoch: c.epoch, prunedThrough: 0, commits: [] });
      await c.cutFinal(0, true);
      await c.clearStaging();
    });
  }

  /**
   * A new attempt after a failure, from the sink state of the restored checkpoint m (`undefined`:
   * no checkpoint, start from scratch as m = 0). Fences older attempts, cuts the final file to the
   * output committed up to m, commits the state's pending files the manifest lacks, deletes stale
   * files; the next in-progress file is for m + 1 (module comment, `restore`).
   * @throws EngineError `SINK_IO` "fenced" when the manifest has a newer epoch than `opts.epoch`;
   *   when a pending file of the state is missing, the manifest is unreadable or disagrees with the
   *   state, the final file is shorter than its committed length, or any file operation fails
   */
  static restore(opts: FileCommitterOptions, state: FileCommitterState | undefined): Promise<FileCommitter> {
    const m = state?.checkpointId ?? 0;
    return FileCommitter.start(opts, m, async (c) => {
      await c.io('cannot create', c.stagingDir, () => mkdir(c.stagingDir, { recursive: true }));
      const old = await c.readManifest(true);
      c.checkFence(old, 'restore');
      const kept = old.commits.filter((e) => e.checkpointId <= m);
      if (kept.length === 0 && old.prunedThrough > 0)
        throw new EngineError(
          'SINK_IO',
          `cannot restore checkpoint ${m} of ${c.path}: the manifest keeps commits after ${old.prunedThrough} only`,
        );
      const manifest: Manifest = { version: 1, epoch: c.epoch, prunedThrough: old.prunedThrough, commits: kept };
      await c.writeManifest(manifest);
      await c.cutFinal(lastLength(manifest), false);
      if (state !== undefined) {
        const todo = state.pending.filter((id) => id <= m && !isCommitted(manifest, id)).sort((a, b) => a - b);
        await c.append(
          manifest,
          todo.map((id) => c.pendingPath(state.epoch, id)),
          todo,
        );
      }
      await c.clearStaging();
    });
  }

  /** Runs `setup` after the earlier background work on the same file, then opens the first in-progress file. */
  private static async start(
    opts: FileCommitterOptions,
    lastId: number,
    setup: (c: FileCommitter) => Promise<void>,
  ): Promise<FileCommitter> {
    const c = new FileCommitter(opts, lastId);
    const before = busy.get(c.key) ?? Promise.resolve();
    const done = before.then(() => setup(c));
    c.track(done);
    await done;
    c.startInProgress();
    return c;
  }

  /**
   * Appends `chunk` (whole JSON lines, UTF-8) to the in-progress file of the current interval, in
   * the background (the task thread only encodes it). Not durable until `preCommit` and `durable`.
   * Wait for `backlog()` before writing more when it is not null.
   * @throws EngineError `SINK_IO` when background work failed; `INTERNAL` after `commitAll` or `close`
   */
  write(chunk: string): void {
    const fd = this.requireOpen();
    const buf = Buffer.from(chunk, 'utf8');
    const file = this.inProgress;
    this.queuedBytes += buf.length;
    this.intervalBytes += buf.length;
    this.enqueue(async () => {
      try {
        await writeAll(fd, buf, file);
      } finally {
        this.queuedBytes -= buf.length;
      }
    }).catch(() => {}); // kept for check()
  }

  /**
   * Backpressure: resolves when the background work queued so far is done, or null while less
   * than `MAX_QUEUED_BYTES` (8 MiB) of writes wait.
   * @throws EngineError `SINK_IO` when background work failed
   */
  backlog(): Promise<void> | null {
    this.check();
    return this.queuedBytes > MAX_QUEUED_BYTES ? this.tail : null;
  }

  /**
   * At the barrier of checkpoint `id`: renames the interval's file to `<epoch>-<id>.pending`,
   * starts the next interval and queues the fsyncs that make the pending file durable (`durable`
   * resolves when they are done: acknowledge the checkpoint only then). Returns the sink's state
   * for the checkpoint (pending ids not yet committed, including `id`). When nothing was written
   * since the previous barrier, no pending file is made for `id` (it is not in the state) and the
   * in-progress file carries on into the next interval: an empty transaction commits nothing.
   * @throws EngineError `SINK_IO` on a file failure; `INTERNAL` when `id` is not above the previous
   *   pre-committed (or restored) id, or after `commitAll` or `close`
   */
  preCommit(id: CheckpointId): FileCommitterState {
    const fd = this.requireOpen();
    if (id <= this.lastId)
      throw new EngineError('INTERNAL', `pre-commit of checkpoint ${id} of ${this.path} after ${this.lastId}`);
    if (this.intervalBytes === 0) {
      // nothing written since the last barrier (a quiet late-data or dead-letter output): no
      // pending file, no fsync, nothing to commit; the in-progress file goes on collecting
      this.lastId = id;
      return { checkpointId: id, epoch: this.epoch, pending: [...this.pending] };
    }
    const from = this.inProgress;
    const to = this.pendingPath(this.epoch, id);
    this.fd = null;
    this.ioSync('cannot rename', from, () => renameSync(from, to));
    this.pending.push(id);
    this.lastId = id;
    this.enqueue(async () => {
      await this.syncFd(fd, to, true);
      await this.syncDir();
    }).catch(() => {}); // kept for check() and durable()
    this.startInProgress();
    return { checkpointId: id, epoch: this.epoch, pending: [...this.pending] };
  }

  /**
   * Resolves when every pending file pre-committed so far is durable (fsynced, with its folder).
   * @throws EngineError (rejects) `SINK_IO` when background work failed
   */
  async durable(): Promise<void> {
    await this.tail;
    this.check();
  }

  /**
   * Checkpoint `id` completed: queues appending every pending file with id ≤ `id`, in id order,
   * to the final file and recording them in the manifest. Idempotent: ids already committed (or
   * none pending ≤ `id`) do nothing. Resolves to the ids committed by this call, ascending.
   * @throws EngineError (at once) a failure of earlier background work; (rejects) `SINK_IO`
   *   "fenced" when a newer attempt has restored, or on a file failure
   */
  commit(id: CheckpointId): Promise<CheckpointId[]> {
    this.check();
    const todo = this.pending.filter((p) => p <= id);
    if (todo.length === 0) return Promise.resolve([]);
    this.pending = this.pending.filter((p) => p > id);
    let fresh: CheckpointId[] = [];
    const done = this.enqueue(async () => {
      const manifest = await this.readManifest(false);
      this.checkFence(manifest, 'commit');
      fresh = todo.filter((p) => !isCommitted(manifest, p));
      await this.append(
        manifest,
        fresh.map((p) => this.pendingPath(this.epoch, p)),
        fresh,
      );
      for (const p of todo) if (!fresh.includes(p)) await this.removeFile(this.pendingPath(this.epoch, p));
    });
    return done.then(() => fresh);
  }

  /**
   * End of input of a bounded job: commits every pending file (also those of checkpoints whose
   * completion was not notified) and then the in-progress rows under `END_OF_INPUT_ID`, and
   * resolves when all of it is durable in the final file. When nothing was committed before (the
   * final file is empty), the in-progress file becomes the final file by a rename, without a copy.
   * The committer is finished afterwards. A later `restore` from any checkpoint drops this output
   * again (the replay writes it again).
   * @throws EngineError `SINK_IO` on a file failure, or of earlier background work; `INTERNAL`
   *   when already finished
   */
  async commitAll(): Promise<void> {
    const fd = this.requireOpen();
    this.fd = null;
    this.finished = true;
    const from = this.inProgress;
    const ids = this.pending;
    this.pending = [];
    await this.enqueue(async () => {
      const manifest = await this.readManifest(false);
      this.checkFence(manifest, 'commit');
      const fresh = ids.filter((p) => !isCommitted(manifest, p));
      for (const p of ids) if (!fresh.includes(p)) await this.removeFile(this.pendingPath(this.epoch, p));
      if (fresh.length === 0 && lastLength(manifest) === 0) {
        // nothing committed: the in-progress file becomes the final file (a crash before the
        // manifest leaves output that every restore cuts to 0 bytes, as for any end-of-input output)
        await this.syncFd(fd, from, true);
        await this.io('cannot rename', from, () => rename(from, this.path));
        await this.syncDir(dirname(this.path));
        await this.addEntries(manifest, [END_OF_INPUT_ID], [await this.sizeOf(this.path)]);
        return;
      }
      await this.syncFd(fd, from, false);
      await this.append(
        manifest,
        [...fresh.map((p) => this.pendingPath(this.epoch, p)), from],
        [...fresh, END_OF_INPUT_ID],
      );
    });
  }

  /**
   * Closes the in-progress file without committing (task cancelled or failed); its rows are
   * dropped by the next `restore` or `open`, which also wait for this committer's background work
   * to end. Idempotent, never throws.
   */
  close(): void {
    this.finished = true;
    if (this.fd === null) return;
    const fd = this.fd;
    const file = this.inProgress;
    this.fd = null;
    // after the queued writes to it: closing now could hand its number to another file under them
    this.enqueue(() => this.syncFd(fd, file, false)).catch(() => {}); // the next restore or open deletes the file
  }

  /** Settles when every queued background step has ended (never rejects). */
  settled(): Promise<void> {
    return this.tail;
  }

  /** @throws EngineError the first failure of background work, if any */
  check(): void {
    if (this.failure) throw this.failure;
  }

  private requireOpen(): number {
    this.check();
    if (this.finished || this.fd === null)
      throw new EngineError('INTERNAL', `file committer of ${this.path} is finished or closed`);
    return this.fd;
  }

  private startInProgress(): void {
    this.inProgress = join(this.stagingDir, `${this.epoch}-${this.lastId + 1}.inprogress`);
    this.intervalBytes = 0;
    this.fd = this.ioSync('cannot open', this.inProgress, () => openSync(this.inProgress, 'w'));
  }

  /** Queues `step` after the earlier ones; the returned promise rejects with its failure (also kept for `check`). */
  private enqueue(step: () => Promise<void>): Promise<void> {
    const done = this.tail.then(() => {
      this.check();
      return step();
    });
    this.track(done);
    return done;
  }

  /** Makes `done` the end of the queue (and of this file's work in the process); records its failure. */
  private track(done: Promise<void>): void {
    const tail = done.then(
      () => {},
      (err: unknown) => {
        this.failure ??=
          err instanceof EngineError
            ? err
            : new EngineError('SINK_IO', `file sink ${this.path}: ${ioReason(err)}`, { cause: err });
      },
    );
    this.tail = tail;
    busy.set(this.key, tail);
    tail.then(() => {
      if (busy.get(this.key) === tail) busy.delete(this.key);
    });
  }

  /** fsyncs (when `sync`) and closes the descriptor `fd` of `file`, in the thread pool. */
  private async syncFd(fd: number, file: string, sync: boolean): Promise<void> {
    if (sync)
      await new Promise<void>((ok, fail) => fsync(fd, (e) => (e ? fail(ioError('cannot sync', file, e)) : ok())));
    await new Promise<void>((ok, fail) => close(fd, (e) => (e ? fail(ioError('cannot close', file, e)) : ok())));
  }

  /**
   * Steps 3–7 of `commit`: cut the final file to its committed length, append `files` (the rows
   * of `ids`, ascending, none committed) in order, fsync, record one manifest entry per id, delete
   * the files.
   */
  private async append(manifest: Manifest, files: string[], ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    const last = manifest.commits.at(-1)?.checkpointId ?? manifest.prunedThrough;
    if (ids[0] <= last)
      throw new EngineError(
        'SINK_IO',
        `cannot commit checkpoint ${ids[0]} to ${this.path}: the manifest has a later commit ${last}`,
      );
    const lengths: number[] = [];
    const out = await this.io('cannot open', this.path, () => open(this.path, constants.O_WRONLY | constants.O_CREAT));
    try {
      let pos = lastLength(manifest);
      await this.checkLength(out, pos);
      await this.io('cannot truncate', this.path, () => out.truncate(pos));
      const buf = Buffer.allocUnsafe(COPY_BYTES);
      for (const src of files) {
        const input = await this.io('cannot open pending file', src, () => open(src, 'r'));
        try {
          for (;;) {
            const { bytesRead } = await this.io('cannot read', src, () => input.read(buf, 0, buf.length, null));
            if (bytesRead === 0) break;
            let off = 0;
            while (off < bytesRead) {
              const at = pos + off;
              const { bytesWritten } = await this.io('cannot write', this.path, () =>
                out.write(buf, off, bytesRead - off, at),
              );
              off += bytesWritten;
            }
            pos += bytesRead;
          }
        } finally {
          await input.close();
        }
        lengths.push(pos);
      }
      await this.io('cannot sync', this.path, () => out.sync());
    } finally {
      await out.close();
    }
    await this.addEntries(manifest, ids, lengths);
    for (const f of files) await this.removeFile(f);
  }

  /** Step 6 of `commit`: one manifest entry per id with the final file's length after it, pruned to `keepCommits`. */
  private async addEntries(manifest: Manifest, ids: number[], lengths: number[]): Promise<void> {
    for (let i = 0; i < ids.length; i++) manifest.commits.push({ checkpointId: ids[i], length: lengths[i] });
    const excess = manifest.commits.length - this.keepCommits;
    if (excess > 0) {
      manifest.prunedThrough = manifest.commits[excess - 1].checkpointId;
      manifest.commits.splice(0, excess);
    }
    manifest.epoch = this.epoch;
    await this.writeManifest(manifest);
  }

  private async sizeOf(file: string): Promise<number> {
    return (await this.io('cannot stat', file, () => stat(file))).size;
  }

  private async checkLength(fh: FileHandle, committed: number): Promise<void> {
    const { size } = await this.io('cannot stat', this.path, () => fh.stat());
    if (size < committed)
      throw new EngineError(
        'SINK_IO',
        `cannot commit to ${this.path}: it has ${size} bytes, fewer than the ${committed} committed (changed outside the sink?)`,
      );
  }

  /** Cuts the final file to `length` bytes (creating it), fsynced; `anySize` allows growing from nothing. */
  private async cutFinal(length: number, anySize: boolean): Promise<void> {
    const fh = await this.io('cannot open', this.path, () => open(this.path, constants.O_WRONLY | constants.O_CREAT));
    try {
      if (!anySize) await this.checkLength(fh, length);
      await this.io('cannot truncate', this.path, () => fh.truncate(length));
      await this.io('cannot sync', this.path, () => fh.sync());
    } finally {
      await fh.close();
    }
    await this.syncDir(dirname(this.path));
  }

  /** Deletes every file of the staging folder except the manifest. */
  private async clearStaging(): Promise<void> {
    const names = await this.io('cannot list', this.stagingDir, () => readdir(this.stagingDir));
    for (const name of names) if (name !== MANIFEST) await this.removeFile(join(this.stagingDir, name));
  }

  private checkFence(manifest: Manifest, what: string): void {
    if (manifest.epoch > this.epoch)
      throw new EngineError(
        'SINK_IO',
        `cannot ${what} ${this.path}: fenced: epoch ${this.epoch} < manifest epoch ${manifest.epoch}`,
        { ids: { epoch: this.epoch, manifestEpoch: manifest.epoch } },
      );
  }

  /** The manifest; a missing one is empty (epoch -1) only when `missingOk` (restore). */
  private async readManifest(missingOk: boolean): Promise<Manifest> {
    let text: string;
    try {
      text = await readFile(this.manifestPath, 'utf8');
    } catch (err) {
      if (missingOk && (err as NodeJS.ErrnoException).code === 'ENOENT')
        return { version: 1, epoch: -1, prunedThrough: 0, commits: [] };
      throw ioError('cannot read', this.manifestPath, err);
    }
    const bad = (why: string) => new EngineError('SINK_IO', `invalid manifest ${this.manifestPath}: ${why}`);
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw bad(err instanceof Error ? err.message : String(err));
    }
    const m = raw as Partial<Manifest>;
    if (typeof m !== 'object' || m === null || m.version !== 1) throw bad('not a version 1 manifest');
    if (!Number.isSafeInteger(m.epoch) || !Number.isSafeInteger(m.prunedThrough)) throw bad('bad epoch');
    if (!Array.isArray(m.commits)) throw bad('no commits');
    let prev = m.prunedThrough as number;
    for (const e of m.commits) {
      if (!Number.isSafeInteger(e?.checkpointId) || !Number.isSafeInteger(e?.length) || e.checkpointId <= prev)
        throw bad('commits not ascending integers');
      prev = e.checkpointId;
    }
    return m as Manifest;
  }

  /** Atomic replace: temp file, fsync, rename, fsync folder. */
  private async writeManifest(manifest: Manifest): Promise<void> {
    const tmp = `${this.manifestPath}.tmp`;
    await this.io('cannot write', tmp, async () => {
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(`${JSON.stringify(manifest)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
    await this.io('cannot rename', tmp, () => rename(tmp, this.manifestPath));
    await this.syncDir();
  }

  private pendingPath(epoch: number, id: number): string {
    return join(this.stagingDir, `${epoch}-${id}.pending`);
  }

  private async removeFile(file: string): Promise<void> {
    await this.io('cannot delete', file, () => rm(file, { force: true, recursive: true }));
  }

  private async syncDir(dir = this.stagingDir): Promise<void> {
    await this.io('cannot sync folder', dir, async () => {
      const fh = await open(dir, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
  }

  /** Awaits `fn`, turning a file-system error into `SINK_IO` "`what` `file`: reason". */
  private async io<T>(what: string, file: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof EngineError) throw err;
      throw ioError(what, file, err);
    }
  }

  /** Runs `fn`, turning a file-system error into `SINK_IO` "`what` `file`: reason". */
  private ioSync<T>(what: string, file: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof EngineError) throw err;
      throw ioError(what, file, err);
    }
  }
}

/** Writes all of `buf` at the descriptor's position, in the thread pool. */
function writeAll(fd: number, buf: Buffer, file: string): Promise<void> {
  return new Promise<void>((ok, fail) => {
    const from = (off: number) =>
      write(fd, buf, off, buf.length - off, null, (err, n) => {
        if (err) fail(ioError('cannot write', file, err));
        else if (off + n < buf.length) from(off + n);
        else ok();
      });
    from(0);
  });
}

function ioError(what: string, file: string, err: unknown): EngineError {
  return new EngineError('SINK_IO', `${what} ${file}: ${ioReason(err)}`, { cause: err });
}

/** Validates a state read back from a checkpoint store. @throws EngineError `PROTOCOL` on a bad shape */
export function fileCommitterState(raw: unknown): FileCommitterState {
  const s = raw as Partial<FileCommitterState>;
  const ok =
    typeof s === 'object' &&
    s !== null &&
    Number.isSafeInteger(s.epoch) &&
    (s.epoch as number) >= 0 &&
    Array.isArray(s.pending) &&
    s.pending.every((p) => Number.isSafeInteger(p) && p >= 1 && p <= (s.checkpointId as number));
  if (!ok) throw new EngineError('PROTOCOL', 'invalid file sink state');
  return {
    checkpointId: toCheckpointId(s.checkpointId as number),
    epoch: s.epoch as Epoch,
    pending: [...(s.pending as CheckpointId[])],
  };
}

function lastLength(m: Manifest): number {
  return m.commits.at(-1)?.length ?? 0;
}

function isCommitted(m: Manifest, id: number): boolean {
  return id <= m.prunedThrough || m.commits.some((e) => e.checkpointId === id);
}
