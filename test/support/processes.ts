/**
 * Real processes for integration tests: the BUILT CLI (`dist/client/main.js`, run `npm run build`
 * first; `npm test` does) started as child processes on loopback, free ports, bounded polling.
 *
 * Every process started through {@link startProcess} is remembered; {@link killAll} SIGKILLs the
 * ones still alive (call it in afterAll), and a process 'exit' hook does the same as a last resort
 * so a crashed test file never leaves a JobManager or TaskManager behind.
 *
 * ```ts
 * let cluster: TestCluster;
 * beforeAll(async () => { redis = await startRedis(); cluster = await startCluster({ redisUrl: redis.url, taskmanagers: [{ id: 'tm-1', slots: 2 }] }); });
 * afterAll(async () => { await killAll(); await redis?.stop(); });
 * ```
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** Absolute path of the built CLI entry point. */
export const CLI = fileURLToPath(new URL('../../dist/client/main.js', import.meta.url));
/** Absolute path of the repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Throws a readable error when the CLI was not built. */
export function requireBuiltCli(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} does not exist: run \`npm run build\` before the integration tests`);
}

/** A TCP port that was free on 127.0.0.1 a moment ago (listen on 0, read the port, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** wall-clock ms from spawn to exit */
  ms: number;
}

/**
 * Sends `sig` to the process group of `child` (every child is started as a group leader, so this
 * also reaches what it started itself, e.g. the TaskManagers and the private redis-server of
 * `fluxo run`). Falls back to the process alone; never throws.
 */
export function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  }
}

/** Env for child processes: the test's env without inherited Fluxo settings, plus `extra`. */
function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
  for (const k of Object.keys(env)) if (k.startsWith('FLUXO_') || k === 'REDIS_URL') delete env[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * Runs `fluxo <args>` to its end and returns exit code, output and duration. SIGKILLs it (and
 * rejects) after `timeoutMs`, default 60 s.
 */
export function runCli(
  args: string[],
  opts: { env?: Record<string, string | undefined>; timeoutMs?: number; cwd?: string } = {},
): Promise<CliResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    env: childEnv(opts.env),
    cwd: opts.cwd ?? REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: a timeout can take down whatever it started too
  });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      // SIGINT first (`fluxo run` stops its TaskManagers and private Redis on it), then the whole group
      child.kill('SIGINT');
      killTimer = setTimeout(() => signalGroup(child, 'SIGKILL'), 5000);
      reject(
        new Error(`fluxo ${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`),
      );
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (killTimer) {
        clearTimeout(killTimer);
        signalGroup(child, 'SIGKILL'); // leftovers of a run that was interrupted
      }
      live.delete(child);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Runs `fluxo <args>` and returns stdout; throws with the full output unless it exits 0. */
