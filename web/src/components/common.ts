/** Small shared pieces: state badges, the live/reconnecting indicator, a ticking clock, errors. */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import type { ConnectionState } from '../api.js';
import { STATE_CLASS } from '../format.js';

export function Badge({ state }: { state: string }) {
  return html`<span class=${`badge ${STATE_CLASS[state] ?? 'neutral'}`}>${state}</span>`;
}

export function Live({ state }: { state: ConnectionState }) {
  const label = state === 'live' ? 'Live' : state === 'connecting' ? 'Connecting…' : 'Reconnecting…';
  return html`<span class=${`live ${state}`} role="status" aria-live="polite">${label}</span>`;
}

/** `Date.now()`, refreshed every `everyMs` so ages ("3 s ago") move between server updates. */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

export function ErrorNote({ error }: { error: Error | undefined | null }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message}</p>`;
}
