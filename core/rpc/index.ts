import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { EngineError, type ErrorCode } from '../errors/index.js';

export * from './auth.js';
export * from './security.js';
export * from './tls.js';
export type * from './types.js';
export { grpc };

/** Finds proto/fluxo.proto from this module, whether it runs from source or from dist/. */
function protoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'proto', 'fluxo.proto');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new EngineError('INTERNAL', 'proto/fluxo.proto not found next to the installed package');
}

let cached: grpc.GrpcObject | undefined;

/** The loaded `fluxo.v1` package (service constructors and definitions). Field names are camelCase; uint64 are JS numbers. */
export function fluxoProto(): Record<string, grpc.ServiceClientConstructor> {
  if (!cached) {
    const def = protoLoader.loadSync(protoPath(), {
      keepCase: false,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    cached = grpc.loadPackageDefinition(def);
  }
  const fluxo = cached.fluxo as grpc.GrpcObject;
  return fluxo.v1 as unknown as Record<string, grpc.ServiceClientConstructor>;
}

/**
 * Options of every channel and server (long-lived streams, big frames for data batches).
 *
 * Keepalive: each side pings every 10 s on a connection (a client also without open calls) and
 * closes it when no answer comes within 5 s, failing its calls with UNAVAILABLE: across a silent
 * partition a peer is found gone within 5–15 s, where TCP alone retransmits for ~15 min. grpc-js
 * servers (1.14) answer every ping and enforce no minimum ping interval (they never send GOAWAY
 * `too_many_pings`), so our clients' 10 s pings are accepted by our servers; a C-core or Go server,
 * or a proxy enforcing such a minimum (their default: 5 min), must permit 10 s.
 *
 * Reconnects: a broken channel connects again with gRPC's connection backoff (1 s, ×1.6, ±20 %),
 * capped at 5 s instead of grpc-js's 120 s, so a peer back from a long partition is reached again
 * within seconds.
 */
export const channelOptions: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.initial_reconnect_backoff_ms': 1_000,
  'grpc.max_reconnect_backoff_ms': 5_000,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
};

const codeToStatus: Partial<Record<ErrorCode, grpc.status>> = {
  SPEC_INVALID: grpc.status.INVALID_ARGUMENT,
  SPEC_NOT_FOUND: grpc.status.NOT_FOUND,
  EXPR_INVALID: grpc.status.INVALID_ARGUMENT,
  JOB_NOT_FOUND: grpc.status.NOT_FOUND,
  CHECKPOINT_NOT_FOUND: grpc.status.NOT_FOUND,
  SAVEPOINT_INCOMPATIBLE: grpc.status.FAILED_PRECONDITION,
  JOB_STATE: grpc.status.FAILED_PRECONDITION,
  NO_RESOURCES: grpc.status.RESOURCE_EXHAUSTED,
  REDIS_UNAVAILABLE: grpc.status.UNAVAILABLE,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  CONFIG_INVALID: grpc.status.INVALID_ARGUMENT,
};

/** Converts any error into a gRPC ServiceError carrying the engine code and problems in metadata. */
export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  const code: ErrorCode = err instanceof EngineError ? err.code : 'INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  const md = new grpc.Metadata();
  md.set('fluxo-code', code);
  if (err instanceof EngineError && err.problems.length > 0) md.set('fluxo-problems', JSON.stringify(err.problems));
  return { code: codeToStatus[code] ?? grpc.status.UNKNOWN, details: message, metadata: md };
}

/** Converts a gRPC error back into an EngineError (code from metadata, or from the gRPC status). */
export function fromServiceError(err: grpc.ServiceError, target: string): EngineError {
  const code = err.metadata?.get('fluxo-code')?.[0];
  if (typeof code === 'string') {
    const rawProblems = err.metadata.get('fluxo-problems')?.[0];
    const problems = typeof rawProblems === 'string' ? (JSON.parse(rawProblems) as string[]) : [];
    // the ServiceError stays the cause: its gRPC status tells e.g. a refused cluster token (isAuthRefusal)
    return new EngineError(code as ErrorCode, err.details, { problems, cause: err });
  }
  if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
    const why = (err.details || 'unavailable')
      .replace(/\s*Resolution note:.*$/s, '')
      .replace(/^No connection established\. Last error: (Error: )?/, '');
    return new EngineError('JOBMANAGER_UNAVAILABLE', `cannot reach ${target}: ${why}`, {
      retryable: true,
      cause: err,
    });
  }
  return new EngineError('INTERNAL', `${target}: ${err.details || err.message}`, { cause: err });
}

/** Promisifies one unary call of a grpc-js client. */
export function unary<Req, Res>(
  client: grpc.Client,
  method: string,
  req: Req,
  target: string,
  deadlineMs = 10_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    type UnaryFn = (req: Req, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Res) => void) => void;
    const fn = (client as unknown as Record<string, UnaryFn>)[method];
    fn.call(client, req, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: Res) => {
      if (err) reject(fromServiceError(err, target));
      else resolve(res);
    });
  });
}

/** Wraps an async handler as a grpc-js unary handler; errors become ServiceErrors, and the callback is called once. */
export function handleUnary<Req, Res>(fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request).then(
      (res) => callback(null, res),
      (err) => callback(toServiceError(err)),
    );
  };
}
