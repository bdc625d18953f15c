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
 * `preCommit(c)`: 1. fsync + close the in-progress file; 2. rename it to `<epoch>-<c>.pending`;
 * 3. fsync the folder; 4. return the state `{ checkpointId: c, epoch, pending }` for the checkpoint.
 * A crash anywhere here means checkpoint c was never acknowledged, so recovery uses some m < c and
 * deletes these files as stale; the replay writes the rows again.
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
 * The folder is not safe for two committers of the same `path` at once (one sink subtask per file).
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
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

/**
 * The committer of one final file. Not thread-safe; all calls are synchronous. Create it with
 * `FileCommitter.open` (fresh job) or `FileCommitter.restore` (new attempt after a failure); see the
 * module comment for the order of operations. Every file-system failure throws EngineError
 * `SINK_IO` naming the file; a call out of protocol (write after `commitAll`, a pre-commit id not
 * above the previous one) throws `INTERNAL`.
 */
export class FileCommitter {
  readonly path: string;
  readonly epoch: Epoch;
  /** the staging folder `<dir>/.<base>.fluxo` */
  readonly stagingDir: string;
  private readonly manifestPath: string;
  private readonly keepCommits: number;
  private fd: number | null = null;
  private inProgress = '';
  /** the last pre-committed id, or the restored checkpoint id */
  private lastId: number;
  /** pre-committed, not yet committed ids, ascending */
  private pending: CheckpointId[] = [];
  private finished = false;

