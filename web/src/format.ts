/** Display helpers: durations, times, sizes, rates, numbers. All pure. */

/** `1234` → `1.2 s`, `95_000` → `1 min 35 s`, `90_000_000` → `1 d 1 h`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  const neg = ms < 0;
  const a = Math.abs(ms);
  let s: string;
  if (a < 1000) s = `${Math.round(a)} ms`;
  else if (a < 60_000) s = `${(a / 1000).toFixed(a < 10_000 ? 1 : 0)} s`;
  else if (a < 3_600_000) s = `${Math.floor(a / 60_000)} min ${Math.floor((a % 60_000) / 1000)} s`;
  else if (a < 86_400_000) s = `${Math.floor(a / 3_600_000)} h ${Math.floor((a % 3_600_000) / 60_000)} min`;
  else s = `${Math.floor(a / 86_400_000)} d ${Math.floor((a % 86_400_000) / 3_600_000)} h`;
  return neg ? `−${s}` : s;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Local date and time, `2024-06-01 02:00:00` (plus `.123` when `ms`). */
export function formatTime(t: number | null | undefined, ms = false): string {
  if (t === null || t === undefined || !Number.isFinite(t)) return '–';
  const d = new Date(t);
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return ms ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
}

/** ISO form for `<time datetime>`. */
export function isoTime(t: number | null | undefined): string | undefined {
  return t === null || t === undefined || !Number.isFinite(t) ? undefined : new Date(t).toISOString();
}

export function formatBytes(b: number | null | undefined): string {
  if (b === null || b === undefined || !Number.isFinite(b)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = b;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 || v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** Records per second: `12.3k/s`. */
export function formatRate(r: number | null | undefined): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return '–';
  if (r >= 1e6) return `${(r / 1e6).toFixed(1)}M/s`;
  if (r >= 1e4) return `${(r / 1e3).toFixed(0)}k/s`;
  if (r >= 1e3) return `${(r / 1e3).toFixed(1)}k/s`;
  return `${r.toFixed(r < 10 ? 1 : 0)}/s`;
}

/** A count in few characters for tight spots: `950`, `12.3k`, `4.5M`. */
export function formatCompact(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US');
}

/** A sensor value with 2 decimals (the dashboard's unit-less numbers). */
export function formatValue(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return v.toFixed(2);
}

export function formatPercent(r: number | null | undefined): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return '–';
  return `${Math.round(r * 100)} %`;
}

/** Fill for a ratio in [0, 1]: green (idle) through amber to red (saturated); light, for dark text. */
export function ratioColour(r: number | null | undefined): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return 'hsl(210 15% 92%)';
  const x = Math.min(1, Math.max(0, r));
  return `hsl(${Math.round(130 - 130 * x)} 70% ${Math.round(85 - 10 * x)}%)`;
}

/** Colour of a heat-map value between lo and hi: blue (cold) → yellow → red (hot). */
export function heatColour(v: number | null, lo: number, hi: number): string {
  if (v === null || !Number.isFinite(v)) return 'hsl(0 0% 88%)';
  const x = hi > lo ? (v - lo) / (hi - lo) : 0.5;
  return `hsl(${Math.round(220 - 220 * Math.min(1, Math.max(0, x)))} 75% 72%)`;
}

export const STATE_CLASS: Record<string, string> = {
  RUNNING: 'ok',
  FINISHED: 'done',
  CREATED: 'neutral',
  RESTARTING: 'warn',
  FAILED: 'bad',
  CANCELED: 'neutral',
  ALIVE: 'ok',
  LOST: 'bad',
  COMPLETED: 'ok',
  IN_PROGRESS: 'warn',
  ABORTED: 'neutral',
};
