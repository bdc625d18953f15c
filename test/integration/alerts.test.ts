/**
 * Alert delivery through BullMQ on a private redis-server: the bullmq sink queues alerts, the
 * example worker (examples/alert-webhook-worker.mjs, a real process) posts each one to a webhook
 * served by this test, retrying a failed POST with backoff, and `tailAlerts` (`fluxo alerts tail`)
 * prints them.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tailAlerts } from '../../client/alerts.js';
import { BullMqSink, bullJobId } from '../../core/sinks/bullmq-sink.js';
import type { Row } from '../../core/spec/types.js';
import { REPO_ROOT, waitFor } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const alerts: Row[] = [
  { sensor: 's1', ts: 1717200001000, value: 31, rule: 'jump', detail: '+6.0 °C' },
  { sensor: 's2', ts: 1717200002000, value: 12, rule: 'zscore', detail: '4.1 sd' },
  { sensor: 's3', ts: 1717200003000, value: 40, rule: 'rate', detail: '9 °C/min' },
];

describe('alert delivery through BullMQ', () => {
  let redis: TestRedis;
  let server: Server;
  let webhook: string;
  const posts: { key: string; body: Row; status: number }[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    let failuresLeft = 2; // s2's first two POSTs fail
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        const alert = JSON.parse(body) as Row;
        const status = alert.sensor === 's2' && failuresLeft-- > 0 ? 500 : 204;
        posts.push({ key: String(req.headers['idempotency-key']), body: alert, status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    webhook = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterAll(async () => {
    server?.close();
    await redis?.stop();
  });

  it('posts each alert once to the webhook, retrying failures, and tail prints them', async () => {
    const sink = new BullMqSink({ type: 'bullmq', queue: 'alerts', backoffMs: 100 }, 'spikes', redis.url, () => {});
    for (const a of alerts) sink.processElement(a);
    await sink.endOfInput();

    const worker = spawn(process.execPath, [join(REPO_ROOT, 'examples/alert-webhook-worker.mjs'), 'alerts'], {
      env: { ...process.env, WEBHOOK_URL: webhook, REDIS_URL: redis.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    worker.stdout.on('data', (d) => {
      out += d;
    });
    worker.stderr.on('data', (d) => {
      out += d;
    });
    try {
      await waitFor(async () => posts.filter((p) => p.status === 204).length >= 3, {
        timeoutMs: 30_000,
        message: () => `3 alerts posted; posts ${JSON.stringify(posts)}\n${out}`,
      });
      await new Promise((r) => setTimeout(r, 300)); // a repeated POST would arrive by now
    } finally {
      worker.kill('SIGTERM');
    }
    const ok = posts.filter((p) => p.status === 204);
    expect(ok.map((p) => p.body).sort((a, b) => String(a.sensor).localeCompare(String(b.sensor)))).toEqual(alerts);
    expect(ok.map((p) => p.key).sort()).toEqual(alerts.map((a) => bullJobId('spikes', a)).sort());
    // s2 failed twice, then succeeded on the third attempt
    expect(posts.filter((p) => p.body.sensor === 's2').map((p) => p.status)).toEqual([500, 500, 204]);
    expect(out).toMatch(/alert spikes\|s2\|1717200002000\|zscore: webhook answered 500; attempt 1, will retry/);

    // fluxo alerts tail: the three alerts, with their ids and states
    const ac = new AbortController();
    let printed = '';
    const tail = tailAlerts({ queue: 'alerts', redisUrl: redis.url }, ac.signal, (s) => {
      printed += s;
    });
    await waitFor(async () => printed.split('\n').filter((l) => l !== '').length >= 3, {
      timeoutMs: 10_000,
      message: () => `tail printed ${printed}`,
    });
    ac.abort();
    await tail;
    const lines = printed
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; state: string; alert: Row });
    expect(lines.map((l) => l.id).sort()).toEqual(alerts.map((a) => bullJobId('spikes', a)).sort());
    expect(lines.every((l) => l.state === 'completed')).toBe(true);
  }, 60_000);
});
