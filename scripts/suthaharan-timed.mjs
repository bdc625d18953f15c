// Derives the shipped Suthaharan example inputs (examples/data/suthaharan_*_timed.csv.gz) from the
// stdlib-js CSVs in the team's shared data (see examples/data/NOTICE.md for provenance):
// - prepends a column `time`: ISO 8601 UTC, origin + reading × 5 s (the data has no timestamp
//   column; the source states a 5-second interval; the origin is the stated date at 00:00 UTC);
// - orders the rows by (reading, mote_id), so the motes' readings interleave in event-time order
//   (the originals list each mote's readings in turn, which a watermarked stream would see as late);
// - keeps every other cell's text exactly as published.
// Usage: node scripts/suthaharan-timed.mjs <dir with suthaharan_*_hop_data.csv> <out dir>
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const [from = '../shared/data', to = 'examples/data'] = process.argv.slice(2);
const sets = [
  { name: 'single_hop', origin: Date.UTC(2010, 4, 9) },
  { name: 'multi_hop', origin: Date.UTC(2010, 6, 10) },
];
for (const { name, origin } of sets) {
  const lines = readFileSync(join(from, `suthaharan_${name}_data.csv`), 'utf8').split('\n');
  const header = lines[0].trim();
  const rows = lines
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const cells = l.trim().split(',');
      return { reading: Number(cells[0]), mote: Number(cells[1]), line: l.trim() };
    });
  rows.sort((a, b) => a.reading - b.reading || a.mote - b.mote);
  const out = rows.map((r) => `${new Date(origin + r.reading * 5000).toISOString()},${r.line}`);
  // zlib writes no file name and mtime 0: the same input gives the same bytes
  const csv = `time,${header}\n${out.join('\n')}\n`;
  writeFileSync(join(to, `suthaharan_${name}_timed.csv.gz`), gzipSync(csv, { level: 9 }));
  process.stdout.write(`suthaharan_${name}_timed.csv.gz: ${rows.length} rows\n`);
}
