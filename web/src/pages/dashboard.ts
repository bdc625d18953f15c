/**
 * Live IoT dashboard of a job with a redis sink (window results per key) and/or a bullmq alerts
 * sink: charts of selected sensors, a paged table of current readings, a top-N view, the alert
 * feed and a heat map. Everything is paged or capped server-side, so 10,000 sensors cost the same
 * as 100: at most one table page, {@link MAX_CHARTS} charts, one heat-map page.
 */
import { html } from 'htm/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { getJson, usePoll } from '../api.js';
import { Badge, ErrorNote } from '../components/common.js';
import { SeriesChart } from '../components/series-chart.js';
import { formatCount, formatDuration, formatTime, formatValue, heatColour, isoTime } from '../format.js';
import type { AlertEntry, HeatmapCell, JobDetail, SensorRow, SeriesPoint } from '../types.js';

const MAX_CHARTS = 6;
/** Jobs in these states write no more results: no "live", no freshness. */
const ENDED = new Set(['FINISHED', 'FAILED', 'CANCELED']);
const RANGES: { id: string; label: string; ms: number | null }[] = [
  { id: '1h', label: 'Last hour', ms: 3_600_000 },
  { id: '6h', label: 'Last 6 hours', ms: 6 * 3_600_000 },
  { id: '24h', label: 'Last 24 hours', ms: 86_400_000 },
  { id: '7d', label: 'Last 7 days', ms: 7 * 86_400_000 },
  { id: 'all', label: 'Everything kept', ms: null },
];
const SORTS = [
  { id: 'key', label: 'Key' },
  { id: 'avg', label: 'Average' },
  { id: 'min', label: 'Minimum' },
  { id: 'max', label: 'Maximum' },
  { id: 'freshness', label: 'Freshness' },
];

/** A sensor chosen for a chart: its key and the end of its latest window (the range's anchor). */
interface Selected {
  key: string;
  latestEnd: number;
}

