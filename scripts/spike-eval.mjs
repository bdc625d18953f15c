// Scores spike alerts (the JSON lines a `detect` job writes) against the labelled heat events of
// a Suthaharan data set (examples/data/suthaharan_*_timed.csv[.gz], see NOTICE.md there).
//
// A labelled event is a maximal run of consecutive readings of one mote with label = 1:
// [first ts, last ts]. An alert (sensor, ts) matches an event when the sensor is the event's mote
// and first ts ≤ ts ≤ last ts + toleranceMs (default 0: the alerting reading is itself labelled).
//   precision = matched alerts / alerts       (over alert rows, and over distinct alerting readings)
//   recall    = events with ≥ 1 matched alert / events
// Printed overall and per rule.
// Usage: node scripts/spike-eval.mjs <alerts.jsonl> <labelled.csv[.gz]> [--tolerance-ms N] [--json]
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

/** Maximal runs of label = 1 per mote: [{ sensor, start, end, rows }], in file order per mote. */
export function labelledEvents(csvText) {
  const lines = csvText.split('\n').filter((l) => l.trim() !== '');
  const header = lines[0].split(',');
  const col = (n) => header.indexOf(n);
  const [iTime, iMote, iLabel] = [col('time'), col('mote_id'), col('label')];
  const byMote = new Map();
  for (const l of lines.slice(1)) {
    const c = l.split(',');
    const mote = c[iMote];
    if (!byMote.has(mote)) byMote.set(mote, []);
    byMote.get(mote).push({ ts: Date.parse(c[iTime]), label: c[iLabel] === '1' });
  }
  const events = [];
  for (const [sensor, rows] of byMote) {
    rows.sort((a, b) => a.ts - b.ts);
    let open = null;
    for (const r of rows) {
      if (r.label && !open) open = { sensor, start: r.ts, end: r.ts, rows: 0 };
      if (r.label) {
        open.end = r.ts;
        open.rows++;
      } else if (open) {
        events.push(open);
        open = null;
      }
    }
    if (open) events.push(open);
  }
  return events;
}

/** Precision and recall of `alerts` ([{ sensor, ts, rule }]) against `events`. */
export function score(alerts, events, toleranceMs = 0) {
  const matchOf = (a) =>
    events.findIndex((e) => e.sensor === a.sensor && a.ts >= e.start && a.ts <= e.end + toleranceMs);
  const one = (list) => {
    const hits = new Set();
    let matched = 0;
    const readings = new Map();
    for (const a of list) {
      const m = matchOf(a);
      if (m >= 0) {
        matched++;
        hits.add(m);
      }
      readings.set(`${a.sensor}|${a.ts}`, m >= 0);
    }
    const matchedReadings = [...readings.values()].filter(Boolean).length;
    return {
      alerts: list.length,
      matched,
      precision: list.length ? matched / list.length : 0,
      alertReadings: readings.size,
      readingPrecision: readings.size ? matchedReadings / readings.size : 0,
      events: events.length,
      detected: hits.size,
      recall: events.length ? hits.size / events.length : 0,
    };
  };
  const rules = [...new Set(alerts.map((a) => a.rule))].sort();
  return {
    all: one(alerts),
    byRule: Object.fromEntries(rules.map((r) => [r, one(alerts.filter((a) => a.rule === r))])),
  };
}

function readText(path) {
  const buf = readFileSync(path);
  return (buf[0] === 0x1f && buf[1] === 0x8b ? gunzipSync(buf) : buf).toString('utf8');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const args = process.argv.slice(2);
  const flag = (n) => args.indexOf(n);
  const tol = flag('--tolerance-ms') >= 0 ? Number(args[flag('--tolerance-ms') + 1]) : 0;
  const [alertsPath, labelledPath] = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--tolerance-ms');
  if (!alertsPath || !labelledPath) {
    process.stderr.write(
      'usage: node scripts/spike-eval.mjs <alerts.jsonl> <labelled.csv[.gz]> [--tolerance-ms N] [--json]\n',
    );
    process.exit(2);
  }
  const alerts = readText(alertsPath)
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
  const result = score(alerts, labelledEvents(readText(labelledPath)), tol);
  if (flag('--json') >= 0) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    const pct = (x) => `${(100 * x).toFixed(1)}%`;
    const line = (name, s) =>
      `${name.padEnd(8)} alerts ${String(s.alerts).padStart(5)}  precision ${pct(s.precision).padStart(6)} (${s.matched}/${s.alerts})` +
      `  readings ${String(s.alertReadings).padStart(5)} precision ${pct(s.readingPrecision).padStart(6)}` +
      `  recall ${pct(s.recall).padStart(6)} (${s.detected}/${s.events} events)\n`;
    let text = `labelled events: ${result.all.events}; tolerance ${tol} ms after an event's last labelled reading\n`;
    text += line('all', result.all);
    for (const [r, s] of Object.entries(result.byRule)) text += line(r, s);
    process.stdout.on('error', () => {}); // a closed pipe (| head) is not an error
    process.stdout.write(text);
  }
}
