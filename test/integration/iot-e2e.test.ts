/**
 * The IoT pipeline end to end, with failures (issue 4, tests): readings of the shipped energy data
 * set (examples/data/energydata_complete.csv.gz, UCI, CC BY 4.0) are published over MQTT with
 * QoS 1 to a private Mosquitto, `fluxo ingest mqtt` stores them in a 2-partition stream, and the
 * MQTT example job (examples/mqtt-readings.yaml: hourly stats per room) follows the stream on a
 * real cluster with exactly-once checkpoints every 250 ms. During the run the bridge is SIGKILLed
 * (and restarted), and the TaskManager running the sink SIGKILLs itself at the completion notice
 * of checkpoint 3 (fault injection). Once every reading is stored the job is drained.
 *
 * Expected, independently of the run: the stream holds each published reading exactly once, and
 * the committed rows equal a failure-free run of the same job (bounded) over the final stream; the
 * rows' counts per (room, hour) equal the readings counted from the published messages.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { streamLayout } from '../../core/streams/layout.js';
import { startMosquitto, type TestMosquitto } from '../support/mosquitto.js';
import {
  REPO_ROOT,
  type RestJob,
  startCluster,
  startProcess,
  type TestCluster,
  waitFor,
} from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const ROOMS = ['kitchen', 'living', 'laundry', 'office', 'bath', 'north', 'ironing', 'teen', 'parents'];
const LINES = 3000; // 27,000 readings: several seconds of publishing, several checkpoints
type JobDoc = RestJob & { exceptions: { reason: string }[]; checkpoints: { completed: number } | null };

const rowsOf = (path: string): string[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .sort();

describe('IoT pipeline: MQTT → ingest → stream → job, with the bridge and a TaskManager killed', () => {
  let redis: TestRedis;
  let broker: TestMosquitto;
  let cluster: TestCluster;
  let dir: string;

  beforeAll(async () => {
    redis = await startRedis();
    broker = await startMosquitto();
    dir = mkdtempSync(join(tmpdir(), 'fluxo-iot-'));
    mkdirSync(join(dir, 'once'));
    cluster = await startCluster({ redisUrl: redis.url, clusterId: 'iot', taskmanagers: [] });
    await cluster.startTaskManager('tm-1', 1);
    await cluster.startTaskManager('tm-2', 1, {
      FLUXO_FAULTS: 'crash@checkpoint-complete:3',
      FLUXO_FAULTS_ONCE_DIR: join(dir, 'once'),
    });
    await cluster.startTaskManager('tm-3', 1);
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    await broker?.stop();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function spec(name: string, bounded: boolean): string {
    const s = parseYaml(readFileSync(join(REPO_ROOT, 'examples/mqtt-readings.yaml'), 'utf8')) as Record<
      string,
      unknown
    > & { source: Record<string, unknown> };
    const file = join(dir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        ...s,
        name,
        source: { ...s.source, bounded },
        checkpoint: { intervalMs: 250 },
        restart: { type: 'fixed-delay', attempts: 3, delayMs: 100 },
        sink: { type: 'file', path: join(dir, `${name}.jsonl`) },
      }),
    );
    return file;
  }

  it('commits exactly the rows of a failure-free run, from each reading stored once', async () => {
    const bridgeArgs = [
      'ingest',
      'mqtt',
      '--broker',
      broker.url,
      '--topic',
      'home/+/+/+/temperature',
      '--fields',
      'house,room,sensor',
      '--stream',
      'readings',
      '--partitions',
      '2',
      '--key',
      'room',
      '--redis',
      redis.url,
    ];
    let bridge = startProcess('ingest', bridgeArgs);
    const client = new Redis(redis.url);
    const layout = streamLayout('readings', 2);
    const stored = async () => (await client.xlen(layout.keys[0])) + (await client.xlen(layout.keys[1]));
    await waitFor(async () => (await client.hget(layout.metaKey, 'partitions')) === '2', {
      timeoutMs: 15_000,
      message: 'bridge started',
    });

    // the job follows the stream from the start
    const sub = await cluster.cli(['submit', spec('live', false)]);
    expect(sub.code, sub.stderr).toBe(0);
    const jobId = sub.stdout.trim();
    await cluster.waitForState(jobId, 'RUNNING', 30_000);

    // readings: one message per room and line, in file (= time) order; counted per (room, hour)
    const lines = gunzipSync(readFileSync(join(REPO_ROOT, 'examples/data/energydata_complete.csv.gz')))
      .toString('utf8')
      .split(/\r?\n/)
      .slice(1, LINES + 1);
    const perWindow = new Map<string, number>();
    const pub = await mqtt.connectAsync(broker.url, { clientId: 'iot-publisher' });
    const publish = async (from: number, to: number) => {
      for (const line of lines.slice(from, to)) {
        const cells = line.split(',').map((c) => c.replace(/^"|"$/g, '').trim());
        const ts = Date.parse(`${cells[0].replace(' ', 'T')}Z`);
        for (let r = 0; r < ROOMS.length; r++) {
          const temperature = Number(cells[3 + 2 * r]);
          const w = `h1|${ROOMS[r]}|${Math.floor(ts / 3_600_000) * 3_600_000}`;
          perWindow.set(w, (perWindow.get(w) ?? 0) + 1);
          await pub.publishAsync(`home/h1/${ROOMS[r]}/t${r}/temperature`, JSON.stringify({ ts, temperature }), {
            qos: 1,
          });
        }
      }
    };
    await publish(0, LINES / 3);
    await waitFor(async () => (await stored()) >= LINES, { timeoutMs: 30_000, message: 'some readings stored' });
    bridge.signal('SIGKILL');
    await bridge.waitForExit();
    await publish(LINES / 3, (2 * LINES) / 3); // queued by the broker for the bridge's session
    bridge = startProcess('ingest again', bridgeArgs);
    await publish((2 * LINES) / 3, LINES);
    const total = LINES * ROOMS.length;
    let have = 0;
    await waitFor(
      async () => {
        have = await stored();
        return have >= total;
      },
      { timeoutMs: 90_000, message: () => `all ${total} readings stored (have ${have})\n${bridge.describe()}` },
    );
    await pub.endAsync();

    // the TaskManager fault fired and the job failed over; then drain it
    await waitFor(
      async () => {
        const j = (await cluster.job(jobId)) as JobDoc;
        return j.job.attempt >= 2 && j.job.state === 'RUNNING';
      },
      { timeoutMs: 60_000, message: 'the job failed over after the TaskManager fault' },
    );
    const stop = await cluster.cli(['stop', jobId], 60_000);
    expect(stop.code, stop.stderr).toBe(0);
    const done = (await cluster.waitForState(jobId, 'FINISHED', 60_000)) as JobDoc;
    bridge.signal('SIGTERM');
    await bridge.waitForExit();
    expect(done.exceptions).toHaveLength(1);
    expect(done.exceptions[0].reason).toContain('TaskManager tm-2');

    // each reading stored once
    expect(await stored()).toBe(total);
    // the reference: the same job, bounded, over the final stream, without failures
    const ref = await cluster.cli(['submit', spec('reference', true)]);
    expect(ref.code, ref.stderr).toBe(0);
    await cluster.waitForState(ref.stdout.trim(), 'FINISHED', 60_000);
    const reference = rowsOf(join(dir, 'reference.jsonl'));
    expect(rowsOf(join(dir, 'live.jsonl'))).toEqual(reference);
    // and the rows count exactly the published readings per (room, hour)
    const counted = new Map(
      reference.map((l) => {
        const r = JSON.parse(l) as { key: string; windowStart: number; count: number };
        return [`${r.key}|${r.windowStart}`, r.count] as const;
      }),
    );
    expect(counted).toEqual(perWindow);
    client.disconnect();
  }, 300_000);
});
