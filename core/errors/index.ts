/**
 * Typed engine errors. Branch on `code`, never on message text or `instanceof`: class identity
 * does not survive gRPC, the code does (see core/rpc/errors.ts).
 */
export type ErrorCode =
  | 'SPEC_INVALID'
  | 'SPEC_NOT_FOUND'
  | 'SOURCE_IO'
  | 'SINK_IO'
  | 'EXPR_INVALID'
  | 'EXPR_EVAL'
  | 'JOB_NOT_FOUND'
  /** no completed savepoint or checkpoint with that id */
  | 'CHECKPOINT_NOT_FOUND'
  /** a savepoint's state does not fit the job submitted from it */
  | 'SAVEPOINT_INCOMPATIBLE'
  | 'JOB_STATE'
  | 'NO_RESOURCES'
  | 'TASKMANAGER_LOST'
  /** a data stream between two TaskManagers broke: its frames are lost, the attempt fails over */
  | 'DATA_CONNECTION_LOST'
  | 'TASK_FAILED'
  | 'REDIS_UNAVAILABLE'
  | 'JOBMANAGER_UNAVAILABLE'
  | 'PROTOCOL'
  /** a call without the cluster token, or with a wrong one (gRPC UNAUTHENTICATED) */
  | 'UNAUTHENTICATED'
  /** a setting that cannot be used: a TLS or token file missing, unreadable or not PEM, a missing companion option */
  | 'CONFIG_INVALID'
  | 'INTERNAL';

export interface EngineErrorOptions {
  retryable?: boolean;
  cause?: unknown;
  /** related ids (jobId, taskId, ...) for logs */
  ids?: Record<string, string | number>;
  /** for SPEC_INVALID: every problem, `path: message` */
  problems?: string[];
}

export class EngineError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly ids: Record<string, string | number>;
  readonly problems: string[];

  constructor(code: ErrorCode, message: string, opts: EngineErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'EngineError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.ids = opts.ids ?? {};
    this.problems = opts.problems ?? [];
  }
}

/** True when `e` carries an engine error code (works across module copies and after gRPC). */
export function isEngineError(e: unknown): e is EngineError {
  return (
    typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' && e instanceof Error
  );
}

/**
 * `text` made safe to print on a terminal: control characters (C0, DEL, C1) and U+FFFD become
 * `?`, and it is cut to `max` characters (default 200) with an ellipsis. For messages that quote
 * user input (a binary file given as a spec, a garbled line).
 */
export function printable(text: string, max = 200): string {
  let out = '';
  const n = Math.min(text.length, max);
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    out += c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0xfffd ? '?' : text[i];
  }
  return text.length > max ? `${out}…` : out;
}

/** A short reason for a file-system error, without the path Node repeats in its message. */
export function ioReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case 'ENOENT':
      return 'no such file or directory (ENOENT)';
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${err.code})`;
    case 'EISDIR':
      return 'is a directory (EISDIR)';
    case 'ENOSPC':
      return 'no space left on device (ENOSPC)';
    default:
      return err instanceof Error ? err.message : String(e);
  }
}
