/**
 * `fluxo alerts tail <queue>`: follows a BullMQ alert queue (the `bullmq` sink's), printing each
 * alert as one JSON line on stdout: the ones already queued first (oldest first, any state), then
 * new ones as they are added, until SIGINT/SIGTERM.
 */
import { type Job, Queue, QueueEvents } from 'bullmq';
import { bullConnection } from '../core/sinks/bullmq-sink.js';

/** One printed line: the job id, its state and the alert. */
function line(job: Job, state: string): string {
  return `${JSON.stringify({ id: job.id, state, alert: job.data })}\n`;
}

/**
 * Prints the queue's alerts, then follows it until `signal` aborts.
 * @param o.existing print the alerts already in the queue first. Default true
 */
export async function tailAlerts(
  o: { queue: string; redisUrl: string; existing?: boolean },
  signal: AbortSignal,
  write: (s: string) => void = (s) => process.stdout.write(s),
): Promise<void> {
  const connection = bullConnection(o.redisUrl);
  const queue = new Queue(o.queue, { connection });
  const events = new QueueEvents(o.queue, { connection });
  const seen = new Set<string>();
  try {
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    events.on('added', ({ jobId }) => {
      if (seen.has(jobId)) return;
      seen.add(jobId);
      void queue.getJob(jobId).then(async (job) => {
        if (job) write(line(job, await job.getState()));
      });
    });
    if (o.existing !== false) {
      const states = ['completed', 'failed', 'active', 'waiting', 'delayed'] as const;
      const jobs: { job: Job; state: string }[] = [];
      for (const state of states) for (const job of await queue.getJobs([state])) jobs.push({ job, state });
      jobs.sort((a, b) => a.job.timestamp - b.job.timestamp);
      for (const { job, state } of jobs) {
        if (job.id === undefined || seen.has(job.id)) continue;
        seen.add(job.id);
        write(line(job, state));
      }
    }
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    await events.close().catch(() => {});
    await queue.close().catch(() => {});
  }
}
