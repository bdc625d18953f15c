/**
 * A whole job over a real ThingSpeak export, run in-process with runJobLocally (real file source,
 * tasks, codec, channels, window operator, file sinks): the envmonitor channel's 17,819 updates,
 * melted into one reading per field, hourly tumbling windows per sensor (`envmonitor:<field>`).
 * The expected rows come from an independent model (test/support/window-oracle.ts) fed by a naive
 * parse of the same CSV; the 331 updates whose light_level is "()" must be dead letters.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runJobLocally } from '../../../core/runtime/local.js';
import { parseJobSpec } from '../../../core/spec/schema.js';
import { feedFromExport, readExport } from '../../support/thingspeak-feed.js';
import { diffRows, type OracleReading, type OracleRow, tumblingOracle } from '../../support/window-oracle.js';

const data = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples', 'data');
const FILE = 'thingspeak_envmonitor_feeds.csv.gz';
const HOUR = 3_600_000;
const B = 60_000;

/** The readings the job should see, and the file line numbers that should be rejected. */
function expected(): { readings: OracleReading[]; rejectedLines: number[] } {
  const { header, rows } = readExport(join(data, FILE));
  const fields = header.slice(2, 6); // temperature, humidity, light_level, tilt_status
  const readings: OracleReading[] = [];
  const rejectedLines: number[] = [];
  rows.forEach((r, i) => {
    const cells = r.slice(2, 6);
    if (cells.some((c) => c !== '' && !Number.isFinite(Number(c)))) {
      rejectedLines.push(i + 2);
      return;
    }
    const ts = Date.parse(r[0] as string);
    cells.forEach((c, k) => {
      if (c !== '') readings.push({ key: `envmonitor:${fields[k]}`, ts, value: Number(c) });
    });
  });
  return { readings, rejectedLines };
}

describe('thingspeak-csv in a whole job', () => {
  it.each([1, 2])(
    'hourly windows per field match the oracle, malformed updates are dead letters (parallelism %i)',
    async (p) => {
      const dir = mkdtempSync(join(tmpdir(), 'fluxo-thingspeak-'));
      const spec = parseJobSpec(
        {
          name: 'thingspeak',
          parallelism: p,
          source: {
            type: 'file',
            format: 'thingspeak-csv',
            path: FILE,
            channel: 'envmonitor',
            melt: true,
            watermark: { outOfOrdernessMs: B },
          },
          steps: [
            { keyBy: 'sensorId' },
            { window: { type: 'tumbling', sizeMs: HOUR } },
            { aggregate: { count: 'count()', avg: 'avg(value)', min: 'min(value)', max: 'max(value)' } },
          ],
          sink: { type: 'file', path: join(dir, 'out.jsonl') },
        },
        { baseDir: data },
      );
      await runJobLocally(spec);
      const lines = (f: string) =>
        readFileSync(join(dir, f), 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l));
      const rows = lines('out.jsonl') as OracleRow[];
      const dead = lines('out.deadletter.jsonl') as { reason: string; source: string }[];

      const { readings, rejectedLines } = expected();
      const oracle = tumblingOracle(readings, HOUR, B);
      expect(oracle.late).toBe(0);
      expect(rejectedLines).toHaveLength(331);
      expect(diffRows(rows, oracle.rows, 1e-9)).toEqual([]);
      expect(rows.length).toBeGreaterThan(400);
      expect(dead.map((d) => d.source).sort()).toEqual(rejectedLines.map((n) => `${FILE}:${n}`).sort());
      expect(new Set(dead.map((d) => d.reason))).toEqual(
        new Set(['field3 (light_level): expected a number, got "()"']),
      );
      expect(lines('out.late.jsonl')).toEqual([]);
    },
    120_000,
  );

  it('the JSON feed made from the same export gives the same windows; dead letters name the feeds entry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fluxo-thingspeak-'));
    // channel metadata: the id the CSV job uses and the export's own header names, nothing invented
    const { header } = readExport(join(data, FILE));
    const meta: Record<string, string> = { id: 'envmonitor' };
    header.slice(2, 6).forEach((h, k) => {
      meta[`field${k + 1}`] = h;
    });
    writeFileSync(join(dir, 'feed.json'), feedFromExport(join(data, FILE), meta, undefined, 2));
    const spec = parseJobSpec(
      {
        name: 'thingspeak-json',
        parallelism: 2,
        source: {
          type: 'file',
          format: 'thingspeak-json',
          path: 'feed.json',
          melt: true,
          watermark: { outOfOrdernessMs: B },
        },
        steps: [
          { keyBy: 'sensorId' },
          { window: { type: 'tumbling', sizeMs: HOUR } },
          { aggregate: { count: 'count()', avg: 'avg(value)', min: 'min(value)', max: 'max(value)' } },
        ],
        sink: { type: 'file', path: join(dir, 'out.jsonl') },
      },
      { baseDir: dir },
    );
    await runJobLocally(spec);
    const lines = (f: string) =>
      readFileSync(join(dir, f), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l));
    const { readings, rejectedLines } = expected();
    expect(diffRows(lines('out.jsonl') as OracleRow[], tumblingOracle(readings, HOUR, B).rows, 1e-9)).toEqual([]);
    const dead = lines('out.deadletter.jsonl') as { source: string }[];
    expect(dead.map((d) => d.source).sort()).toEqual(rejectedLines.map((n) => `feed.json:feeds[${n - 2}]`).sort());
  }, 120_000);
});
