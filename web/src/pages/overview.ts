/** Cluster overview: counts, TaskManagers and jobs; live via SSE /events, TaskManagers polled. */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { getJson, useEventStream, usePoll } from '../api.js';
import { Badge, ErrorNote, Live, useNow } from '../components/common.js';
import { formatBytes, formatDuration, formatTime } from '../format.js';
import type { JobSummary, Overview, TaskManagerInfo } from '../types.js';

export function OverviewPage() {
  const [overview, setOverview] = useState<Overview | null>(null);
  const [jobs, setJobs] = useState<JobSummary[] | null>(null);
  const conn = useEventStream('events', {
    overview: (d) => setOverview(d as Overview),
    jobs: (d) => setJobs((d as { jobs: JobSummary[] }).jobs),
  });
  const tms = usePoll(() => getJson<{ taskmanagers: TaskManagerInfo[] }>('taskmanagers'), 2000, []);
  const now = useNow();

  return html`
    <div class="page-head">
      <h1 tabindex="-1">Cluster overview</h1>
      <${Live} state=${conn} />
    </div>
    ${
      overview
        ? html`
      <dl class="stats" data-testid="overview-stats">
        <div><dt>TaskManagers</dt><dd>${overview.taskmanagers}</dd></div>
        <div><dt>Slots free / total</dt><dd>${overview.slotsFree} / ${overview.slotsTotal}</dd></div>
        <div><dt>Jobs running</dt><dd>${overview.jobsRunning}</dd></div>
        <div><dt>Created (waiting for slots)</dt><dd data-testid="jobs-created" title="Jobs in state CREATED">${overview.jobsCreated ?? (jobs ? jobs.filter((j) => j.state === 'CREATED').length : '–')}</dd></div>
        <div><dt>Finished</dt><dd>${overview.jobsFinished}</dd></div>
        <div><dt>Failed</dt><dd>${overview.jobsFailed}</dd></div>
        <div><dt>Canceled</dt><dd>${overview.jobsCanceled}</dd></div>
        <div><dt>Version</dt><dd>${overview.version}${overview.chaos ? html` <span class="badge warn">chaos</span>` : null}</dd></div>
      </dl>`
        : null
    }

    <section aria-labelledby="jobs-title">
      <h2 id="jobs-title">Jobs</h2>
      ${
        jobs === null
          ? html`<p>Waiting for the JobManager…</p>`
          : jobs.length === 0
            ? html`<p>No jobs yet. Submit one with <code>fluxo submit job.yaml</code>.</p>`
            : html`
        <div class="table-wrap">
          <table data-testid="jobs-table">
            <thead><tr><th scope="col">Name</th><th scope="col">Job id</th><th scope="col">State</th><th scope="col" class="num">Attempt</th><th scope="col">Started</th><th scope="col" class="num">Duration</th><th scope="col" class="num">Parallelism</th></tr></thead>
            <tbody>
              ${jobs.map(
                (j) => html`
                <tr key=${j.jobId} data-job-id=${j.jobId} data-state=${j.state}>
                  <td><a href=${`#/jobs/${encodeURIComponent(j.jobId)}`}>${j.name}</a></td>
                  <td><code>${j.jobId.slice(0, 8)}</code></td>
                  <td><${Badge} state=${j.state} />${j.failure ? html`<div class="small muted">${j.failure}</div>` : null}</td>
                  <td class="num">${j.attempt}</td>
                  <td>${formatTime(j.startedAtMs ?? j.createdAtMs)}</td>
                  <td class="num">${formatDuration(j.durationMs)}</td>
                  <td class="num">${j.parallelism}</td>
                </tr>`,
              )}
            </tbody>
          </table>
        </div>`
      }
    </section>

    <section aria-labelledby="tms-title">
      <h2 id="tms-title">TaskManagers</h2>
      <${ErrorNote} error=${tms.error} />
      ${
        tms.data
          ? html`
        <div class="table-wrap">
          <table data-testid="taskmanagers-table">
            <thead><tr><th scope="col">Id</th><th scope="col">Address</th><th scope="col">State</th><th scope="col" class="num">Slots used / total</th><th scope="col" class="num">Last heartbeat</th><th scope="col" class="num">Memory (RSS / heap)</th><th scope="col">Host / pid</th></tr></thead>
            <tbody>
              ${tms.data.taskmanagers.map(
                (t) => html`
                <tr key=${t.taskmanagerId} data-tm-id=${t.taskmanagerId} data-state=${t.state}>
                  <td>${t.taskmanagerId}</td>
                  <td><code>${t.controlAddress}</code></td>
                  <td><${Badge} state=${t.state} /></td>
                  <td class="num">
                    <span class="meter" role="img" aria-label=${`${t.slotsUsed} of ${t.slotsTotal} slots used`}>
                      <span style=${{ width: `${t.slotsTotal ? (100 * t.slotsUsed) / t.slotsTotal : 0}%` }}></span>
                    </span>
                    ${t.slotsUsed} / ${t.slotsTotal}
                  </td>
                  <td class="num">${formatDuration(Math.max(0, now - t.lastHeartbeatMs))} ago</td>
                  <td class="num">${formatBytes(t.rssBytes)}${t.heapUsedBytes !== undefined ? ` / ${formatBytes(t.heapUsedBytes)}` : ''}</td>
                  <td>${t.hostname ?? ''}${t.pid ? ` / ${t.pid}` : ''}</td>
                </tr>`,
              )}
            </tbody>
          </table>
        </div>`
          : tms.error
            ? null
            : html`<p>Loading…</p>`
      }
    </section>
  `;
}
