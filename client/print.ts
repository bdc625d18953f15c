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

const plural = (k: number, word: string): string => `${k} ${word}${k === 1 ? '' : 's'}`;

/**
 * The job's current parallelism (a reactive rescale changes it), and each vertex's when they
 * differ: `3 (source 1, window 3, sink 1)`.
 */
function parallelismOf(d: JobDetails): string {
  const p = String(d.job.parallelism);
  const vs = d.vertices;
  if (vs.every((v) => v.parallelism === vs[0].parallelism)) return p;
  return `${p} (${vs.map((v) => `${v.id} ${v.parallelism}`).join(', ')})`;
}

/**
 * The readable job summary: attempt, parallelism, counts and where the results went, checkpoints, failure and
 * the exceptions (failures and restarts, newest last). Counters are the current attempt's.
 */
export function summaryLines(d: JobDetails): string[] {
  const t = d.totals;
  const attempt = d.job.attempt || 1;
  const secs = d.job.endedAtMs
    ? ((d.job.endedAtMs - d.job.createdAtMs) / 1000).toFixed(1)
    : ((Date.now() - d.job.createdAtMs) / 1000).toFixed(1);
  const lines = [
    `Job ${d.job.name} (${d.job.jobId}) ${d.job.state} after ${secs} s`,
    `  attempt           ${attempt}${attempt > 1 ? ` (${plural(attempt - 1, 'restart')})` : ''}`,
    `  parallelism       ${parallelismOf(d)}`,
  ];
  if (attempt > 1)
    lines.push(`  counters of attempt ${attempt} (a restored attempt counts only what it processed itself)`);
  lines.push(
    `  readings read     ${n(t.readingsIn)}${d.vertices.some((v) => v.name === 'Source: file') ? ` from ${n(t.linesRead)} lines` : ''}`,
    `  rejected          ${n(t.rejected)}  -> ${d.outputs.deadLetters}`,
    `  filtered out      ${n(t.filtered)}`,
    `  late (dropped)    ${n(t.late)}  -> ${d.outputs.late}`,
    `  sensors (keys)    ${n(t.sensors)}`,
  );
  if (d.vertices.some((v) => v.id === 'window' && v.name.startsWith('Detect')))
    lines.push(`  alerts written    ${n(t.resultsWritten)}  -> ${d.outputs.results}`);
  else if (d.vertices.some((v) => v.id === 'window' && v.name.startsWith('Running aggregate')))
    lines.push(`  updates written   ${n(t.resultsWritten)}  -> ${d.outputs.results}`);
  else if (d.vertices.some((v) => v.id === 'window')) {
    // rollup stages (vertices window-2…): each one's windows, the last one's go to the results
    const rollups = d.vertices.filter((v) => /^window-\d+$/.test(v.id));
    lines.push(`  windows emitted   ${n(t.windowsEmitted)}${rollups.length === 0 ? `  -> ${d.outputs.results}` : ''}`);
    rollups.forEach((v, i) => {
      const windows = d.tasks
        .filter((task) => task.vertex === v.id)
        .reduce((a, task) => a + (task.counters?.windowsEmitted ?? 0), 0);
      const by = /^Rollup by (.*?):/.exec(v.name)?.[1] ?? v.id;
      const to = i === rollups.length - 1 ? `  -> ${d.outputs.results}` : '';
      lines.push(`  rollup windows    ${n(windows)} by ${by}${to}`);
    });
  } else lines.push(`  rows written      ${n(t.resultsWritten)}  -> ${d.outputs.results}`);
  const c = d.checkpoints;
  if (c) {
    const latest = c.latest
      ? `, latest #${c.latest.id} (${c.latest.durationMs} ms, ${(c.latest.stateBytes / 1024).toFixed(1)} KiB)`
      : '';
    const aborted = typeof c.aborted === 'number' && c.aborted > 0 ? `, ${n(c.aborted)} aborted` : '';
    const all = d.job.attempt > 1 ? ' (all attempts)' : '';
    lines.push(`  checkpoints       ${n(c.completed)} completed, ${n(c.failed)} failed${aborted}${all}${latest}`);
  }
  if (d.fromSavepoint) lines.push(`  restored from     savepoint ${d.fromSavepoint}`);
  if (d.stoppedWithSavepoint) lines.push(`  stopped with      savepoint ${d.stoppedWithSavepoint}`);
  // a CREATED job's failure is why it waits ("waiting for slots: needs 3, 2 free")
  if (d.job.failure) lines.push(d.job.state === 'CREATED' ? `  ${d.job.failure}` : `  failure: ${d.job.failure}`);
  const exceptions = d.exceptions ?? [];
  if (exceptions.length > 0) {
    lines.push(`  exceptions        ${exceptions.length} (newest last)`);
    for (const e of exceptions) {
      const restart = typeof e.restartDelayMs === 'number' ? `; restart after ${e.restartDelayMs} ms` : '';
      lines.push(`    ${fmtTime(e.timeMs)}  attempt ${e.attempt}  ${e.reason}${restart}`);
    }
  }
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

/** `retained` is true for a FAILED job's retained checkpoint; older JobManagers leave it out (= savepoint). */
const kindOf = (s: SavepointInfo): string =>
  (s as SavepointInfo & { retained?: boolean }).retained === true ? 'retained' : 'savepoint';

/** `fluxo savepoints`: savepoints and FAILED jobs' retained checkpoints, with a KIND column. */
export function printSavepoints(list: SavepointInfo[]): void {
  if (list.length === 0) {
    process.stdout.write('no savepoints\n');
    return;
  }
  const rows = [['SAVEPOINT ID', 'KIND', 'JOB', 'CREATED', 'PARALLELISM', 'SIZE']];
  for (const s of list)
    rows.push([s.savepointId, kindOf(s), s.jobName, fmtTime(s.createdAtMs), String(s.parallelism), kib(s.stateBytes)]);
  process.stdout.write(table(rows));
}
