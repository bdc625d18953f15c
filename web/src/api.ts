/**
 * The browser side of the REST API (docs/rest-api.md): JSON GETs, mutations and Server-Sent Events,
 * with the access token kept in sessionStorage and sent as `Authorization: Bearer` (SSE: `?token=`,
 * EventSource cannot send headers).
 *
 * When a request answers 401 the UI asks for the token once ({@link requestToken}, answered by the
 * token dialog in main.ts) and retries.
 */
import { useEffect, useRef, useState } from 'preact/hooks';

const TOKEN_KEY = 'fluxo.webToken';

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lives for this request only
  }
  tokenVersion++;
  for (const l of tokenListeners) l();
}

let tokenVersion = 0;
const tokenListeners = new Set<() => void>();

/** Re-renders (and so re-subscribes SSE streams) when the token changes. */
export function useTokenVersion(): number {
  const [v, setV] = useState(tokenVersion);
  useEffect(() => {
    const l = () => setV(tokenVersion);
    tokenListeners.add(l);
    return () => {
      tokenListeners.delete(l);
    };
  }, []);
  return v;
}

/** A non-2xx answer: `code` and `message` from the server's `{ code, message }` body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** `refused`: the message shown when the token sent was answered 401 (the dialog shows it as an alert). */
type TokenAsker = (reason: string, refused?: string) => Promise<string | null>;
let asker: TokenAsker | null = null;
let pendingAsk: Promise<string | null> | null = null;

/** Installed by the token dialog; resolves with the token typed in, or null when dismissed. */
export function setTokenAsker(a: TokenAsker | null): void {
  asker = a;
}

/** Asks the user for the token (one dialog at a time); stores and returns it, null if dismissed. */
export async function requestToken(reason: string, refused?: string): Promise<string | null> {
  if (!asker) return null;
  if (!pendingAsk) {
    pendingAsk = asker(reason, refused).then((t) => {
      pendingAsk = null;
      if (t) setToken(t);
      return t;
    });
  }
  return pendingAsk;
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = getToken();
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

async function toError(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { code?: string; message?: string };
    return new ApiError(res.status, body.code ?? `HTTP_${res.status}`, body.message ?? text);
  } catch {
    return new ApiError(res.status, `HTTP_${res.status}`, text || res.statusText);
  }
}

/** How often one request asks again after the token typed in was refused. */
const MAX_TOKEN_ASKS = 3;

async function request<T>(method: string, path: string, body?: unknown, asked = 0): Promise<T> {
  const sent = getToken();
  const init: RequestInit = {
    method,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
  };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  if (res.status === 401 && asked < MAX_TOKEN_ASKS) {
    // a token was sent and refused: say so in the dialog instead of silently asking again
    const token = await requestToken(
      method === 'GET' ? 'This JobManager needs a token to read.' : 'This action needs the access token.',
      sent ? 'That token was refused (401).' : undefined,
    );
    if (token) return request<T>(method, path, body, asked + 1);
  }
  if (!res.ok) throw await toError(res);
  const text = await res.text();
  return (text ? JSON.parse(text) : {}) as T;
}

/** GET a JSON document (path relative to the JobManager's web root, e.g. `overview`). */
export function getJson<T>(path: string): Promise<T> {
  return request<T>('GET', apiPath(path));
}

/** POST/PATCH with the token; a 401 asks for it and retries once. */
export function mutate<T>(method: 'POST' | 'PATCH', path: string, body?: unknown): Promise<T> {
  return request<T>(method, apiPath(path), body);
}

/** Paths are relative so the UI works behind a reverse proxy at a sub path; `/x` and `x` both map to `./x`. */
export function apiPath(path: string): string {
  return path.startsWith('/') ? `.${path}` : `./${path}`;
}

export type ConnectionState = 'connecting' | 'live' | 'reconnecting';

/**
 * Subscribes to an SSE stream; `handlers[event]` gets each event's parsed data. EventSource
 * reconnects by itself; the returned state says whether data is flowing. Re-subscribes when the
 * path or the token changes.
 */
export function useEventStream(
  path: string | null,
  handlers: Record<string, (data: unknown) => void>,
): ConnectionState {
  const [state, setState] = useState<ConnectionState>('connecting');
  const ref = useRef(handlers);
  ref.current = handlers;
  const tokenV = useTokenVersion();
  useEffect(() => {
    if (!path) return;
    const token = getToken();
    const url = apiPath(path) + (token ? `${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : '');
    const es = new EventSource(url);
    setState('connecting');
    const listeners: [string, (e: MessageEvent) => void][] = Object.keys(ref.current).map((name) => [
      name,
      (e: MessageEvent) => {
        setState('live');
        try {
          ref.current[name]?.(JSON.parse(e.data as string));
        } catch {
          // a malformed event is skipped; the next one comes within a second
        }
      },
    ]);
    for (const [name, l] of listeners) es.addEventListener(name, l as EventListener);
    es.onerror = () => setState(es.readyState === EventSource.CLOSED ? 'reconnecting' : 'reconnecting');
    return () => {
      for (const [name, l] of listeners) es.removeEventListener(name, l as EventListener);
      es.close();
    };
  }, [path, tokenV]);
  return state;
}

/**
 * Polls `load` every `intervalMs` (and at once when `deps` change); keeps the last good value and
 * the last error. Stops while the tab is hidden.
 */
export function usePoll<T>(
  load: () => Promise<T>,
  intervalMs: number,
  deps: unknown[],
): { data: T | undefined; error: Error | undefined } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const tokenV = useTokenVersion();
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      if (!document.hidden) {
        try {
          const v = await load();
          if (!stopped) {
            setData(v);
            setError(undefined);
          }
        } catch (err) {
          if (!stopped) setError(err as Error);
        }
      }
      if (!stopped) timer = setTimeout(tick, intervalMs);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [...deps, tokenV, intervalMs]);
  return { data, error };
}
