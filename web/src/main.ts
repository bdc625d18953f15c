/**
 * Fluxo web UI: hash routes
 * - `#/`                      cluster overview (TaskManagers, jobs), live via SSE /events
 * - `#/jobs/:id[/tab]`        job page: graph, checkpoints, exceptions (tab), live via SSE /jobs/:id/events
 * - `#/jobs/:id/dashboard`    live IoT dashboard of a job with a redis sink or alerts
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { html, render } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { TokenDialog } from './components/token-dialog.js';
import { DashboardPage } from './pages/dashboard.js';
import { JobPage } from './pages/job.js';
import { OverviewPage } from './pages/overview.js';

export type Route =
  | { page: 'overview' }
  | { page: 'job'; jobId: string; tab: string }
  | { page: 'dashboard'; jobId: string }
  | { page: 'missing'; hash: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  if (path === '/' || path === '') return { page: 'overview' };
  const m = /^\/jobs\/([^/]+)(?:\/([a-z-]+))?$/.exec(path);
  if (m) {
    const jobId = decodeURIComponent(m[1] as string);
    if (m[2] === 'dashboard') return { page: 'dashboard', jobId };
    return { page: 'job', jobId, tab: m[2] ?? 'graph' };
  }
  return { page: 'missing', hash };
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

function App() {
  const route = useRoute();
  useEffect(() => {
    // move focus to the new page's heading for screen-reader and keyboard users (tabindex=-1, no
    // ring: style.css). Pages swap their "Loading…" heading for the real one, which drops the focus
    // to <body>: for a few seconds, put it back on the new heading (never away from anything else).
    const main = document.getElementById('main');
    const focusHeading = () => main?.querySelector<HTMLElement>('h1')?.focus({ preventScroll: true });
    focusHeading();
    if (!main) return;
    const mo = new MutationObserver(() => {
      if (document.activeElement === document.body || document.activeElement === null) focusHeading();
    });
    mo.observe(main, { childList: true, subtree: true });
    const stop = setTimeout(() => mo.disconnect(), 5000);
    return () => {
      mo.disconnect();
      clearTimeout(stop);
    };
  }, [route.page, 'jobId' in route ? route.jobId : '']);
  let page: unknown;
  switch (route.page) {
    case 'overview':
      page = html`<${OverviewPage} />`;
      break;
    case 'job':
      page = html`<${JobPage} jobId=${route.jobId} tab=${route.tab} />`;
      break;
    case 'dashboard':
      page = html`<${DashboardPage} jobId=${route.jobId} />`;
      break;
    default:
      page = html`<h1 tabindex="-1">Not found</h1><p>No page ${route.hash}. <a href="#/">Back to the overview</a></p>`;
  }
  return html`
    <a class="skip" href="#main" onClick=${(e: Event) => {
      e.preventDefault();
      document.getElementById('main')?.focus();
    }}>Skip to content</a>
    <header class="top">
      <a class="brand" href="#/" aria-label="Fluxo cluster overview">Fluxo</a>
      <nav aria-label="Main">
        <a href="#/" aria-current=${route.page === 'overview' ? 'page' : undefined}>Overview</a>
      </nav>
    </header>
    <main id="main" tabindex="-1">${page}</main>
    <${TokenDialog} />
  `;
}

const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(html`<${App} />`, root);
}
