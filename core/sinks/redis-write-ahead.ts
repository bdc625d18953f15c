/**
 * Two-phase commit of an exactly-once redis sink, after Flink's `GenericWriteAheadSink`: the rows
 * of each checkpoint interval are kept in memory, stored with the checkpoint at the barrier
 * (the write-ahead log is the checkpoint store itself), and written to Redis only when the
 * checkpoint completed, by ONE Lua script per commit that first checks a fence. After any failure
 * and recovery the hashes equal those of the failure-free run, and no attempt of the job that was
 * superseded (a zombie task) writes anything once the newer attempt has begun.
 *
 * Keys (`P` is the sink's `keyPrefix`):
 * ```
 * P:<key>:<windowStart>   data: one hash per key and window, HSET of every non-null field (as the direct sink)
 * P:<key>                 data of a running aggregate (upsert key `key` alone): one hash per key
 * P:fluxo-fence           fence: hash { job: <job id>, epoch: <highest epoch begun or committed> }
 * ```
 * The fence cannot collide with a window result's data key: those end in `:<windowStart>`, a
 * decimal integer, and `fluxo-fence` is not one. A running aggregate's key `fluxo-fence` would
 * collide: the sink refuses that row (`SINK_IO`, core/runtime/sinks.ts). It does match
 * `SCAN MATCH P:*`, so deleting a sink's keys by prefix deletes its fence too (harmless: the next
 * script recreates it). It is never deleted by the engine: one small hash per key prefix.
 *
 * Fencing rule, checked by the script before it writes anything (job J, epoch e = the attempt's
 * fencing epoch from `transactionalEpoch` in core/runtime/chain.ts):
 * - fence owned by J: refuse when its epoch is above e (we are a zombie of an earlier attempt),
 *   else raise it to e and write;
 * - fence owned by another job: refuse, unless this is the `claim` of the first attempt's begin
 *   (a new job, or a job submitted from a savepoint of the other one, takes the prefix over);
 *   then every task of the other job is a zombie for this prefix;
 * - no fence: create it and write.
 * The check and the writes run in one Lua script, which Redis executes atomically: once a newer
 * attempt's `begin` ran, no later script of an older attempt writes a single field.
 *
 * Transactions. A transaction is the rows between two barriers, named by the id of the checkpoint
 * whose barrier ended it; `END_OF_INPUT_TXN` names the rows after the last barrier of a bounded
 * input. The sink keeps every transaction not yet confirmed written (`txns`, ascending ids); they
 * are always a suffix of the job's transactions (a commit writes all ids ≤ its checkpoint, in order).
 *
 * Order of operations, and what a crash between any two steps leaves:
 *
 * `add(row)`: appends to the open transaction, in memory. Crash: lost, and rightly so: the
 * restored checkpoint m predates these rows, and the replay from m emits them again.
 *
 * `preCommit(c)`: 1. seal the open rows as transaction c; 2. return the state
 * `{ epoch, checkpointId: c, txns }` (every not-yet-confirmed transaction, including c and any whose
 * script is in flight), which the task stores with checkpoint c. Nothing is written to Redis.
 * Crash before c completes: recovery restores some m < c, whose state holds the transactions ≤ m;
 * the rows after m are replayed.
 *
 * `commit(c)`: 1. (async, serialized with every other script of this sink) one script: fence
 * check, then HSET of every row of every transaction ≤ c not yet sent, in id and row order;
 * 2. when Redis confirms, drop those transactions from memory. Crash or lost completion notice
 * before 1: the transactions stay in the state of every later checkpoint (and are in the state of
 * c itself), so the next commit, or the `begin` of the restore, writes them. Crash between 1 and 2:
 * they are written and still listed in later states, so they are written again with the same
 * values: HSET of a field to the value it has changes nothing (idempotent).
 *
 * `begin(state of m)` (a restore): 1. one script: fence check with claim for a job's first
 * attempt, fence raised to our epoch, HSET of the state's transactions (all ≤ m: checkpoint m is
 * complete, but its notice, or an earlier one, may have been lost or the commit not confirmed);
 * from here on, older attempts are fenced; 2. drop them from memory when confirmed. Crash before
 * 1: the next restore does the same. Crash after 1: the next restore writes them again, same
 * values. Because not-yet-written transactions are a suffix and the script writes them in order,
 * every key ends with the value of the latest transaction ≤ m that wrote it, as in the failure-free
 * run; later values come from the replay. `begin(undefined)` (fresh job, or a restart before any
 * checkpoint completed) runs the script with no rows: the fence only.
 *
 * `finish()` (end of a bounded input): seals the open rows as `END_OF_INPUT_TXN` and writes every
 * remaining transaction in one script, like the file sink's `commitAll`: this output becomes
 * visible without a checkpoint. If another task then fails and the job restores an earlier
 * checkpoint m, its `begin` writes m's pending transactions again: a window updated after m
 * (allowed lateness) shows its older value until the replay writes the newer one again.
 *
 * Errors. Every Redis failure is kept and thrown at the sink's next call (`add`, `check`,
 * `pending`, `preCommit`, `commit`, `finish`), so the task fails at its next record, watermark,
 * barrier or end of input: `SINK_IO` "fenced" (not retryable) when the script refuses;
 * `REDIS_UNAVAILABLE` (retryable) when Redis cannot be reached (connection refused or lost,
 * retries exhausted, command timeout: the client is created with one, so nothing waits forever);
 * `SINK_IO` for any other Redis error (e.g. `WRONGTYPE` when a data key is not a hash). Messages
 * name the sink's key prefix and output.
 *
 * Limits. The fence lives in the sink's Redis: if that Redis loses it (restart without
 * persistence, FLUSHALL, keys deleted by hand), the next script recreates it with its caller's job
 * and epoch, so a zombie running at that moment could take the prefix (the data would be gone
 * anyway). One script writes a whole transaction and blocks Redis meanwhile (about a microsecond
 * per field): keep checkpoint intervals short enough that an interval's rows number in the tens
 * of thousands. Uncommitted rows are held in memory and in every checkpoint's state until their
 * checkpoint's commit is confirmed. Two unrelated jobs writing one key prefix at the same time
 * fence each other (the later owns the prefix, the earlier fails with `SINK_IO`).
 */