export async function cliOk(
  args: string[],
  opts: { env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<string> {
  const r = await runCli(args, opts);
  if (r.code !== 0)
    throw new Error(`fluxo ${args.join(' ')} exited ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** A long-running child process with its output kept for assertions and failure messages. */
export class ManagedProcess {
  stdout = '';
  stderr = '';
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exitPromise: Promise<void>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = { code, signal };
        live.delete(child);
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Output so far, for failure messages. */
  describe(): string {
    const state = this.exited ? `exited ${this.exited.code ?? this.exited.signal}` : `running (pid ${this.pid})`;
    return `${this.name} ${state}\n--- stdout\n${this.stdout.slice(-4000)}\n--- stderr\n${this.stderr.slice(-4000)}`;
  }

  /** Resolves once stderr or stdout matches `re`; rejects when the process exits first or after `timeoutMs`. */
  async waitForOutput(re: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    let m: RegExpMatchArray | null = null;
    await waitFor(
      () => {
        m = this.stderr.match(re) ?? this.stdout.match(re);
        if (m) return true;
        if (this.exited) throw fatal(`${this.name} exited before printing ${re}\n${this.describe()}`);
        return false;
      },
      {
        timeoutMs,
        intervalMs: 25,
        message: () => `${this.name} did not print ${re} within ${timeoutMs} ms\n${this.describe()}`,
      },
    );
    return m as unknown as RegExpMatchArray;
  }

  /** Sends `sig` to the process (and its process group). */
  signal(sig: NodeJS.Signals): void {
    if (!this.exited) signalGroup(this.child, sig);
  }

  /** Sends `sig` (default SIGTERM), then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(sig: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<void> {
    if (this.exited) return;
    signalGroup(this.child, 'SIGCONT');
    signalGroup(this.child, sig);
    const t = setTimeout(() => signalGroup(this.child, 'SIGKILL'), graceMs);
    await this.exitPromise;
    clearTimeout(t);
  }

  /**
   * Live (not zombie) processes of this process's group: itself while it runs and whatever it
   * started (children inherit the group). Linux /proc; elsewhere a kill(-pgid, 0) probe.
   */
  groupMembers(): { pid: number; cmd: string }[] {
    if (!existsSync('/proc/self/stat')) {
      try {
        process.kill(-this.pid, 0);
        return [{ pid: -this.pid, cmd: '?' }];
      } catch {
        return [];
      }
    }
    const out: { pid: number; cmd: string }[] = [];
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // state ppid pgrp ...
        if (rest[0] !== 'Z' && Number(rest[2]) === this.pid) {
          out.push({ pid: Number(e), cmd: readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() });
        }
      } catch {
        // gone meanwhile
      }
    }
    return out;
  }

  waitForExit(): Promise<void> {
    return this.exitPromise;
  }
}

const live = new Set<ChildProcess>();
const managed = new Set<ManagedProcess>();
process.once('exit', () => {
  for (const c of live) signalGroup(c, 'SIGKILL');
  for (const p of managed) signalGroup(p.child, 'SIGKILL');
});

/** Starts `fluxo <args>` as a long-running process (stdout/stderr captured). */
export function startProcess(
  name: string,
  args: string[],
  env: Record<string, string | undefined> = {},
): ManagedProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: childEnv(env),
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  live.add(child);
  const p = new ManagedProcess(name, child);
  managed.add(p);
  return p;
}

/** Stops every process started by this module that is still running (SIGTERM, then SIGKILL). */
export async function killAll(): Promise<void> {
  await Promise.all([...managed].map((p) => p.stop('SIGTERM', 2000)));
  // whatever they started and left behind (their process groups outlive them)
  for (const p of managed) signalGroup(p.child, 'SIGKILL');
  managed.clear();
  for (const c of live) signalGroup(c, 'SIGKILL');
}

/** An error that ends a {@link waitFor} at once instead of being retried. */
export function fatal(message: string): Error {
  return Object.assign(new Error(message), { fatal: true });
}

/**
 * Polls `check` every `intervalMs` (default 50) until it returns a truthy value, which it returns.
 * After `timeoutMs` it throws `message` (plus the last value or error seen). Errors thrown by
 * `check` are retried until the deadline, except {@link fatal} ones, which end the wait at once.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  opts: { timeoutMs: number; intervalMs?: number; message: string | (() => string) },
): Promise<NonNullable<T>> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: unknown;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await check();
      lastErr = undefined;
      if (last) return last as NonNullable<T>;
    } catch (err) {
      lastErr = err;
      if ((err as { fatal?: boolean }).fatal) throw err;
    }
    if (Date.now() >= deadline) {
      const msg = typeof opts.message === 'function' ? opts.message() : opts.message;
      const detail = lastErr
        ? `last error: ${lastErr instanceof Error ? lastErr.message : String(lastErr)}`
        : `last value: ${JSON.stringify(last)}`;
      throw new Error(`${msg} (${detail})`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/** GET a JSON document; throws on a non-2xx status. */
export async function getJson<T = unknown>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const body = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${body}`);
  return JSON.parse(body) as T;
}

// -------------------------------------------------------------------------------------------------
// cluster

export interface RestTaskManager {
  taskmanagerId: string;
  controlAddress: string;
  slotsTotal: number;
  slotsUsed: number;
  lastHeartbeatMs: number;
  state: 'ALIVE' | 'LOST';
  pid: number;
}

export interface RestJob {
  job: {
    jobId: string;
    name: string;
    state: string;
    attempt: number;
    createdAtMs: number;
    endedAtMs: number;
    failure: string;
    parallelism: number;
  };
  vertices: { id: string; name: string; parallelism: number }[];
  tasks: {
    taskId: string;
    vertex: string;
    subtask: number;
    taskmanagerId: string;
    state: string;
    error?: string;
    counters?: Record<string, number>;
  }[];
  totals: Record<string, number>;
  outputs: { results: string; deadLetters: string; late: string };
}

export interface TestCluster {
  jm: ManagedProcess;
  tms: Map<string, ManagedProcess>;
  rpcPort: number;
  webPort: number;
  /** `127.0.0.1:<rpcPort>`, for `--jobmanager` */
  address: string;
  /** `http://127.0.0.1:<webPort>` */
  web: string;
  /** env the processes were started with (REDIS_URL, FLUXO_CLUSTER_ID, ...) */
  env: Record<string, string>;
  /** starts one more TaskManager; `extraEnv` adds to the cluster's TaskManager env (e.g. FLUXO_FAULTS) */
  startTaskManager(id: string, slots: number, extraEnv?: Record<string, string>): Promise<ManagedProcess>;
  taskmanagers(): Promise<RestTaskManager[]>;
  job(id: string): Promise<RestJob>;
  /** Polls /jobs/:id until the job state is `state`; throws (with the job's failure) on another terminal state. */
  waitForState(jobId: string, state: string, timeoutMs: number): Promise<RestJob>;
  /** `fluxo <args> --jobmanager <address>` */
  cli(args: string[], timeoutMs?: number): Promise<CliResult>;
  stop(): Promise<void>;
}

const TERMINAL = new Set(['FINISHED', 'FAILED', 'CANCELED']);

/**
 * Starts a JobManager process (free RPC and web ports) and one TaskManager process per entry of
 * `taskmanagers`, and waits until every TaskManager is ALIVE in /taskmanagers.
 */
export async function startCluster(o: {
  redisUrl: string;
  clusterId: string;
  taskmanagers: { id: string; slots: number }[];
  /** extra env for the JobManager only (e.g. FLUXO_HEARTBEAT_TIMEOUT_MS) */
  jmEnv?: Record<string, string>;
  /** extra env for every TaskManager (e.g. FLUXO_FAULTS, FLUXO_FAULTS_ONCE_DIR) */
  tmEnv?: Record<string, string>;
  /** extra `fluxo jobmanager` arguments (e.g. `--chaos`), after the ports and Redis */
  jmArgs?: string[];
}): Promise<TestCluster> {
  requireBuiltCli();
  const rpcPort = await freePort();
  const webPort = await freePort();
  const env = { REDIS_URL: o.redisUrl, FLUXO_CLUSTER_ID: o.clusterId };
  const jm = startProcess(
    'jobmanager',
    [
      'jobmanager',
      '--rpc-port',
      String(rpcPort),
      '--web-port',
      String(webPort),
      '--redis',
      o.redisUrl,
      ...(o.jmArgs ?? []),
    ],
    { ...env, ...o.jmEnv },
  );
  await jm.waitForOutput(/fluxo jobmanager: rpc 127\.0\.0\.1:\d+/, 20_000);
  const address = `127.0.0.1:${rpcPort}`;
  const web = `http://127.0.0.1:${webPort}`;
  const tms = new Map<string, ManagedProcess>();

  const cluster: TestCluster = {
    jm,
    tms,
    rpcPort,
    webPort,
    address,
    web,
    env,
    async startTaskManager(id, slots, extraEnv = {}) {
      const tm = startProcess(
        id,
        ['taskmanager', '--jobmanager', address, '--slots', String(slots), '--data-port', '0', '--id', id],
        { ...env, ...o.tmEnv, ...extraEnv },
      );
      tms.set(id, tm);
      await waitFor(
        async () => {
          if (tm.exited) throw fatal(`TaskManager ${id} exited before registering\n${tm.describe()}`);
          return (await cluster.taskmanagers()).some(
            (t) => t.taskmanagerId === id && t.state === 'ALIVE' && t.pid === tm.pid,
          );
        },
        {
          timeoutMs: 20_000,
          message: () => `TaskManager ${id} did not register within 20 s\n${tm.describe()}\n${jm.describe()}`,
        },
      );
      return tm;
    },
    async taskmanagers() {
      return (await getJson<{ taskmanagers: RestTaskManager[] }>(`${web}/taskmanagers`)).taskmanagers;
    },
    job(id) {
      return getJson<RestJob>(`${web}/jobs/${encodeURIComponent(id)}`);
    },
    async waitForState(jobId, state, timeoutMs) {
      let last: RestJob | undefined;
      return waitFor(
        async () => {
          last = await cluster.job(jobId);
          const s = last.job.state;
          if (s === state) return last;
          if (TERMINAL.has(s)) throw fatal(`job ${jobId} ended ${s} while waiting for ${state}: ${last.job.failure}`);
          return undefined;
        },
        {
          timeoutMs,
          message: () =>
            `job ${jobId} not ${state} within ${timeoutMs} ms: ${last ? `${last.job.state} ${last.job.failure}` : 'no status'}`,
        },
      );
    },
    cli(args, timeoutMs = 30_000) {
      return runCli([...args, '--jobmanager', address], { env, timeoutMs });
    },
    async stop() {
      await Promise.all([...tms.values()].map((t) => t.stop()));
      await jm.stop();
    },
  };
  // TaskManagers one after the other: their ids must be distinct anyway, and 2 cores are busy enough.
  for (const t of o.taskmanagers) await cluster.startTaskManager(t.id, t.slots);
  return cluster;
}
