/**
 * The shared cluster token: read once from a file or the environment, sent on every gRPC call as
 * `authorization: Bearer <token>` metadata (a client interceptor), and checked on every call a
 * JobManager or TaskManager serves (a server interceptor answering UNAUTHENTICATED). Compared in
 * constant time; never logged, never put in an error message.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { EngineError, type ErrorCode } from '../errors/index.js';
import { SECURITY_CONFIG_CODE } from './tls.js';

/**
 * The engine code of a call the peer refused for a missing or wrong cluster token (the gRPC
 * status is UNAUTHENTICATED). Use {@link isAuthRefusal} to recognise one.
 */
export const AUTH_REFUSED_CODE: ErrorCode = 'UNAUTHENTICATED';

/** The metadata key the token travels in (lower case, as gRPC metadata keys are). */
export const AUTH_METADATA_KEY = 'authorization';

/**
 * The cluster token: the first line of `file` (trimmed) when a file is given, else `envToken`
 * (trimmed), else undefined (no token: the cluster is open, as before).
 * @param file path given by `--cluster-token-file` (or env FLUXO_CLUSTER_TOKEN_FILE)
 * @param envToken the value of env FLUXO_CLUSTER_TOKEN
 * @throws EngineError {@link SECURITY_CONFIG_CODE} when the file cannot be read, its first line is
 *   empty, or the token holds characters gRPC metadata cannot carry (only printable ASCII); the
 *   message names the file, never the token
 */
export function readClusterToken(file: string | undefined, envToken: string | undefined): string | undefined {
  let token: string;
  let where: string;
  if (file !== undefined && file !== '') {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new EngineError(
        SECURITY_CONFIG_CODE,
        `cannot read --cluster-token-file ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? 'unreadable')}`,
      );
    }
    token = text.split(/\r?\n/)[0].trim();
    where = `--cluster-token-file ${file}`;
    if (token === '') throw new EngineError(SECURITY_CONFIG_CODE, `${where}: the first line is empty`);
  } else {
    token = envToken?.trim() ?? '';
    where = 'FLUXO_CLUSTER_TOKEN';
    if (token === '') return undefined;
  }
  if (!/^[\x21-\x7e]+$/.test(token))
    throw new EngineError(
      SECURITY_CONFIG_CODE,
      `${where}: the cluster token may hold only printable ASCII without spaces (e.g. from \`openssl rand -hex 32\`)`,
    );
  return token;
}

/**
 * Constant-time comparison of a presented token with the expected one: both are hashed
 * (SHA-256) first, so neither the content nor the length leaks through timing.
 * @returns false when `presented` is undefined
 */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The token of `authorization: Bearer <token>` metadata (scheme case-insensitive), or undefined. */
export function bearerOf(md: grpc.Metadata): string | undefined {
  const v = md.get(AUTH_METADATA_KEY)[0];
  if (typeof v !== 'string') return undefined;
  const m = /^bearer[ \t]+(\S+)\s*$/i.exec(v.trim());
  return m ? m[1] : undefined;
}

/** A client interceptor adding `authorization: Bearer <token>` to every call (unary and streams). */
export function tokenInterceptor(token: string): grpc.Interceptor {
  const value = `Bearer ${token}`;
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(AUTH_METADATA_KEY, value);
        next(metadata, listener);
      },
    });
}

/** A refused call, for the server's log: never the token. */
export interface AuthRefusal {
  /** the gRPC method path, e.g. `/fluxo.v1.JobManagerService/SubmitJob` */
  method: string;
  /** the peer's address as gRPC reports it */
  peer: string;
  /** no token sent, or a token that does not match */
  reason: 'missing' | 'wrong';
}

/** What a throttled refusal report carries: the last refusal and the counts since the last report. */
export interface RefusalReport extends AuthRefusal {
  /** refusals since the last report (≥ 1) */
  refusedCalls: number;
  /** of those, calls that sent no token */
  missingToken: number;
  /** of those, calls that sent a token that is not this cluster's */
  wrongToken: number;
}