import type { Redis } from 'ioredis';
import { ByteReader, ByteWriter } from '../codec/bytes.js';
import { EngineError } from '../errors/index.js';
import { luaCommand } from '../redis/script.js';
import type { Row } from '../spec/types.js';

/** Last segment of the fence key: not a decimal integer, so never a `windowStart` of a data key. */
export const FENCE_SUFFIX = 'fluxo-fence';

/** The fence hash of the redis sink with key prefix `keyPrefix`: `${keyPrefix}:fluxo-fence`. */
export function redisSinkFenceKey(keyPrefix: string): string {
  return `${keyPrefix}:${FENCE_SUFFIX}`;
}

/** The transaction id of the rows after the last barrier of a bounded input (no checkpoint has it). */
export const END_OF_INPUT_TXN = Number.MAX_SAFE_INTEGER;

/** The state format version written by `encodeRedisSinkState`. */
const STATE_VERSION = 1;

/** Default ms a Redis command may take before it fails with `REDIS_UNAVAILABLE`. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

/**
 * The rows of one checkpoint interval, columnar: row r is HSET `keys[r]` with field `fields[i]` =
 * `cells[r * fields.length + i]` for every non-null cell. Immutable once sealed.
 */
export interface RedisTxn {
  /** the checkpoint whose barrier ended the interval, or `END_OF_INPUT_TXN` */
  id: number;
  fields: readonly string[];
  keys: string[];
  cells: (string | null)[];
}

/** The sink's part of checkpoint `checkpointId`. */
export interface RedisSinkState {
  /** the attempt that took the checkpoint (diagnostics; the restoring attempt writes with its own) */
  epoch: number;
  checkpointId: number;
  /** transactions not yet confirmed written at the barrier, ascending ids, all ≤ `checkpointId` */
  txns: RedisTxn[];
}

/**
 * Binary form of a sink state (core/codec ByteWriter, little-endian varints, strings as
 * `varint(len + 1)` + UTF-8, null as 0):
 * `u8 version=1, varint epoch, varint checkpointId, varint txnCount, per txn: varint id,
 * varint fieldCount, fieldCount × string, varint rowCount, per row: string key, fieldCount × string|null`.
 * No per-row objects or field names: a row costs its key and values plus one byte each.
 */
