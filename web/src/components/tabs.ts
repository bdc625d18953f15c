/**
 * WAI-ARIA tabs: a tablist of buttons (arrow keys, Home and End move between tabs; the active tab
 * is the only one in the tab order) and one tabpanel with the current tab's content.
 */
import { html } from 'htm/preact';
import type { ComponentChildren } from 'preact';

export function Tabs({
  label,
  tabs,
  current,
  onSelect,
  children,
}: {
  label: string;
  tabs: { id: string; label: string }[];
  current: string;
  onSelect: (id: string) => void;
  children?: ComponentChildren;
}) {
  const move = (e: KeyboardEvent) => {
    const i = tabs.findIndex((t) => t.id === current);
    let j = i;
    if (e.key === 'ArrowRight') j = (i + 1) % tabs.length;
    else if (e.key === 'ArrowLeft') j = (i - 1 + tabs.length) % tabs.length;
    else if (e.key === 'Home') j = 0;
    else if (e.key === 'End') j = tabs.length - 1;
    else return;
    e.preventDefault();
    const next = tabs[j];
    if (!next) return;
    onSelect(next.id);
    requestAnimationFrame(() => document.getElementById(`tab-${next.id}`)?.focus());
  };
  return html`
    <div class="tabs">
      <div role="tablist" aria-label=${label} onKeyDown=${move}>
        ${tabs.map(
          (
            t,
          ) => html`<button type="button" role="tab" id=${`tab-${t.id}`} aria-selected=${t.id === current ? 'true' : 'false'}
          aria-controls=${`panel-${t.id}`} tabindex=${t.id === current ? 0 : -1} data-tab=${t.id}
          onClick=${() => onSelect(t.id)}>${t.label}</button>`,
        )}
      </div>
      <div role="tabpanel" id=${`panel-${current}`} aria-labelledby=${`tab-${current}`} tabindex="0">${children}</div>
    </div>
  `;
}
