#!/usr/bin/env node
// Deterministic benchmark input: `sensor-NNNNN,<timestamp ms>,<temperature °C, 2 decimals>` lines.
//
//   node bench/gen-data.mjs [--out bench/data/readings-2m.csv] [--lines 2000000] [--sensors 10000]
//                           [--seed 20240601] [--force]
//
// Event time: sensor s reports every 10 s, at START_MS + round * 10000 + s * 10000 / sensors, so
// lines are round-robin over sensors in event-time order. One reading in five is then delayed by
// 1..2000 ms (its timestamp moves back), so the file is out of order by at most 2000 ms: every
// timestamp is >= (max timestamp seen before it) - 2000. A watermark of maxTs - 2000 never makes a
// reading late.
//
// Temperature: a per-sensor base (18.00..25.99 °C), a slow triangle wave (±1.50 °C, 30 min period,
// phase per sensor) and noise (±0.30 °C). All arithmetic is on integers (hundredths of a degree), so
// the output is bit-identical on every machine for the same arguments. PRNG: mulberry32.
//
// A sidecar `<out without .csv>.json` records {lines, sensors, seed, bytes, sha256, ...}; when it
// matches the arguments and the file size, generation is skipped (use --force to regenerate).
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const START_MS = 1717200000000; // 2024-06-01T00:00:00Z
export const PERIOD_MS = 10_000;
export const MAX_DELAY_MS = 2000;
export const FORMAT_VERSION = 1;

/** mulberry32: a small, fast, seeded 32-bit PRNG. Returns a function giving uint32 values. */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** hundredths of a degree → `21.53`, `-0.07` */
function formatCenti(c) {
  const neg = c < 0;
  const abs = neg ? -c : c;
  const frac = abs % 100;
  return `${neg ? '-' : ''}${(abs - frac) / 100}.${frac < 10 ? '0' : ''}${frac}`;
}

/**
 * Writes the data file (and its sidecar) unless an up-to-date copy exists.
 * @returns the sidecar object, plus `skipped` and `elapsedMs`
 */
export async function generateReadings({ out, lines = 2_000_000, sensors = 10_000, seed = 20240601, force = false }) {
  const started = performance.now();
  const sidecarPath = `${out.replace(/\.csv$/, '')}.json`;
  const wanted = { formatVersion: FORMAT_VERSION, lines, sensors, seed };
  if (!force && existsSync(out) && existsSync(sidecarPath)) {
    try {
      const meta = JSON.parse(readFileSync(sidecarPath, 'utf8'));
      const same = Object.entries(wanted).every(([k, v]) => meta[k] === v);
      if (same && statSync(out).size === meta.bytes) {
        return { ...meta, skipped: true, elapsedMs: Math.round(performance.now() - started) };
      }
    } catch {
      // unreadable sidecar: regenerate
    }
  }

  mkdirSync(dirname(out), { recursive: true });
  const rand = mulberry32(seed);
  const ids = [];
  const baseCenti = new Int32Array(sensors);
  const phaseMs = new Int32Array(sensors);
  for (let s = 0; s < sensors; s++) {
    ids.push(`sensor-${String(s).padStart(5, '0')},`);
    baseCenti[s] = 1800 + (rand() % 800);
    phaseMs[s] = rand() % 1_800_000;
  }

  const tmp = `${out}.tmp`;
  const stream = createWriteStream(tmp);
  const hash = createHash('sha256');
  let bytes = 0;
  let minTs = Number.POSITIVE_INFINITY;
  let maxTs = Number.NEGATIVE_INFINITY;
  let delayed = 0;
  const CHUNK = 50_000;
  let buf = [];
  for (let i = 0; i < lines; i++) {
    const s = i % sensors;
    const round = (i - s) / sensors;
    let ts = START_MS + round * PERIOD_MS + Math.floor((s * PERIOD_MS) / sensors);
    if (rand() % 5 === 0) {
      ts -= 1 + (rand() % MAX_DELAY_MS);
      delayed++;
    }
    // triangle wave over a 30 min period, amplitude 150 centi-degrees
    const p = (ts - START_MS + phaseMs[s]) % 1_800_000;
    const wave = p < 900_000 ? -150 + Math.floor(p / 3000) : 150 - Math.floor((p - 900_000) / 3000);
    const noise = (rand() % 61) - 30;
    buf.push(`${ids[s]}${ts},${formatCenti(baseCenti[s] + wave + noise)}\n`);
    if (ts < minTs) minTs = ts;
    if (ts > maxTs) maxTs = ts;
    if (buf.length === CHUNK || i === lines - 1) {
      const chunk = buf.join('');
      buf = [];
      bytes += Buffer.byteLength(chunk);
      hash.update(chunk);
      if (!stream.write(chunk)) await once(stream, 'drain');
    }
  }
  stream.end();
  await once(stream, 'finish');
  renameSync(tmp, out);

  const meta = {
    ...wanted,
    bytes,
    sha256: hash.digest('hex'),
    format: 'sensor-NNNNN,<ts ms>,<temperature °C, 2 decimals>; LF line ends; no header',
    startMs: START_MS,
    periodMs: PERIOD_MS,
    maxOutOfOrderMs: MAX_DELAY_MS,
    delayedReadings: delayed,
    minTs,
    maxTs,
  };
  writeFileSync(sidecarPath, `${JSON.stringify(meta, null, 2)}\n`);
  return { ...meta, skipped: false, elapsedMs: Math.round(performance.now() - started) };
}

function parseArgs(argv) {
  const opts = { out: resolve(dirname(fileURLToPath(import.meta.url)), 'data/readings-2m.csv') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--force') opts.force = true;
    else if (a === '--out') opts.out = resolve(argv[++i]);
    else if (a === '--lines' || a === '--sensors' || a === '--seed') {
      const n = Number(argv[++i]);
      if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${a} needs a positive integer`);
      opts[a.slice(2)] = n;
    } else throw new Error(`unknown argument ${a}`);
  }
  return opts;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const result = await generateReadings(parseArgs(process.argv.slice(2)));
    process.stderr.write(
      `${result.skipped ? 'up to date' : 'wrote'} ${result.lines} lines, ${result.bytes} bytes in ${result.elapsedMs} ms\n`,
    );
  } catch (err) {
    process.stderr.write(`gen-data: ${err.message}\n`);
    process.exit(1);
  }
}