export function encodeRedisSinkState(s: RedisSinkState): Uint8Array {
  let cells = 0;
  for (const t of s.txns) cells += t.cells.length + t.keys.length;
  const w = new ByteWriter(64 + cells * 16);
  w.u8(STATE_VERSION);
  w.varint(s.epoch);
  w.varint(s.checkpointId);
  w.varint(s.txns.length);
  for (const t of s.txns) {
    w.varint(t.id);
    w.varint(t.fields.length);
    for (const f of t.fields) w.string(f);
    w.varint(t.keys.length);
    const nf = t.fields.length;
    for (let r = 0; r < t.keys.length; r++) {
      w.string(t.keys[r]);
      for (let i = r * nf; i < (r + 1) * nf; i++) w.string(t.cells[i]);
    }
  }
  return w.toBytes();
}

/**
 * Reads what `encodeRedisSinkState` wrote.
 * @throws EngineError `PROTOCOL` when the bytes are truncated, of another version, have trailing
 *   bytes, or the transactions are not ascending ids ≤ the checkpoint id
 */
export function decodeRedisSinkState(bytes: Uint8Array): RedisSinkState {
  const bad = (why: string) => new EngineError('PROTOCOL', `invalid redis sink state: ${why}`);
  const r = new ByteReader(bytes);
  const version = r.u8();
  if (version !== STATE_VERSION) throw bad(`version ${version}, expected ${STATE_VERSION}`);
  const epoch = r.varint();
  const checkpointId = r.varint();
  const n = r.varint();
  const txns: RedisTxn[] = [];
  let prev = 0;
  for (let k = 0; k < n; k++) {
    const id = r.varint();
    if (id <= prev || id > checkpointId) throw bad(`transaction ${id} after ${prev} in checkpoint ${checkpointId}`);
    prev = id;
    const nf = r.varint();
    const fields: string[] = [];
    for (let i = 0; i < nf; i++) {
      const f = r.string();
      if (f === null) throw bad('null field name');
      fields.push(f);
    }
    const rows = r.varint();
    const keys: string[] = [];
    const cells: (string | null)[] = [];
    for (let j = 0; j < rows; j++) {
      const key = r.string();
      if (key === null) throw bad('null key');
      keys.push(key);
      for (let i = 0; i < nf; i++) cells.push(r.string());
    }
    txns.push({ id, fields, keys, cells });
  }
  if (r.remaining !== 0) throw bad(`${r.remaining} trailing bytes`);
  return { epoch, checkpointId, txns };
}

/**
 * The apply script (run with EVALSHA; ioredis falls back to EVAL when Redis lacks it).
 * ```
 * KEYS[1]       the fence hash P:fluxo-fence
 * KEYS[2..n+1]  the data hash of each of the n rows, in write order
 * ARGV[1]       job id
 * ARGV[2]       epoch (decimal integer)
 * ARGV[3]       '1' to claim the prefix from another job (first attempt's begin), else '0'
 * ARGV[4..]     per row: p (number of field/value pairs), then the p pairs
 * returns       {1, rows written}
 *               {-1, owner job, fence epoch}  fenced: the fence's epoch of our job is newer; nothing written
 *               {-2, owner job, fence epoch}  fenced: another job owns the prefix; nothing written
 * ```
 */
export const APPLY_SCRIPT = `
local owner = redis.call('HGET', KEYS[1], 'job')
local cur = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '-1')
local epoch = tonumber(ARGV[2])
if owner == ARGV[1] then
  if cur > epoch then return {-1, owner, cur} end
elseif owner and ARGV[3] ~= '1' then
  return {-2, owner, cur}
end
if owner ~= ARGV[1] or cur ~= epoch then
  redis.call('HSET', KEYS[1], 'job', ARGV[1], 'epoch', ARGV[2])
end
local a = 4
for i = 2, #KEYS do
  local p = tonumber(ARGV[a])
  if p > 0 then redis.call('HSET', KEYS[i], unpack(ARGV, a + 1, a + 2 * p)) end
  a = a + 1 + 2 * p
end
return {1, #KEYS - 1}
`;

const COMMAND = 'fluxoRedisSinkApply';

type ApplyCommand = (numKeys: number, keys: string[], argv: string[]) => Promise<[number, string | number, number?]>;

export interface RedisWriteAheadOptions {
  /** the sink's `keyPrefix` (data keys `${keyPrefix}:${key}:${windowStart}`) */
  keyPrefix: string;
  /** names the sink in errors, e.g. `main output` */
  label: string;
  /** the job's id: the fence's owner */
  jobId: string;
  /** this attempt's fencing epoch (integer ≥ 0) */
  epoch: number;
  /** true for the first attempt of a job: its `begin` may take the prefix over from another job */
  claim: boolean;
  /** the row fields written, in order (the sink's schema) */
  fields: readonly string[];
}

