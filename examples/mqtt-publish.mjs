#!/usr/bin/env node
// Publishes the shipped energy data set (examples/data/energydata_complete.csv.gz, NOTICE.md) to
// an MQTT broker as a house of temperature sensors would: one message per room and reading, QoS 1,
// topic home/<house>/<room>/<sensor>/temperature, payload {"ts": <ms>, "temperature": <°C>}.
// It is the input of the MQTT → stream → job example (README, "MQTT ingestion").
//
//   node examples/mqtt-publish.mjs [--broker mqtt://127.0.0.1:1883] [--limit N]
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import mqtt from 'mqtt';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const broker = opt('--broker', 'mqtt://127.0.0.1:1883');
const limit = Number(opt('--limit', Number.POSITIVE_INFINITY));
const rooms = [
  'kitchen',
  'living-room',
  'laundry',
  'office',
  'bathroom',
  'outside-north',
  'ironing-room',
  'teenager-room',
  'parents-room',
];

const here = dirname(fileURLToPath(import.meta.url));
const lines = gunzipSync(readFileSync(join(here, 'data/energydata_complete.csv.gz')))
  .toString('utf8')
  .split(/\r?\n/);
const client = await mqtt.connectAsync(broker, { clientId: `fluxo-example-publisher-${process.pid}` });
let sent = 0;
for (const line of lines.slice(1)) {
  if (line.trim() === '' || sent >= limit) continue;
  const cells = line.split(',').map((c) => c.replace(/^"|"$/g, '').trim());
  const ts = Date.parse(`${cells[0].replace(' ', 'T')}Z`); // the data set has no zone: read as UTC
  for (let r = 0; r < rooms.length; r++) {
    const temperature = Number(cells[3 + 2 * r]); // T1..T9 are columns 3, 5, ..., 19
    await client.publishAsync(`home/h1/${rooms[r]}/t${r + 1}/temperature`, JSON.stringify({ ts, temperature }), {
      qos: 1,
    });
  }
  sent++;
}
await client.endAsync();
process.stderr.write(`mqtt-publish: ${sent} lines, ${sent * rooms.length} readings published to ${broker}\n`);
