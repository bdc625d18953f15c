import type { JobSummary, SavepointInfo, TaskManagerInfo } from '../core/rpc/index.js';
import type { JobDetails } from './jm-client.js';

const fmtTime = (ms: number): string =>
  ms
    ? new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z')
    : '-';
const n = (x: number | undefined): string => (x ?? 0).toLocaleString('en-US');

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return `${rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

export function printJobs(jobs: JobSummary[]): void {
  if (jobs.length === 0) {
    process.stdout.write('no jobs\n');
    return;
  }
  const rows = [['JOB ID', 'NAME', 'STATE', 'PARALLELISM', 'CREATED', 'ENDED']];
  for (const j of jobs)
    rows.push([j.jobId, j.name, j.state, String(j.parallelism), fmtTime(j.createdAtMs), fmtTime(j.endedAtMs)]);
  process.stdout.write(table(rows));
}

export function printTaskManagers(tms: TaskManagerInfo[]): void {
  if (tms.length === 0) {
    process.stdout.write('no taskmanagers registered\n');
    return;
  }
  const rows = [['ID', 'ADDRESS', 'STATE', 'SLOTS USED/TOTAL', 'LAST HEARTBEAT', 'RSS MB', 'PID']];
  for (const t of tms) {
    const ago = t.lastHeartbeatMs ? `${((Date.now() - t.lastHeartbeatMs) / 1000).toFixed(1)} s ago` : '-';
    rows.push([
      t.taskmanagerId,
      t.controlAddress,
      t.state,
      `${t.slotsUsed}/${t.slotsTotal}`,
      ago,
      (t.rssBytes / 1048576).toFixed(0),
      String(t.pid),
    ]);
  }
  process.stdout.write(table(rows));
}

/** The readable job summary: counts and where the results went. */
export function summaryLines(d: JobDetails): string[] {
  const t = d.totals;
  const secs = d.job.endedAtMs
    ? ((d.job.endedAtMs - d.job.createdAtMs) / 1000).toFixed(1)
    : ((Date.now() - d.job.createdAtMs) / 1000).toFixed(1);
  const lines = [
    `Job ${d.job.name} (${d.job.jobId}) ${d.job.state} after ${secs} s`,
    `  readings read     ${n(t.readingsIn)}${d.vertices.some((v) => v.name === 'Source: file') ? ` from ${n(t.linesRead)} lines` : ''}`,
    `  rejected          ${n(t.rejected)}  -> ${d.outputs.deadLetters}`,
    `  filtered out      ${n(t.filtered)}`,
    `  late (dropped)    ${n(t.late)}  -> ${d.outputs.late}`,
    `  sensors (keys)    ${n(t.sensors)}`,
  ];
  if (d.vertices.some((v) => v.id === 'window'))
    lines.push(`  windows emitted   ${n(t.windowsEmitted)}  -> ${d.outputs.results}`);
  else lines.push(`  rows written      ${n(t.resultsWritten)}  -> ${d.outputs.results}`);
  const c = d.checkpoints;
  if (c) {
    const latest = c.latest
      ? `, latest #${c.latest.id} (${c.latest.durationMs} ms, ${(c.latest.stateBytes / 1024).toFixed(1)} KiB)`
      : '';
    lines.push(`  checkpoints       ${n(c.completed)} completed, ${n(c.failed)} failed${latest}`);
  }
  if (d.fromSavepoint) lines.push(`  restored from     savepoint ${d.fromSavepoint}`);
  if (d.stoppedWithSavepoint) lines.push(`  stopped with      savepoint ${d.stoppedWithSavepoint}`);
  if (d.job.failure) lines.push(`  ${d.job.state === 'CREATED' ? 'waiting' : 'failure'}: ${d.job.failure}`);
  return lines;
}

export function printJobStatus(d: JobDetails): void {
  const out = [...summaryLines(d), '', 'TASKS'];
  const rows = [['TASK', 'TASKMANAGER', 'STATE', 'RECORDS IN', 'RECORDS OUT', 'WATERMARK']];
  for (const t of d.tasks) {
    const wm = t.counters?.watermark;
    rows.push([
      t.taskId,
      t.taskmanagerId,
      t.state,
      n(t.counters?.recordsIn),
      n(t.counters?.recordsOut),
      typeof wm === 'number' && Number.isFinite(wm) ? fmtTime(wm) : '-',
    ]);
  }
  process.stdout.write(`${out.join('\n')}\n${table(rows)}`);
  for (const t of d.tasks) if (t.error) process.stdout.write(`  ${t.taskId}: ${t.error}\n`);
}

const kib = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;

/** One savepoint, as `fluxo savepoint` and `fluxo stop --savepoint` report it. */
export function savepointLine(s: SavepointInfo): string {
  return `savepoint ${s.savepointId} of job ${s.jobName} (checkpoint ${s.checkpointId}, ${s.durationMs} ms, ${kib(s.stateBytes)})`;
}

export function printSavepoints(list: SavepointInfo[]): void {
  if (list.length === 0) {
    process.stdout.write('no savepoints\n');
    return;
  }
  const rows = [['SAVEPOINT ID', 'JOB', 'CREATED', 'PARALLELISM', 'SIZE']];
  for (const s of list)
    rows.push([s.savepointId, s.jobName, fmtTime(s.createdAtMs), String(s.parallelism), kib(s.stateBytes)]);
  process.stdout.write(table(rows));
}