/**
 * The write-ahead log and commit logic of a transactional redis sink (module comment). Owns no
 * connection: the sink passes its ioredis client (created with `commandTimeout`, see
 * `DEFAULT_COMMAND_TIMEOUT_MS`) and closes it. Redis calls run one at a time, in call order.
 */
export class RedisWriteAhead {
  readonly fenceKey: string;
  private readonly apply: ApplyCommand;
  /** not yet confirmed written, ascending ids */
  private txns: RedisTxn[] = [];
  private openKeys: string[] = [];
  private openCells: (string | null)[] = [];
  /** the last sealed (or restored) checkpoint id */
  private lastId = 0;
  /** transactions with ids ≤ this were handed to a script */
  private sentThrough = 0;
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;
  private failure: EngineError | null = null;
  private begun = false;
  private finished = false;

  constructor(
    client: Redis,
    private readonly opts: RedisWriteAheadOptions,
  ) {
    if (!Number.isSafeInteger(opts.epoch) || opts.epoch < 0)
      throw new EngineError('INTERNAL', `redis sink epoch must be an integer ≥ 0, got ${opts.epoch}`);
    this.fenceKey = redisSinkFenceKey(opts.keyPrefix);
    this.apply = luaCommand<ApplyCommand>(client, COMMAND, APPLY_SCRIPT);
  }

  /** Rows in the open transaction (since the last barrier). */
  get openRows(): number {
    return this.openKeys.length;
  }

  /** Transactions not yet confirmed written, ascending ids (for tests and diagnostics; do not mutate). */
  get uncommitted(): readonly RedisTxn[] {
    return this.txns;
  }

  /**
   * Appends a row to the open transaction (memory only): HSET `key` with every field of `row`
   * that is neither null nor undefined, as `String(value)`.
   * @throws EngineError a failure of an earlier Redis call; `INTERNAL` after `finish`
   */
  add(key: string, row: Row): void {
    this.check();
    if (this.finished) throw new EngineError('INTERNAL', `${this.name()}: row after end of input`);
    this.openKeys.push(key);
    for (const f of this.opts.fields) {
      const v = row[f];
      this.openCells.push(v === null || v === undefined ? null : String(v));
    }
  }

  /**
   * Before the task starts: fences older attempts and, on a restore (`state` = the sink's part of
   * checkpoint m), writes the state's transactions (module comment, `begin`). Asynchronous: a
   * failure is thrown by the next call. No-op when already begun.
   * @throws EngineError `PROTOCOL` when `state` cannot be decoded
   */
  begin(state?: Uint8Array): void {
    if (this.begun) return;
    this.begun = true;
    if (state !== undefined) {
      const s = decodeRedisSinkState(state);
      this.txns = s.txns;
      this.lastId = s.checkpointId;
    }
    this.send(this.txns.slice(), this.opts.claim, state === undefined ? 'open' : 'restore');
    this.sentThrough = this.lastId;
  }

  /**
   * At the barrier of checkpoint `id`: seals the open rows as transaction `id` and returns the
   * sink's state for the checkpoint (`encodeRedisSinkState`; a fresh buffer). Writes nothing.
   * @throws EngineError a failure of an earlier Redis call; `INTERNAL` when `id` is not above the
   *   previous pre-committed (or restored) id, or after `finish`
   */
  preCommit(id: number): Uint8Array {
    this.check();
    if (this.finished || id <= this.lastId || id >= END_OF_INPUT_TXN)
      throw new EngineError('INTERNAL', `${this.name()}: pre-commit of checkpoint ${id} after ${this.lastId}`);
    this.seal(id);
    return encodeRedisSinkState({ epoch: this.opts.epoch, checkpointId: id, txns: this.txns });
  }

  /**
   * Checkpoint `id` completed: writes every transaction ≤ `id` not yet sent, with one script
   * (asynchronous; confirmed transactions are then dropped). Idempotent: nothing to send, nothing sent.
   * @throws EngineError a failure of an earlier Redis call
   */
  commit(id: number): void {
    this.check();
    if (id <= this.sentThrough) return;
    const todo = this.txns.filter((t) => t.id > this.sentThrough && t.id <= id);
    this.sentThrough = Math.max(this.sentThrough, Math.min(id, this.lastId));
    if (todo.length > 0) this.send(todo, false, `commit checkpoint ${id}`);
  }