export function DashboardPage({ jobId }: { jobId: string }) {
  const base = `jobs/${encodeURIComponent(jobId)}`;
  const job = usePoll(() => getJson<JobDetail>(base), 5000, [base]);
  const [selected, setSelected] = useState<Selected[]>([]);
  const [range, setRange] = useState('6h');
  // the table's latest rows: the charts refetch whenever the table refreshes, and their header
  // shows the same latest window as the table's row (they used to lag one window behind)
  const [tableRows, setTableRows] = useState<{ at: number; rows: Map<string, SensorRow> }>({ at: 0, rows: new Map() });

  const d = job.data?.dashboard;
  const toggle = (row: SensorRow) =>
    setSelected((s) =>
      s.some((x) => x.key === row.key)
        ? s.filter((x) => x.key !== row.key)
        : [...s, { key: row.key, latestEnd: row.windowEnd }].slice(-MAX_CHARTS),
    );

  if (!job.data)
    return html`<h1 tabindex="-1">Dashboard</h1>${job.error ? html`<${ErrorNote} error=${job.error} />` : html`<p>Loading…</p>`}`;
  const j = job.data.job;
  const ended = ENDED.has(j.state);
  return html`
    <nav class="crumbs" aria-label="Breadcrumb"><a href="#/">Overview</a> › <a href=${`#/jobs/${encodeURIComponent(j.jobId)}`}>${j.name}</a> › <span>Dashboard</span></nav>
    <div class="page-head">
      <h1 tabindex="-1" data-testid="dashboard-title">${j.name}: ${ended ? 'dashboard' : 'live dashboard'}</h1>
      <${Badge} state=${j.state} />
    </div>
    ${!d || (!d.redisKeyPrefix && !d.alertsQueue) ? html`<p>This job has neither a redis sink nor an alerts sink: nothing to show here.</p>` : null}
    ${
      d?.redisKeyPrefix
        ? html`
      <p class="muted small">Window results under <code>${d.redisKeyPrefix}:*</code>, keyed by ${d.keyFields.join(', ') || 'key'}. Times are event times; ranges end at each sensor's latest window.</p>
      ${
        ended
          ? html`<p class="note" data-testid="ended-note">The job is ${j.state}${j.endedAtMs ? html` since <time datetime=${isoTime(j.endedAtMs)}>${formatTime(j.endedAtMs)}</time>` : null}: these are its final results, they no longer change, so no freshness is shown.</p>`
          : null
      }
      <section aria-labelledby="charts-title" class="panel">
        <div class="panel-head">
          <h2 id="charts-title">Charts</h2>
          <label>Time range
            <select value=${range} onChange=${(e: Event) => setRange((e.target as HTMLSelectElement).value)} data-testid="range-select">
              ${RANGES.map((r) => html`<option value=${r.id}>${r.label}</option>`)}
            </select>
          </label>
        </div>
        ${selected.length === 0 ? html`<p class="muted">Pick up to ${MAX_CHARTS} sensors in the table or the top list to chart them.</p>` : null}
        <div class="charts">
          ${selected.map(
            (
              s,
            ) => html`<${SensorChart} key=${s.key} base=${base} sel=${s} rangeMs=${RANGES.find((r) => r.id === range)?.ms ?? null}
            refreshAt=${tableRows.at} latest=${tableRows.rows.get(s.key)}
            onClose=${() => setSelected((x) => x.filter((y) => y.key !== s.key))} />`,
          )}
        </div>
      </section>
      <div class="two-col">
        <${SensorTable} base=${base} selected=${selected} onToggle=${toggle} ended=${ended}
          onRows=${(rows: SensorRow[]) => setTableRows((t) => ({ at: t.at + 1, rows: new Map(rows.map((r) => [r.key, r])) }))}
          autoSelect=${(row: SensorRow) => setSelected((s) => (s.length === 0 ? [{ key: row.key, latestEnd: row.windowEnd }] : s))} />
        <${TopN} base=${base} selected=${selected} onToggle=${toggle} />
      </div>
      <${Heatmap} base=${base} />
    `
        : null
    }
    ${d?.alertsQueue ? html`<${Alerts} base=${base} queue=${d.alertsQueue} />` : null}
  `;
}

function SensorChart({
  base,
  sel,
  rangeMs,
  refreshAt,
  latest,
  onClose,
}: {
  base: string;
  sel: Selected;
  rangeMs: number | null;
  /** changes each time the table refreshed: the chart refetches with it */
  refreshAt: number;
  /** the table's row of this sensor, when on the table's page */
  latest: SensorRow | undefined;
  onClose: () => void;
}) {
  const q = new URLSearchParams({ key: sel.key });
  if (rangeMs !== null) {
    q.set('fromMs', String(sel.latestEnd - rangeMs));
  }
  const series = usePoll(() => getJson<{ key: string; points: SeriesPoint[] }>(`${base}/dashboard/series?${q}`), 5000, [
    base,
    q.toString(),
    refreshAt,
  ]);
  return html`
    <div class="chart-card" data-testid="sensor-chart" data-key=${sel.key}>
      <button type="button" class="close" aria-label=${`Remove the chart of ${sel.key}`} onClick=${onClose}>×</button>
      <${ErrorNote} error=${series.error} />
      <${SeriesChart} title=${sel.key} points=${series.data?.points ?? []} latest=${latest} />
    </div>
  `;
}

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

function SensorTable({
  base,
  selected,
  onToggle,
  autoSelect,
  onRows,
  ended,
}: {
  base: string;
  selected: Selected[];
  onToggle: (row: SensorRow) => void;
  autoSelect: (row: SensorRow) => void;
  onRows: (rows: SensorRow[]) => void;
  /** the job ended: no freshness column (it would count from the data's event time to now) */
  ended: boolean;
}) {
  const [search, setSearch] = useState('');
  const [sort, setSort] = useState('key');
  const [order, setOrder] = useState<'asc' | 'desc'>('asc');
  const [page, setPage] = useState(0);
  const [limit, setLimit] = useState(25);
  const term = useDebounced(search.trim(), 250);
  useEffect(() => setPage(0), [term, sort, order, limit]);
  const q = new URLSearchParams({ sort, order, offset: String(page * limit), limit: String(limit) });
  if (term) q.set('search', term);
  const res = usePoll(() => getJson<{ total: number; sensors: SensorRow[] }>(`${base}/dashboard/sensors?${q}`), 2000, [
    base,
    q.toString(),
  ]);
  useEffect(() => {
    if (ended && sort === 'freshness') setSort('key');
  }, [ended]);
  useEffect(() => {
    if (res.data) onRows(res.data.sensors);
  }, [res.data]);
  const first = res.data?.sensors[0];
  useEffect(() => {
    if (first) autoSelect(first);
  }, [first?.key]);
  const total = res.data?.total ?? 0;
  const pages = Math.max(1, Math.ceil(total / limit));
  const header = (id: string, label: string, num = true) => {
    const active = sort === id;
    return html`<th scope="col" class=${num ? 'num' : ''} aria-sort=${active ? (order === 'asc' ? 'ascending' : 'descending') : 'none'}>
      <button type="button" class="sort" onClick=${() => {
        if (active) setOrder(order === 'asc' ? 'desc' : 'asc');
        else {
          setSort(id);
          setOrder(id === 'key' ? 'asc' : 'desc');
        }
      }}>${label}${active ? (order === 'asc' ? ' ▲' : ' ▼') : ''}</button></th>`;
  };
  return html`
    <section aria-labelledby="sensors-title" class="panel">
      <div class="panel-head">
        <h2 id="sensors-title">Current readings <span class="muted small" data-testid="sensor-total">${formatCount(total)} sensors</span></h2>
        <div class="filters">
          <label for="sensor-search">Search</label>
          <input id="sensor-search" type="search" placeholder="key or field" value=${search} data-testid="sensor-search"
            onInput=${(e: Event) => setSearch((e.target as HTMLInputElement).value)} />
          <label for="sensor-sort">Sort by</label>
          <select id="sensor-sort" value=${sort} onChange=${(e: Event) => setSort((e.target as HTMLSelectElement).value)}>
            ${SORTS.filter((s) => !ended || s.id !== 'freshness').map((s) => html`<option value=${s.id}>${s.label}</option>`)}
          </select>
          <label for="sensor-order">Order</label>
          <select id="sensor-order" value=${order} onChange=${(e: Event) => setOrder((e.target as HTMLSelectElement).value as 'asc' | 'desc')}>
            <option value="asc">Ascending</option>
            <option value="desc">Descending</option>
          </select>
        </div>
      </div>
      <${ErrorNote} error=${res.error} />
      <div class="table-wrap">
        <table data-testid="sensors-table">
          <caption class="sr-only">Latest window per sensor; tick a row to chart it</caption>
          <thead><tr>
            <th scope="col"><span class="sr-only">Chart</span></th>
            ${header('key', 'Sensor', false)}
            <th scope="col">Window (event time)</th>
            ${header('avg', 'Avg')}${header('min', 'Min')}${header('max', 'Max')}
            <th scope="col" class="num">Count</th>
            ${ended ? null : header('freshness', 'Freshness')}
          </tr></thead>
          <tbody>
            ${(res.data?.sensors ?? []).map((s) => {
              const on = selected.some((x) => x.key === s.key);
              return html`<tr key=${s.key} data-testid="sensor-row" data-key=${s.key} data-window-start=${s.windowStart}
                  data-avg=${s.avg ?? ''} data-min=${s.min ?? ''} data-max=${s.max ?? ''} data-count=${s.count ?? ''} class=${on ? 'selected' : ''}>
                <td><input type="checkbox" checked=${on} aria-label=${`Chart ${s.key}`} onChange=${() => onToggle(s)} /></td>
                <th scope="row">${s.key}</th>
                <td class="small"><time datetime=${isoTime(s.windowStart)}>${formatTime(s.windowStart)}</time> – <time datetime=${isoTime(s.windowEnd)}>${formatTime(s.windowEnd).slice(11)}</time></td>
                <td class="num" data-col="avg">${formatValue(s.avg)}</td>
                <td class="num" data-col="min">${formatValue(s.min)}</td>
                <td class="num" data-col="max">${formatValue(s.max)}</td>
                <td class="num" data-col="count">${formatCount(s.count)}</td>
                ${ended ? null : html`<td class="num"><span class=${`fresh ${freshClass(s.freshnessMs)}`}>${formatDuration(s.freshnessMs)}</span></td>`}
              </tr>`;
            })}
          </tbody>
        </table>
      </div>
      <div class="pager" role="group" aria-label="Pages of sensors">
        <button type="button" disabled=${page === 0} onClick=${() => setPage(0)} aria-label="First page">«</button>
        <button type="button" disabled=${page === 0} onClick=${() => setPage(page - 1)} data-testid="prev-page">Previous</button>
        <span aria-live="polite">Page ${Math.min(page + 1, pages)} of ${pages}</span>
        <button type="button" disabled=${page + 1 >= pages} onClick=${() => setPage(page + 1)} data-testid="next-page">Next</button>
        <button type="button" disabled=${page + 1 >= pages} onClick=${() => setPage(pages - 1)} aria-label="Last page">»</button>
        <label>Rows <select value=${limit} onChange=${(e: Event) => setLimit(Number((e.target as HTMLSelectElement).value))}>
          ${[10, 25, 50, 100].map((n) => html`<option value=${n}>${n}</option>`)}
        </select></label>
      </div>
    </section>
  `;
}

/** Freshness classes relative to the data: fresh within 2 min, stale within 1 h, else old. */
function freshClass(ms: number): string {
  return ms < 120_000 ? 'ok' : ms < 3_600_000 ? 'warn' : 'old';
}

function TopN({
  base,
  selected,
  onToggle,
}: {
  base: string;
  selected: Selected[];
  onToggle: (row: SensorRow) => void;
}) {
  const [n, setN] = useState(10);
  const [metric, setMetric] = useState('avg');
  const [order, setOrder] = useState<'desc' | 'asc'>('desc');
  const q = `sort=${metric}&order=${order}&offset=0&limit=${n}`;
  const res = usePoll(() => getJson<{ total: number; sensors: SensorRow[] }>(`${base}/dashboard/sensors?${q}`), 3000, [
    base,
    q,
  ]);
  const rows = res.data?.sensors ?? [];
  const values = rows.map((r) => (r[metric as 'avg' | 'min' | 'max'] ?? 0) as number);
  const lo = Math.min(...values, 0);
  const hi = Math.max(...values, 1);
  return html`
    <section aria-labelledby="top-title" class="panel">
      <div class="panel-head">
        <h2 id="top-title">Top ${n}</h2>
        <div class="filters">
          <label for="top-metric">By</label>
          <select id="top-metric" value=${metric} onChange=${(e: Event) => setMetric((e.target as HTMLSelectElement).value)}>
            <option value="avg">average</option><option value="max">maximum</option><option value="min">minimum</option>
          </select>
          <label for="top-order">Show</label>
          <select id="top-order" value=${order} onChange=${(e: Event) => setOrder((e.target as HTMLSelectElement).value as 'asc' | 'desc')}>
            <option value="desc">highest</option><option value="asc">lowest</option>
          </select>
          <label for="top-n">N</label>
          <select id="top-n" value=${n} onChange=${(e: Event) => setN(Number((e.target as HTMLSelectElement).value))}>
            ${[5, 10, 20].map((x) => html`<option value=${x}>${x}</option>`)}
          </select>
        </div>
      </div>
      <${ErrorNote} error=${res.error} />
      <ol class="bars" data-testid="top-n">
        ${rows.map((r, i) => {
          const v = values[i] ?? 0;
          const on = selected.some((x) => x.key === r.key);
          return html`<li key=${r.key}>
            <button type="button" class=${`bar-row ${on ? 'selected' : ''}`} aria-pressed=${on ? 'true' : 'false'} onClick=${() => onToggle(r)}
              title=${`${r.key}: ${formatValue(v)} (click to chart)`}>
              <span class="bar-label">${r.key}</span>
              <span class="bar"><span style=${{ width: `${hi > lo ? Math.max(3, (100 * (v - lo)) / (hi - lo)) : 50}%` }}></span></span>
              <span class="bar-value">${formatValue(v)}</span>
            </button>
          </li>`;
        })}
      </ol>
    </section>
  `;
}

const HEAT_ROWS = 30;
const HEAT_TILES = 240;

function Heatmap({ base }: { base: string }) {
  const res = usePoll(() => getJson<{ levels: string[]; cells: HeatmapCell[] }>(`${base}/dashboard/heatmap`), 5000, [
    base,
  ]);
  const [filter, setFilter] = useState('');
  const [page, setPage] = useState(0);
  const term = useDebounced(filter.trim().toLowerCase(), 250);
  useEffect(() => setPage(0), [term]);
  const levels = res.data?.levels ?? [];
  const cells = res.data?.cells ?? [];
  const model = useMemo(() => {
    const vals = cells.map((c) => c.avg).filter((v): v is number => typeof v === 'number');
    const lo = vals.length ? Math.min(...vals.slice(0, 50_000)) : 0;
    const hi = vals.length ? Math.max(...vals.slice(0, 50_000)) : 1;
    const l0 = levels[0] ?? 'key';
    const l1 = levels[1];
    const match = (c: HeatmapCell) =>
      !term ||
      levels.some((l) =>
        String(c[l] ?? '')
          .toLowerCase()
          .includes(term),
      );
    const shown = cells.filter(match);
    if (!l1)
      return {
        lo,
        hi,
        l0,
        l1,
        rows: [] as string[],
        cols: [] as string[],
        byRow: new Map<string, Map<string, HeatmapCell>>(),
        tiles: shown,
      };
    const byRow = new Map<string, Map<string, HeatmapCell>>();
    const colSet = new Set<string>();
    for (const c of shown) {
      const r = String(c[l0]);
      const k = String(c[l1]);
      colSet.add(k);
      let m = byRow.get(r);
      if (!m) {
        m = new Map();
        byRow.set(r, m);
      }
      m.set(k, c);
    }
    const collator = new Intl.Collator('en', { numeric: true });
    return {
      lo,
      hi,
      l0,
      l1,
      rows: [...byRow.keys()].sort(collator.compare),
      cols: [...colSet].sort(collator.compare),
      byRow,
      tiles: [] as HeatmapCell[],
    };
  }, [cells, levels, term]);

  const perPage = model.l1 ? HEAT_ROWS : HEAT_TILES;
  const count = model.l1 ? model.rows.length : model.tiles.length;
  const pages = Math.max(1, Math.ceil(count / perPage));
  const p = Math.min(page, pages - 1);
  const pageTiles = model.tiles.slice(p * perPage, (p + 1) * perPage);
  const tilePrefix = commonPrefix(pageTiles.map((c) => String(c[model.l0] ?? '')));
  const label = (c: HeatmapCell | undefined, name: string) =>
    c ? `${name}: ${formatValue(c.avg)} (window ${formatTime(c.windowStart)})` : `${name}: no data`;

  return html`
    <section aria-labelledby="heat-title" class="panel">
      <div class="panel-head">
        <h2 id="heat-title">Heat map <span class="muted small">latest window average per ${levels.join(' × ') || 'key'}</span></h2>
        <div class="filters">
          <label for="heat-filter">Filter</label>
          <input id="heat-filter" type="search" value=${filter} onInput=${(e: Event) => setFilter((e.target as HTMLInputElement).value)} />
        </div>
      </div>
      <${ErrorNote} error=${res.error} />
      <div class="heat-legend" aria-hidden="true"><span>${formatValue(model.lo)}</span><span class="heat-scale"></span><span>${formatValue(model.hi)}</span></div>
      ${
        model.l1
          ? html`
        <div class="table-wrap">
          <table class="heat" data-testid="heatmap">
            <thead><tr><th scope="col">${model.l0} \\ ${model.l1}</th>${model.cols.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
            <tbody>
              ${model.rows.slice(p * perPage, (p + 1) * perPage).map(
                (r) => html`<tr key=${r}>
                <th scope="row">${r}</th>
                ${model.cols.map((c) => {
                  const cell = model.byRow.get(r)?.get(c);
                  return html`<td style=${{ background: heatColour(cell?.avg ?? null, model.lo, model.hi) }} title=${label(cell, `${r} / ${c}`)}
                    aria-label=${label(cell, `${r} / ${c}`)}>${cell ? formatValue(cell.avg) : ''}</td>`;
                })}
              </tr>`,
              )}
            </tbody>
          </table>
        </div>`
          : html`
        ${tilePrefix ? html`<p class="muted small" data-testid="tile-prefix">Keys below start with <code>${tilePrefix}</code>; the tiles show the rest.</p>` : null}
        <ul class="tiles" data-testid="heatmap">
          ${pageTiles.map((c) => {
            const name = String(c[model.l0] ?? '');
            // the full key for screen readers and the tooltip; on screen, its distinguishing end
            return html`<li key=${name} data-key=${name} style=${{ background: heatColour(c.avg, model.lo, model.hi) }} title=${label(c, name)}>
              <span class="sr-only">${label(c, name)}</span>
              <span class="tile-name" aria-hidden="true">${tileLabel(name, tilePrefix)}</span><span aria-hidden="true">${formatValue(c.avg)}</span></li>`;
          })}
        </ul>`
      }
      ${
        pages > 1
          ? html`<div class="pager" role="group" aria-label="Pages of the heat map">
        <button type="button" disabled=${p === 0} onClick=${() => setPage(p - 1)}>Previous</button>
        <span>Page ${p + 1} of ${pages} (${formatCount(count)} ${model.l1 ? model.l0 : 'keys'})</span>
        <button type="button" disabled=${p + 1 >= pages} onClick=${() => setPage(p + 1)}>Next</button>
      </div>`
          : null
      }
    </section>
  `;
}

/**
 * The prefix all `names` share, cut back to its last separator (`sensor-0001`, `sensor-0002` →
 * `sensor-`), or '' when under 3 characters or only one name.
 */
export function commonPrefix(names: string[]): string {
  if (names.length < 2) return '';
  let n = (names[0] ?? '').length;
  for (const s of names) {
    let i = 0;
    while (i < n && i < s.length && s[i] === names[0]?.[i]) i++;
    n = i;
  }
  const shared = (names[0] ?? '').slice(0, n);
  const cut = Math.max(...[...'-_|:./ '].map((ch) => shared.lastIndexOf(ch)));
  const prefix = cut >= 0 ? shared.slice(0, cut + 1) : '';
  return prefix.length >= 3 ? prefix : '';
}

/** A tile's visible name: without the shared prefix, and when still long its end (`…12345`). */
export function tileLabel(name: string, prefix: string): string {
  const rest = prefix && name.startsWith(prefix) && name.length > prefix.length ? name.slice(prefix.length) : name;
  return rest.length > 10 ? `…${rest.slice(-9)}` : rest;
}

function Alerts({ base, queue }: { base: string; queue: string }) {
  const res = usePoll(() => getJson<{ alerts: AlertEntry[] }>(`${base}/dashboard/alerts?limit=50`), 3000, [base]);
  const alerts = res.data?.alerts ?? [];
  return html`
    <section aria-labelledby="alerts-title" class="panel">
      <h2 id="alerts-title">Alerts <span class="muted small">queue ${queue}, newest first</span></h2>
      <${ErrorNote} error=${res.error} />
      ${
        alerts.length === 0
          ? html`<p class="muted">No alerts.</p>`
          : html`
        <ol class="alerts" data-testid="alerts" aria-live="polite">
          ${alerts.map(
            (a, i) => html`<li key=${`${a.sensor}-${a.ts}-${i}`}>
            <time datetime=${isoTime(a.ts)}>${formatTime(a.ts)}</time>
            <strong>${a.sensor}</strong> <span class="badge warn">${a.rule}</span>
            <span>value ${formatValue(a.value)}</span> <span class="muted">${a.detail}</span>
          </li>`,
          )}
        </ol>`
      }
    </section>
  `;
}