/**
 * The log message of a {@link RefusalReport}, one of three fixed strings: calls without the
 * cluster token, with a wrong one, or both kinds.
 */
export function refusalMessage(r: Pick<RefusalReport, 'missingToken' | 'wrongToken'>): string {
  if (r.wrongToken === 0) return 'refused calls without the cluster token';
  if (r.missingToken === 0) return 'refused calls with a wrong cluster token';
  return 'refused calls without the cluster token or with a wrong one';
}

/**
 * A refusal callback that passes on at most one report per `everyMs` (the first refusal at once,
 * then the ones held back, counted by reason, when the interval is over), so a stranger knocking
 * on a port cannot flood the log. Refusals held back are reported by a timer at the end of the
 * interval even when no further refusal arrives; the timer is unref'd (it never keeps a process up).
 * @param report gets the last refusal and its counts since the last report
 * @param everyMs default 10 000
 * @param now clock, ms; default Date.now
 */
export function throttleRefusals(
  report: (r: RefusalReport) => void,
  everyMs = 10_000,
  now: () => number = Date.now,
): (r: AuthRefusal) => void {
  let missing = 0;
  let wrong = 0;
  let last: AuthRefusal | undefined;
  let lastMs = Number.NEGATIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    timer = undefined;
    if (!last || missing + wrong === 0) return;
    const r: RefusalReport = { ...last, refusedCalls: missing + wrong, missingToken: missing, wrongToken: wrong };
    missing = 0;
    wrong = 0;
    last = undefined;
    lastMs = now();
    report(r);
  };
  return (r) => {
    if (r.reason === 'missing') missing++;
    else wrong++;
    last = r;
    const waitMs = lastMs + everyMs - now();
    if (waitMs <= 0) {
      if (timer) clearTimeout(timer);
      flush();
    } else if (!timer) {
      timer = setTimeout(flush, waitMs);
      timer.unref();
    }
  };
}

/**
 * A server interceptor refusing every call whose metadata lacks the cluster token (or carries
 * another one) with UNAUTHENTICATED, before the handler runs. The status's details read
 * `the <who> refused the cluster token: ...`, and its `fluxo-code` metadata is
 * {@link AUTH_REFUSED_CODE}, so `fromServiceError` gives the client a one-line EngineError.
 * @param who the serving process, for the message (`JobManager`, `TaskManager tm-1`)
 * @param onRefused called once per refused call (e.g. to log it, throttled)
 */
export function authInterceptor(
  token: string,
  who: string,
  onRefused?: (r: AuthRefusal) => void,
): grpc.ServerInterceptor {
  return (methodDescriptor, call) =>
    new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, mdNext) {
            const presented = bearerOf(metadata);
            if (tokenMatches(presented, token)) {
              mdNext(metadata);
              return;
            }
            const reason = presented === undefined ? 'missing' : 'wrong';
            onRefused?.({ method: methodDescriptor.path, peer: call.getPeer(), reason });
            const md = new grpc.Metadata();
            md.set('fluxo-code', AUTH_REFUSED_CODE);
            call.sendStatus({
              code: grpc.status.UNAUTHENTICATED,
              details:
                reason === 'missing'
                  ? `the ${who} refused the cluster token: none was sent (give it with --cluster-token-file or env FLUXO_CLUSTER_TOKEN)`
                  : `the ${who} refused the cluster token: it is not this cluster's token`,
              metadata: md,
            });
          },
        });
      },
    });
}

/**
 * True when `err` is a call the peer refused for its cluster token (gRPC UNAUTHENTICATED), as
 * `unary` rejects it (an EngineError whose cause is the ServiceError) or as a raw ServiceError.
 */
export function isAuthRefusal(err: unknown): boolean {
  const status = (e: unknown): unknown => (e as { code?: unknown } | null)?.code;
  if (status(err) === grpc.status.UNAUTHENTICATED) return true;
  return status((err as { cause?: unknown } | null)?.cause) === grpc.status.UNAUTHENTICATED;
}
