/**
 * Local Redis for development, the demo (`fluxo run`) and tests: probe a Redis URL, and start a
 * private `redis-server` on a free loopback port when nothing answers.
 *
 * A private server never persists anything (`--save "" --appendonly no`); its working directory
 * is a fresh temp dir holding only its log file (`redis.log`), removed by `stop()`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { EngineError } from '../errors/index.js';

/** The URL used when none is configured. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** Outcome of one probe: `answered` is true when a Redis replied, even with an error (e.g. NOAUTH). */
export type RedisProbe = { ok: true } | { ok: false; answered: boolean; reason: string };

/**
 * Sends one PING to `url`: one connection attempt, no retries, no offline queue.
 * @param timeoutMs whole probe budget in ms (connect + PING), default 1000.
 * Never throws.
 */
export async function probeRedis(url: string, timeoutMs = 1000): Promise<RedisProbe> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    reconnectOnError: null,
    enableOfflineQueue: false,
    enableReadyCheck: false,
  });
  let firstError: Error | undefined;
  client.on('error', (err: Error) => {
    // keep the socket-level cause ("connect ECONNREFUSED ..."), which beats "Connection is closed."
    firstError ??= err;
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    const pong = await Promise.race([client.connect().then(() => client.ping()), timeout]);
    return pong === 'PONG' ? { ok: true } : { ok: false, answered: true, reason: `PING answered ${String(pong)}` };
  } catch (err) {
    const answered = err instanceof Error && err.name === 'ReplyError';
    const cause = answered ? err : (firstError ?? err);
    return { ok: false, answered, reason: cause instanceof Error ? cause.message : String(cause) };
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

/** True when a Redis at `url` answers PING within `timeoutMs` (default 1000 ms). Never throws. */
export async function pingRedis(url: string, timeoutMs = 1000): Promise<boolean> {
  return (await probeRedis(url, timeoutMs)).ok;
}

/** True when `command` (default `redis-server`) can be spawned, i.e. is on PATH. Never throws. */
export async function redisServerOnPath(command = 'redis-server'): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(command, ['--version'], { stdio: 'ignore' });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
}

/** A private redis-server child process. */
export interface PrivateRedis {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  pid: number;
  /** temp working directory (holds `redis.log`) */
  dir: string;
  /** SIGTERM (SIGKILL after 5 s), wait for exit, remove `dir`. Idempotent. */
  stop(): Promise<void>;
}

export interface PrivateRedisOptions {
  /** binary to run; default `redis-server` from PATH */
  command?: string;
  /**
   * Detach the server from this process (own process group, unref'd), so it outlives a short-lived
   * caller such as scripts/ensure-redis.mjs. A non-detached server is killed when this process exits.
   * Default false.
   */
  detached?: boolean;
  /** ms to wait for the first PONG, default 10000 */
  startTimeoutMs?: number;
}

/**
 * Starts `redis-server` bound to 127.0.0.1 on a free port and waits until it answers PING.
 * Retries on another port if the chosen one was taken in the meantime.
 * @throws EngineError `REDIS_UNAVAILABLE` if the binary is missing, exits, or does not answer in time.
 */
export async function startPrivateRedis(opts: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const command = opts.command ?? 'redis-server';
  const startTimeoutMs = opts.startTimeoutMs ?? 10_000;
  let lastReason = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), 'fluxo-redis-'));
    const port = await freePort();
    const args = [
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--logfile',
      join(dir, 'redis.log'),
      '--daemonize',
      'no',
    ];
    const child = spawn(command, args, { stdio: 'ignore', detached: opts.detached ?? false });
    const exited = waitExit(child);
    const url = `redis://127.0.0.1:${port}`;
    const outcome = await waitUntilReady(url, exited, startTimeoutMs);
    if (outcome === 'ready' && child.pid !== undefined) {
      return privateRedisHandle(child, url, port, dir, opts.detached ?? false);
    }
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    const log = await readFile(join(dir, 'redis.log'), 'utf8').catch(() => '');
    await rm(dir, { recursive: true, force: true });
    if (typeof outcome === 'object' && outcome.spawnError) {
      const missing = (outcome.spawnError as NodeJS.ErrnoException).code === 'ENOENT';
      throw new EngineError(
        'REDIS_UNAVAILABLE',
        missing
          ? `${command} is not on PATH; install it (Debian/Ubuntu: apt-get install redis-server)`
          : `cannot start ${command}: ${outcome.spawnError.message}`,
        { cause: outcome.spawnError },
      );
    }
    lastReason =
      outcome === 'timeout'
        ? `did not answer PING within ${startTimeoutMs} ms`
        : `exited before answering PING${tail(log) ? `: ${tail(log)}` : ''}`;
    if (!/address already in use/i.test(log)) break;
  }
  throw new EngineError('REDIS_UNAVAILABLE', `private ${command} on 127.0.0.1 ${lastReason}`);
}

