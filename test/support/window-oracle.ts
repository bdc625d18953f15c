/**
 * An independent, deliberately naive model of a keyed tumbling-window aggregation with a
 * bounded-out-of-orderness watermark, following the rules of /work/shared/cases/README.md
 * (never Fluxo's own code):
 *
 * - one source partition; readings in arrival (file) order;
 * - W = max(timestamp seen) − B, −∞ before the first reading; rejected readings do not move it;
 * - window [s, e) with s = floor(ts / size) · size fires once W ≥ e; a reading whose window has
 *   fired when it arrives (e ≤ W, W taken before the reading itself) is late: dropped and counted;
 * - at the end every remaining window fires; a window without readings emits nothing.
 */

export interface OracleReading {
  key: string;
  ts: number;
  value: number;
}

export interface OracleRow {
  key: string;
  windowStart: number;
  windowEnd: number;
  count: number;
  avg: number;
  min: number;
  max: number;
}

export interface OracleResult {
  rows: OracleRow[];
  late: number;
  accepted: number;
}

export function tumblingOracle(
  readings: Iterable<OracleReading>,
  sizeMs: number,
  outOfOrdernessMs: number,
): OracleResult {
  let maxTs = Number.NEGATIVE_INFINITY;
  let late = 0;
  let accepted = 0;
  const windows = new Map<string, { key: string; start: number; n: number; sum: number; min: number; max: number }>();
  for (const r of readings) {
    const w = maxTs - outOfOrdernessMs;
    const start = Math.floor(r.ts / sizeMs) * sizeMs;
    const end = start + sizeMs;
    if (end <= w) {
      late++;
    } else {
      accepted++;
      const id = `${r.key}\u0000${start}`;
      let acc = windows.get(id);
      if (!acc) {
        acc = { key: r.key, start, n: 0, sum: 0, min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY };
        windows.set(id, acc);
      }
      acc.n++;
      acc.sum += r.value;
      if (r.value < acc.min) acc.min = r.value;
      if (r.value > acc.max) acc.max = r.value;
    }
    if (r.ts > maxTs) maxTs = r.ts;
  }
  const rows = [...windows.values()].map((a) => ({
    key: a.key,
    windowStart: a.start,
    windowEnd: a.start + sizeMs,
    count: a.n,
    avg: a.sum / a.n,
    min: a.min,
    max: a.max,
  }));
  return { rows: sortRows(rows), late, accepted };
}

/** Rows sorted by (key, windowStart): output is compared as a set. */
export function sortRows<T extends { key: string; windowStart: number }>(rows: T[]): T[] {
  return [...rows].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.windowStart - b.windowStart));
}

/**
 * Compares two row sets: same (key, window) pairs, equal count/min/max, avg within `tol`.
 * Returns a list of differences (at most `limit`), empty when they match.
 */
export function diffRows(actual: OracleRow[], expected: OracleRow[], tol: number, limit = 10): string[] {
  const out: string[] = [];
  const a = sortRows(actual);
  const e = sortRows(expected);
  if (a.length !== e.length) out.push(`row count ${a.length}, expected ${e.length}`);
  const byId = new Map(a.map((r) => [`${r.key}@${r.windowStart}`, r]));
  for (const x of e) {
    if (out.length >= limit) break;
    const y = byId.get(`${x.key}@${x.windowStart}`);
    if (!y) {
      out.push(`missing ${JSON.stringify(x)}`);
      continue;
    }
    byId.delete(`${x.key}@${x.windowStart}`);
    if (
      y.windowEnd !== x.windowEnd ||
      y.count !== x.count ||
      y.min !== x.min ||
      y.max !== x.max ||
      !(Math.abs(y.avg - x.avg) <= tol)
    ) {
      out.push(`got ${JSON.stringify(y)}, expected ${JSON.stringify(x)}`);
    }
  }
  for (const y of byId.values()) {
    if (out.length >= limit) break;
    out.push(`unexpected ${JSON.stringify(y)}`);
  }
  return out;
}
