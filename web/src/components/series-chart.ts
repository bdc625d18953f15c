/**
 * One sensor's window averages over time with a min–max band (uPlot on a canvas). x is the window
 * end in seconds (uPlot's time unit); the band fills between the max and min series.
 */
import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { formatTime, formatValue } from '../format.js';
import type { SeriesPoint } from '../types.js';

const pad = (n: number) => String(n).padStart(2, '0');

/**
 * x-axis tick labels, 24-hour like the tables: `HH:mm` (`HH:mm:ss` below a minute), with the date
 * `YYYY-MM-DD` on a second line at the first tick and wherever the day changes. `splits` are
 * seconds; `incr` is uPlot's tick step in seconds.
 */
export function timeTicks(splits: number[], incr: number): string[] {
  let lastDay = '';
  return splits.map((sec) => {
    const d = new Date(sec * 1000);
    const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    const time =
      incr >= 86_400 ? '' : `${pad(d.getHours())}:${pad(d.getMinutes())}${incr < 60 ? `:${pad(d.getSeconds())}` : ''}`;
    const withDay = day !== lastDay;
    lastDay = day;
    if (!time) return day;
    return withDay ? `${time}\n${day}` : time;
  });
}

export function SeriesChart({
  points,
  title,
  latest,
}: {
  points: SeriesPoint[];
  title: string;
  /** the newest window as another view (the sensor table) has it: shown when newer than `points` */
  latest?: SeriesPoint | undefined;
}) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  const data: uPlot.AlignedData = [
    points.map((p) => p.windowEnd / 1000),
    points.map((p) => p.avg),
    points.map((p) => p.min),
    points.map((p) => p.max),
  ];

  useEffect(() => {
    const host = el.current;
    if (!host) return;
    const width = Math.max(200, host.clientWidth);
    const opts: uPlot.Options = {
      width,
      height: 220,
      scales: { x: { time: true } },
      legend: { live: true },
      series: [
        { value: (_u, v) => (v == null ? '–' : formatTime(v * 1000)) },
        { label: 'avg', stroke: '#1f5fbf', width: 2, value: (_u, v) => formatValue(v) },
        { label: 'min', stroke: '#6b8fc7', width: 1, dash: [4, 3], value: (_u, v) => formatValue(v) },
        { label: 'max', stroke: '#6b8fc7', width: 1, dash: [4, 3], value: (_u, v) => formatValue(v) },
      ],
      bands: [{ series: [3, 2], fill: 'rgba(31, 95, 191, 0.14)' }],
      axes: [
        // 24-hour labels at least 90 px apart (the default am/pm templates overlapped at 1 h)
        { space: 90, values: (_u, splits, _axis, _space, incr) => timeTicks(splits, incr), size: 56 },
        { values: (_u, splits) => splits.map((v) => formatValue(v)) },
      ],
    };
    const u = new uPlot(opts, data, host);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, host.clientWidth), height: 220 }));
    ro.observe(host);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // created once per mounted chart; data updates go through setData below
  }, []);

  useEffect(() => {
    plot.current?.setData(data);
  });

  const tail = points[points.length - 1];
  const last = latest && (!tail || latest.windowEnd >= tail.windowEnd) ? latest : tail;
  return html`
    <figure class="chart">
      <figcaption>${title}${last ? html` <span class="muted">latest avg ${formatValue(last.avg)} (min ${formatValue(last.min)}, max ${formatValue(last.max)})</span>` : null}</figcaption>
      <div ref=${el} class="chart-canvas" role="img" aria-label=${`Window averages of ${title} with min–max band, ${points.length} windows`}></div>
      ${points.length === 0 ? html`<p class="muted">No windows in this range.</p>` : null}
    </figure>
  `;
}