  private constructor(opts: FileCommitterOptions, lastId: number) {
    this.path = opts.path;
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
  static open(opts: FileCommitterOptions): FileCommitter {
    const c = new FileCommitter(opts, 0);
    c.io('cannot create', c.stagingDir, () => mkdirSync(c.stagingDir, { recursive: true }));
    c.writeManifest({ version: 1, epoch: c.epoch, prunedThrough: 0, commits: [] });
    c.cutFinal(0, true);
    c.clearStaging();
    c.startInProgress();
    return c;
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
  static restore(opts: FileCommitterOptions, state: FileCommitterState | undefined): FileCommitter {
    const m = state?.checkpointId ?? 0;
    const c = new FileCommitter(opts, m);
    c.io('cannot create', c.stagingDir, () => mkdirSync(c.stagingDir, { recursive: true }));
    const old = c.readManifest(true);
    c.checkFence(old, 'restore');
    const kept = old.commits.filter((e) => e.checkpointId <= m);
    if (kept.length === 0 && old.prunedThrough > 0)
      throw new EngineError(
        'SINK_IO',
        `cannot restore checkpoint ${m} of ${c.path}: the manifest keeps commits after ${old.prunedThrough} only`,
      );
    const manifest: Manifest = { version: 1, epoch: c.epoch, prunedThrough: old.prunedThrough, commits: kept };
    c.writeManifest(manifest);
    c.cutFinal(lastLength(manifest), false);
    if (state !== undefined) {
      const todo = state.pending.filter((id) => id <= m && !isCommitted(manifest, id)).sort((a, b) => a - b);
      c.append(manifest, state.epoch, todo);
    }
    c.clearStaging();
    c.startInProgress();
    return c;
  }

  /**
   * Appends `chunk` (whole JSON lines, UTF-8) to the in-progress file of the current interval.
   * Not durable until `preCommit`.
   * @throws EngineError `SINK_IO` when the write fails; `INTERNAL` after `commitAll` or `close`
   */
  write(chunk: string): void {
    const fd = this.requireOpen();
    const buf = Buffer.from(chunk, 'utf8');
    this.io('cannot write', this.inProgress, () => {
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    });
  }

  /**
   * At the barrier of checkpoint `id`: makes the interval's rows durable as `<epoch>-<id>.pending`
   * and starts the next interval. Returns the sink's state for the checkpoint (pending ids not yet
   * committed, including `id`).
   * @throws EngineError `SINK_IO` on a file failure; `INTERNAL` when `id` is not above the previous
   *   pre-committed (or restored) id, or after `commitAll` or `close`
   */
  preCommit(id: CheckpointId): FileCommitterState {
    this.requireOpen();
    if (id <= this.lastId)
      throw new EngineError('INTERNAL', `pre-commit of checkpoint ${id} of ${this.path} after ${this.lastId}`);
    this.sealInProgress(id);
    this.startInProgress();
    return { checkpointId: id, epoch: this.epoch, pending: [...this.pending] };
  }

  /**
   * Checkpoint `id` completed: appends every pending file with id ≤ `id`, in id order, to the final
   * file and records them in the manifest. Idempotent: ids already committed (or none pending ≤
   * `id`) do nothing. Returns the ids committed by this call, ascending.
   * @throws EngineError `SINK_IO` "fenced" when a newer attempt has restored; on a file failure
   */
  commit(id: CheckpointId): CheckpointId[] {
    const todo = this.pending.filter((p) => p <= id);
    if (todo.length === 0) return [];
    const manifest = this.readManifest(false);
    this.checkFence(manifest, 'commit');
    const fresh = todo.filter((p) => !isCommitted(manifest, p));
    this.append(manifest, this.epoch, fresh);
    for (const p of todo) if (!fresh.includes(p)) this.removeFile(this.pendingPath(this.epoch, p));
    this.pending = this.pending.filter((p) => p > id);
    return fresh;
  }

  /**
   * End of input of a bounded job: pre-commits the in-progress rows under `END_OF_INPUT_ID` and
   * commits every pending file (also those of checkpoints whose completion was not notified).
   * The committer is finished afterwards. A later `restore` from any checkpoint drops this output
   * again (the replay writes it again).
   * @throws EngineError `SINK_IO` as `preCommit` and `commit`; `INTERNAL` when already finished
   */
  commitAll(): void {
    this.requireOpen();
    this.sealInProgress(END_OF_INPUT_ID);
    this.finished = true;
    this.commit(END_OF_INPUT_ID);
  }

  /**
   * Closes the in-progress file without committing (task cancelled or failed); its rows are
   * dropped by the next `restore` or `open`. Idempotent, never throws.
   */
  close(): void {
    this.finished = true;
    try {
      this.closeInProgress();
    } catch {
      // the next restore or open deletes the file
    }
  }

  private requireOpen(): number {
    if (this.finished || this.fd === null)
      throw new EngineError('INTERNAL', `file committer of ${this.path} is finished or closed`);
    return this.fd;
  }

  private startInProgress(): void {
    this.inProgress = join(this.stagingDir, `${this.epoch}-${this.lastId + 1}.inprogress`);
    this.fd = this.io('cannot open', this.inProgress, () => openSync(this.inProgress, 'w'));
  }

  private closeInProgress(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    closeSync(fd);
  }

  private sealInProgress(id: CheckpointId): void {
    const fd = this.fd as number;
    this.io('cannot sync', this.inProgress, () => fsyncSync(fd));
    this.fd = null;
    this.io('cannot close', this.inProgress, () => closeSync(fd));
    const to = this.pendingPath(this.epoch, id);
    this.io('cannot rename', this.inProgress, () => renameSync(this.inProgress, to));
    this.syncDir();
    this.pending.push(id);
    this.lastId = id;
  }

  /** Steps 3–7 of `commit`: cut, append `ids` (ascending, not committed) of `epoch`, fsync, manifest, delete. */
  private append(manifest: Manifest, epoch: number, ids: number[]): void {
    if (ids.length === 0) return;
    const last = manifest.commits.at(-1)?.checkpointId ?? manifest.prunedThrough;
    if (ids[0] <= last)
      throw new EngineError(
        'SINK_IO',
        `cannot commit checkpoint ${ids[0]} to ${this.path}: the manifest has a later commit ${last}`,
      );
    const entries: CommitEntry[] = [];
    const fd = this.io('cannot open', this.path, () => openSync(this.path, constants.O_WRONLY | constants.O_CREAT));
    try {
      let pos = lastLength(manifest);
      this.checkLength(fd, pos);
      this.io('cannot truncate', this.path, () => ftruncateSync(fd, pos));
      const buf = Buffer.allocUnsafe(COPY_BYTES);
      for (const id of ids) {
        const src = this.pendingPath(epoch, id);
        const inFd = this.io('cannot open pending file', src, () => openSync(src, 'r'));
        try {
          for (;;) {
            const n = this.io('cannot read', src, () => readSync(inFd, buf, 0, buf.length, null));
            if (n === 0) break;
            let off = 0;
            while (off < n)
              off += this.io('cannot write', this.path, () => writeSync(fd, buf, off, n - off, pos + off));
            pos += n;
          }
        } finally {
          closeSync(inFd);
        }
        entries.push({ checkpointId: id, length: pos });
      }
      this.io('cannot sync', this.path, () => fsyncSync(fd));
    } finally {
      closeSync(fd);
    }
    manifest.commits.push(...entries);
    const excess = manifest.commits.length - this.keepCommits;
    if (excess > 0) {
      manifest.prunedThrough = manifest.commits[excess - 1].checkpointId;
      manifest.commits.splice(0, excess);
    }
    manifest.epoch = this.epoch;
    this.writeManifest(manifest);
    for (const id of ids) this.removeFile(this.pendingPath(epoch, id));
  }

  private checkLength(fd: number, committed: number): void {
    const size = this.io('cannot stat', this.path, () => fstatSync(fd).size);
    if (size < committed)
      throw new EngineError(
        'SINK_IO',
        `cannot commit to ${this.path}: it has ${size} bytes, fewer than the ${committed} committed (changed outside the sink?)`,
      );
  }

  /** Cuts the final file to `length` bytes (creating it), fsynced; `anySize` allows growing from nothing. */
  private cutFinal(length: number, anySize: boolean): void {
    const fd = this.io('cannot open', this.path, () => openSync(this.path, constants.O_WRONLY | constants.O_CREAT));
    try {
      if (!anySize) this.checkLength(fd, length);
      this.io('cannot truncate', this.path, () => ftruncateSync(fd, length));
      this.io('cannot sync', this.path, () => fsyncSync(fd));
    } finally {
      closeSync(fd);
    }
    this.syncDir(dirname(this.path));
  }

  /** Deletes every file of the staging folder except the manifest. */
  private clearStaging(): void {
    const names = this.io('cannot list', this.stagingDir, () => readdirSync(this.stagingDir));
    for (const name of names) if (name !== MANIFEST) this.removeFile(join(this.stagingDir, name));
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
  private readManifest(missingOk: boolean): Manifest {
    let text: string;
    try {
      text = readFileSync(this.manifestPath, 'utf8');
    } catch (err) {
      if (missingOk && (err as NodeJS.ErrnoException).code === 'ENOENT')
        return { version: 1, epoch: -1, prunedThrough: 0, commits: [] };
      throw new EngineError('SINK_IO', `cannot read ${this.manifestPath}: ${ioReason(err)}`, { cause: err });
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
  private writeManifest(manifest: Manifest): void {
    const tmp = `${this.manifestPath}.tmp`;
    this.io('cannot write', tmp, () => {
      const fd = openSync(tmp, 'w');
      try {
        writeFileSync(fd, `${JSON.stringify(manifest)}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    });
    this.io('cannot rename', tmp, () => renameSync(tmp, this.manifestPath));
    this.syncDir();
  }

  private pendingPath(epoch: number, id: number): string {
    return join(this.stagingDir, `${epoch}-${id}.pending`);
  }

  private removeFile(file: string): void {
    this.io('cannot delete', file, () => rmSync(file, { force: true, recursive: true }));
  }

  private syncDir(dir = this.stagingDir): void {
    this.io('cannot sync folder', dir, () => {
      const fd = openSync(dir, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    });
  }

  /** Runs `fn`, turning a file-system error into `SINK_IO` "`what` `file`: reason". */
  private io<T>(what: string, file: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof EngineError) throw err;
      throw new EngineError('SINK_IO', `${what} ${file}: ${ioReason(err)}`, { cause: err });
    }
  }
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