/** Result of {@link ensureRedis}. */
export interface EnsuredRedis {
  url: string;
  /** true when a private redis-server was started (and `stop()` ends it) */
  started: boolean;
  /** pid of the private redis-server, when `started` */
  pid?: number;
  /** stops the private server if one was started; otherwise does nothing */
  stop(): Promise<void>;
}

/**
 * Returns a Redis to use: `url` itself if it answers PING within 1 s; otherwise, only when `url`
 * points at this machine (127.0.0.1, localhost, ::1) and `redis-server` is on PATH, a private
 * server on a free port, announced through `log`
 * ("no Redis at redis://127.0.0.1:6379; started a private redis-server on 127.0.0.1:NNNNN").
 * A remote URL that does not answer is an error, never silently replaced.
 * @param opts.detached see {@link PrivateRedisOptions.detached}; default false
 * @throws EngineError `REDIS_UNAVAILABLE` with a message saying how to get Redis.
 */
export async function ensureRedis(
  url: string,
  log: (msg: string) => void,
  opts: { detached?: boolean } = {},
): Promise<EnsuredRedis> {
  const shown = redactUrl(url);
  const probe = await probeRedis(url, 1000);
  if (probe.ok) return { url, started: false, stop: async () => {} };
  if (probe.answered) {
    throw new EngineError('REDIS_UNAVAILABLE', `Redis at ${shown} answered but refused PING: ${probe.reason}`);
  }
  const howTo =
    'Start one (Debian/Ubuntu: apt-get install redis-server), or set REDIS_URL to a reachable Redis, e.g. redis://host:6379';
  if (!isLoopback(url)) {
    throw new EngineError('REDIS_UNAVAILABLE', `no Redis at ${shown} (${probe.reason}). ${howTo}`, { retryable: true });
  }
  if (!(await redisServerOnPath())) {
    throw new EngineError('REDIS_UNAVAILABLE', `no Redis at ${shown}, and redis-server is not on PATH. ${howTo}`);
  }
  const priv = await startPrivateRedis({ detached: opts.detached ?? false });
  log(`no Redis at ${shown}; started a private redis-server on 127.0.0.1:${priv.port}`);
  return { url: priv.url, started: true, pid: priv.pid, stop: () => priv.stop() };
}

/** `url` with any password replaced by `***`, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

function isLoopback(url: string): boolean {
  try {
    return LOOPBACK_HOSTS.has(new URL(url).hostname);
  } catch {
    return false;
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

type ExitInfo = { spawnError?: Error };

function waitExit(child: ChildProcess): Promise<ExitInfo> {
  return new Promise((resolve) => {
    child.once('error', (err) => resolve({ spawnError: err }));
    child.once('exit', () => resolve({}));
  });
}

async function waitUntilReady(
  url: string,
  exited: Promise<ExitInfo>,
  timeoutMs: number,
): Promise<'ready' | 'timeout' | ExitInfo> {
  let done: ExitInfo | undefined;
  void exited.then((info) => {
    done = info;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    if (done) return done;
    if (await pingRedis(url, 500)) return 'ready';
  }
  return done ?? 'timeout';
}

function privateRedisHandle(
  child: ChildProcess,
  url: string,
  port: number,
  dir: string,
  detached: boolean,
): PrivateRedis {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  // a non-detached server must not outlive us, even if the caller forgets stop()
  const killOnExit = () => child.kill('SIGKILL');
  if (detached) child.unref();
  else process.once('exit', killOnExit);
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    pid: child.pid as number,
    dir,
    stop() {
      stopping ??= (async () => {
        process.off('exit', killOnExit);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

function tail(log: string): string {
  return log.trim().split('\n').slice(-2).join(' | ').trim();
}