  /**
   * End of a bounded input: seals the open rows as `END_OF_INPUT_TXN` and writes every remaining
   * transaction with one script, then waits for every Redis call of this sink.
   * @throws EngineError `SINK_IO` / `REDIS_UNAVAILABLE` when any Redis call of the sink failed
   */
  async finish(): Promise<void> {
    this.check();
    if (!this.finished) {
      this.finished = true;
      this.seal(END_OF_INPUT_TXN);
      const todo = this.txns.filter((t) => t.id > this.sentThrough);
      this.sentThrough = END_OF_INPUT_TXN;
      if (todo.length > 0) this.send(todo, false, 'write the end of input');
    }
    await this.tail;
    this.check();
  }

  /**
   * Backpressure: the Redis calls to wait for when more than one is queued (Redis is slower than
   * the checkpoints), else null.
   * @throws EngineError a failure of an earlier Redis call
   */
  pending(): Promise<void> | null {
    this.check();
    return this.queued > 1 ? this.tail : null;
  }

  /** Resolves when every Redis call issued so far has ended (never rejects; see `check`). */
  settled(): Promise<void> {
    return this.tail;
  }

  /** @throws EngineError the first failure of a Redis call of this sink, if any */
  check(): void {
    if (this.failure) throw this.failure;
  }

  private name(): string {
    return `redis sink ${this.opts.keyPrefix} (${this.opts.label})`;
  }

  private seal(id: number): void {
    if (this.openKeys.length > 0)
      this.txns.push({ id, fields: this.opts.fields, keys: this.openKeys, cells: this.openCells });
    this.openKeys = [];
    this.openCells = [];
    this.lastId = id;
  }

  /** Queues one apply script for `txns` (ascending); drops them from `txns` when Redis confirms. */
  private send(txns: RedisTxn[], claim: boolean, what: string): void {
    this.queued++;
    this.tail = this.tail.then(async () => {
      try {
        if (this.failure) return;
        const { keys, argv } = this.scriptArgs(txns, claim);
        const res = await this.apply(keys.length, keys, argv);
        if (res[0] < 0) {
          const [code, owner, fenceEpoch] = res;
          const why =
            code === -1
              ? `epoch ${this.opts.epoch} < epoch ${fenceEpoch} of a newer attempt of job ${owner}`
              : `job ${owner} (epoch ${fenceEpoch}) owns the prefix now, not job ${this.opts.jobId}`;
          this.failure ??= new EngineError(
            'SINK_IO',
            `${this.name()}: cannot ${what}: fenced: ${why} in ${this.fenceKey}`,
            {
              ids: { jobId: this.opts.jobId, epoch: this.opts.epoch },
            },
          );
          return;
        }
        const done = new Set(txns);
        this.txns = this.txns.filter((t) => !done.has(t));
      } catch (err) {
        this.failure ??= redisSinkError(this.name(), what, err);
      } finally {
        this.queued--;
      }
    });
  }

  private scriptArgs(txns: RedisTxn[], claim: boolean): { keys: string[]; argv: string[] } {
    const keys = [this.fenceKey];
    const argv = [this.opts.jobId, String(this.opts.epoch), claim ? '1' : '0'];
    for (const t of txns) {
      const nf = t.fields.length;
      for (let r = 0; r < t.keys.length; r++) {
        keys.push(t.keys[r]);
        const at = argv.length;
        argv.push('0');
        let pairs = 0;
        for (let i = 0; i < nf; i++) {
          const v = t.cells[r * nf + i];
          if (v === null) continue;
          argv.push(t.fields[i], v);
          pairs++;
        }
        argv[at] = String(pairs);
      }
    }
    return { keys, argv };
  }
}

/**
 * A Redis client error as an EngineError naming the sink: `REDIS_UNAVAILABLE` (retryable) when
 * Redis cannot be reached or does not answer in time, else `SINK_IO`. EngineErrors pass through.
 */
export function redisSinkError(sink: string, what: string, err: unknown): EngineError {
  if (err instanceof EngineError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  const unavailable =
    e.name === 'MaxRetriesPerRequestError' ||
    /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|Connection is closed|Command timed out|Stream isn't writeable|LOADING/i.test(
      e.message,
    );
  return new EngineError(unavailable ? 'REDIS_UNAVAILABLE' : 'SINK_IO', `${sink}: cannot ${what}: ${e.message}`, {
    cause: err,
    retryable: unavailable,
  });
}
