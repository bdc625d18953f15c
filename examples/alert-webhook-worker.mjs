#!/usr/bin/env node
// An example BullMQ worker for Fluxo's alert queue: it POSTs each alert as JSON to a webhook
// (Slack-style incoming webhooks, an HTTP endpoint of your own, ...). A failed POST (network
// error, or an HTTP status other than 2xx) fails the attempt, and BullMQ retries it with
// exponential backoff (the sink's `attempts`, default 5, and `backoffMs`, default 1000); after the
// last failure the job stays in the queue's failed set.
//
//   WEBHOOK_URL=https://example.org/hook node examples/alert-webhook-worker.mjs [queue]
//
// Settings (environment): WEBHOOK_URL (required), REDIS_URL (default redis://127.0.0.1:6379),
// TIMEOUT_MS (per POST; default 10000). The job id rides along as the Idempotency-Key header,
// so a receiver can drop the repeat of a POST whose answer was lost.
import { Worker } from 'bullmq';

const queue = process.argv[2] ?? 'alerts';
const webhook = process.env.WEBHOOK_URL;
if (!webhook) {
  process.stderr.write('alert-webhook-worker: set WEBHOOK_URL to the endpoint alerts are posted to\n');
  process.exit(2);
}
const timeoutMs = Number(process.env.TIMEOUT_MS ?? 10_000);
const redis = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');

const worker = new Worker(
  queue,
  async (job) => {
    const res = await fetch(webhook, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': String(job.id) },
      body: JSON.stringify(job.data),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) throw new Error(`webhook answered ${res.status}`);
  },
  {
    connection: { host: redis.hostname, port: Number(redis.port || 6379), password: redis.password || undefined },
  },
);

// retries: each alert job carries the sink's `attempts` and exponential `backoff` (bullmq sink
// options), so BullMQ retries a failed POST by itself; here we only report
worker.on('failed', (job, err) => {
  if (!job) return;
  const last = job.attemptsMade >= (job.opts.attempts ?? 1);
  process.stderr.write(
    `alert ${job.id}: ${err.message}${last ? '; giving up' : `; attempt ${job.attemptsMade}, will retry`}\n`,
  );
});
worker.on('completed', (job) => process.stdout.write(`posted alert ${job.id}\n`));
worker.on('error', (err) => process.stderr.write(`alert-webhook-worker: ${err.message}\n`));

const stop = async () => {
  await worker.close();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
process.stderr.write(`alert-webhook-worker: queue ${queue} -> ${webhook}\n`);
