/**
 * Asks for the JobManager's access token (docs/rest-api.md "Security"): when a request answers 401,
 * or at start when `GET /overview` says `auth.reads`. The token is kept in sessionStorage only.
 */
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { getJson, getToken, requestToken, setToken, setTokenAsker } from '../api.js';
import type { Overview } from '../types.js';

export function TokenDialog() {
  const [ask, setAsk] = useState<{ reason: string; refused?: string; resolve: (t: string | null) => void } | null>(
    null,
  );
  const [value, setValue] = useState('');
  const ref = useRef<HTMLDialogElement>(null);

  useEffect(() => {
    setTokenAsker(
      (reason, refused) =>
        new Promise((resolve) => {
          setValue('');
          setAsk({ reason, refused, resolve });
        }),
    );
    getJson<Overview>('overview')
      .then((o) => {
        if (o.auth?.reads && !getToken()) void requestToken('This JobManager needs a token to read.');
      })
      .catch(() => {
        // a 401 already asked; other errors show on the pages
      });
    return () => setTokenAsker(null);
  }, []);

  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (ask && !d.open) d.showModal?.();
    if (!ask && d.open) d.close();
    // the input takes the focus; a refusal is announced by the alert it is described by
    if (ask) d.querySelector<HTMLInputElement>('#token-input')?.focus();
  }, [ask]);

  const finish = (t: string | null) => {
    ask?.resolve(t);
    setAsk(null);
  };

  return html`
    <dialog ref=${ref} class="token-dialog" aria-labelledby="token-title" onCancel=${(e: Event) => {
      e.preventDefault();
      finish(null);
    }}>
      <form method="dialog" onSubmit=${(e: Event) => {
        e.preventDefault();
        finish(value.trim() || null);
      }}>
        <h2 id="token-title">Access token</h2>
        <p>${ask?.reason ?? ''} It is kept in this browser tab only (sessionStorage).</p>
        <p id="token-error" class="error" role="alert" aria-live="assertive" data-testid="token-error">${ask?.refused ?? ''}</p>
        <label for="token-input">Token</label>
        <input id="token-input" type="password" autocomplete="off" value=${value}
          aria-invalid=${ask?.refused ? 'true' : undefined} aria-describedby=${ask?.refused ? 'token-error' : undefined}
          onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)} />
        <div class="row">
          <button type="submit" class="primary">Use token</button>
          <button type="button" onClick=${() => finish(null)}>Cancel</button>
          ${
            getToken()
              ? html`<button type="button" onClick=${() => {
                  setToken(null);
                  finish(null);
                }}>Forget stored token</button>`
              : null
          }
        </div>
      </form>
    </dialog>
  `;
}
