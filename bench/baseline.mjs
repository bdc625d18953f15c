#!/usr/bin/env node
// The single-threaded loop a user would write instead of Fluxo: the benchmark baseline, and an
// independent reference for tests of the room-temperature style job.
//
//   node bench/baseline.mjs [FILE] [--window-ms 60000] [--out-of-order-ms 2000] [--windows-out FILE]
//
// FILE (default bench/data/readings-2m.csv) holds `sensorId,timestampMs,temperature` lines.
// Per sensor, tumbling event-time windows [start, start + windowMs) with count/avg/min/max.
// Watermark W = (max timestamp seen) - outOfOrderMs. A window fires once W >= its end, which is
// Flink's rule (watermark = maxTs - outOfOrderness - 1 ms fires [start, end) at end - 1). A reading
// whose window has already fired is late: counted in `late`, not aggregated. End of input fires
// every remaining window.
//
// Prints one JSON object on stdout. The checksum fields are integers that do not depend on the
// order windows fire in, so another engine can reproduce them exactly:
//   sumCount     Σ count over windows (= readings - late)
//   sumAvgCenti  Σ avg in hundredths, avg = round(sumCenti / count) rounding halves up; sumCenti is the
//                window's exact sum in hundredths (inputs have 2 decimals), so no float-order effects
//   sumMinCenti, sumMaxCenti, sumTempCenti  Σ min, Σ max, Σ of all aggregated temperatures, in hundredths
// With --windows-out, every fired window is written as
// `sensorId,windowStart,windowEnd,count,avg,min,max` (avg rounded to 2 decimals), in firing order.
import { createReadStream, createWriteStream } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
let file = resolve(dirname(fileURLToPath(import.meta.url)), 'data/readings-2m.csv');
let windowMs = 60_000;
let outOfOrderMs = 2000;
let windowsOut;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--window-ms') windowMs = Number(args[++i]);
  else if (a === '--out-of-order-ms') outOfOrderMs = Number(args[++i]);
  else if (a === '--windows-out') windowsOut = args[++i];
  else if (a.startsWith('--')) {
    process.stderr.write(`baseline: unknown option ${a}\n`);
    process.exit(2);
  } else file = resolve(a);
}

const started = performance.now();
/** @type {Map<string, Map<number, {count: number, sum: number, min: number, max: number}>>} */
const windows = new Map();
let readings = 0;
let late = 0;
let malformed = 0;
let maxTs = Number.NEGATIVE_INFINITY;
let firedUpTo = Number.NEGATIVE_INFINITY; // every window with end <= firedUpTo has fired
const totals = { windows: 0, sumCount: 0, sumAvgCenti: 0, sumMinCenti: 0, sumMaxCenti: 0, sumTempCenti: 0 };
const sink = windowsOut ? createWriteStream(windowsOut) : undefined;
let sinkBuf = [];

function emit(sensor, start, acc) {
  // inputs have 2 decimals, so the float sum rounds back to its exact value in hundredths; the
  // average is taken from that, so it does not depend on float summation order
  const sumCenti = Math.round(acc.sum * 100);
  const avgCenti = Math.round(sumCenti / acc.count);
  totals.windows++;
  totals.sumCount += acc.count;
  totals.sumAvgCenti += avgCenti;
  totals.sumMinCenti += Math.round(acc.min * 100);
  totals.sumMaxCenti += Math.round(acc.max * 100);
  totals.sumTempCenti += sumCenti;
  if (sink) {
    const avg = (avgCenti / 100).toFixed(2);
    sinkBuf.push(
      `${sensor},${start},${start + windowMs},${acc.count},${avg},${acc.min.toFixed(2)},${acc.max.toFixed(2)}\n`,
    );
    if (sinkBuf.length >= 10_000) {
      sink.write(sinkBuf.join(''));
      sinkBuf = [];
    }
  }
}

/** Fires every window whose end is <= watermark. */
function fire(watermark) {
  for (const [sensor, perSensor] of windows) {
    for (const [start, acc] of perSensor) {
      if (start + windowMs <= watermark) {
        emit(sensor, start, acc);
        perSensor.delete(start);
      }
    }
    if (perSensor.size === 0) windows.delete(sensor);
  }
  firedUpTo = watermark;
}

function onLine(line) {
  const c1 = line.indexOf(',');
  const c2 = line.indexOf(',', c1 + 1);
  if (c1 < 0 || c2 < 0) {
    if (line.trim() !== '') malformed++;
    return;
  }
  const sensor = line.slice(0, c1);
  const ts = Number(line.slice(c1 + 1, c2));
  const temp = Number(line.slice(c2 + 1));
  if (!Number.isFinite(ts) || !Number.isFinite(temp)) {
    malformed++;
    return;
  }
  readings++;
  const start = ts - (((ts % windowMs) + windowMs) % windowMs);
  if (start + windowMs <= firedUpTo) {
    late++;
    return;
  }
  let perSensor = windows.get(sensor);
  if (perSensor === undefined) {
    perSensor = new Map();
    windows.set(sensor, perSensor);
  }
  const acc = perSensor.get(start);
  if (acc === undefined) perSensor.set(start, { count: 1, sum: temp, min: temp, max: temp });
  else {
    acc.count++;
    acc.sum += temp;
    if (temp < acc.min) acc.min = temp;
    if (temp > acc.max) acc.max = temp;
  }
  if (ts > maxTs) {
    maxTs = ts;
    const watermark = maxTs - outOfOrderMs;
    // only scan when the watermark passes a window end
    if (Math.floor(watermark / windowMs) > Math.floor(firedUpTo / windowMs)) fire(watermark);
  }
}

let carry = '';
for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
  const text = carry + chunk;
  let from = 0;
  let nl = text.indexOf('\n', from);
  while (nl >= 0) {
    onLine(text.charCodeAt(nl - 1) === 13 ? text.slice(from, nl - 1) : text.slice(from, nl));
    from = nl + 1;
    nl = text.indexOf('\n', from);
  }
  carry = text.slice(from);
}
if (carry !== '') onLine(carry);
fire(Number.POSITIVE_INFINITY); // end of input: final watermark
if (sink) {
  sink.end(sinkBuf.join(''));
  await new Promise((r) => sink.on('finish', r));
}

const elapsedMs = performance.now() - started;
const result = {
  file,
  windowMs,
  outOfOrderMs,
  readings,
  late,
  malformed,
  windows: totals.windows,
  checksum: {
    sumCount: totals.sumCount,
    sumAvgCenti: totals.sumAvgCenti,
    sumMinCenti: totals.sumMinCenti,
    sumMaxCenti: totals.sumMaxCenti,
    sumTempCenti: totals.sumTempCenti,
  },
  elapsedMs: Math.round(elapsedMs),
  readingsPerSec: Math.round(readings / (elapsedMs / 1000)),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
