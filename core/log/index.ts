import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Creates a process's root logger: pino JSON lines on stderr (stdout stays free for data, e.g.
 * the stdout sink). The level comes from `LOG_LEVEL` (default `info`). Create it once per
 * process or worker thread and hand `child({ jobId })`, `child({ taskId })` down.
 */
export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  const level = process.env.LOG_LEVEL ?? 'info';
  return pino({ name, level, base: { pid: process.pid, ...bindings } }, pino.destination({ fd: 2, sync: true }));
}
