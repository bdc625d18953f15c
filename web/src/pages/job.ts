/**
 * Job page: state and actions (cancel, savepoint, kill a TaskManager with --chaos), the job graph,
 * watermarks, and tabs for checkpoints and exceptions/restarts. Live via SSE /jobs/:id/events
 * (`job` and `checkpoints` events every second).
 */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, getJson, mutate, useEventStream, usePoll } from '../api.js';
import { Badge, ErrorNote, Live, useNow } from '../components/common.js';
import { type ColourBy, JobGraph } from '../components/job-graph.js';
import { Tabs } from '../components/tabs.js';
import { formatBytes, formatCount, formatDuration, formatPercent, formatRate, formatTime, isoTime } from '../format.js';
import type { Checkpoints, JobDetail, Overview, TaskManagerInfo } from '../types.js';

const TABS = [
  { id: 'graph', label: 'Graph & watermarks' },
  { id: 'checkpoints', label: 'Checkpoints' },
  { id: 'exceptions', label: 'Exceptions & restarts' },
  { id: 'tasks', label: 'Tasks' },
];
const TERMINAL = new Set(['FINISHED', 'FAILED', 'CANCELED']);

export function JobPage({ jobId, tab }: { jobId: string; tab: string }) {
  const [detail, setDetail] = useState<JobDetail | null>(null);
  const [ckpts, setCkpts] = useState<Checkpoints | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [overview, setOverview] = useState<Overview | null>(null);
  const base = `jobs/${encodeURIComponent(jobId)}`;

  useEffect(() => {
    setDetail(null);
    setCkpts(null);
    setError(null);
    getJson<JobDetail>(base).then(setDetail, setError);
    getJson<Checkpoints>(`${base}/checkpoints`).then(setCkpts, () => {
      // not every JobManager version has it; the SSE stream fills it in
    });
    getJson<Overview>('overview').then(setOverview, () => {});
  }, [base]);

  const conn = useEventStream(`${base}/events`, {
    job: (d) => {
      setDetail(d as JobDetail);
      setError(null);
    },
    checkpoints: (d) => setCkpts(d as Checkpoints),
  });

  const current = TABS.some((t) => t.id === tab) ? tab : 'graph';
  if (!detail)
    return html`<h1 tabindex="-1">Job ${jobId}</h1>${error ? html`<${ErrorNote} error=${error} /><p><a href="#/">Back to the overview</a></p>` : html`<p>Loading…</p>`}`;
  const j = detail.job;
  const dash = detail.dashboard;
  const hasDashboard = !!dash && (!!dash.redisKeyPrefix || !!dash.alertsQueue);

  return html`
    <nav class="crumbs" aria-label="Breadcrumb"><a href="#/">Overview</a> › <span>${j.name}</span></nav>
    <div class="page-head">
      <h1 tabindex="-1" data-testid="job-name">${j.name}</h1>
      <span data-testid="job-state" data-state=${j.state}><${Badge} state=${j.state} /></span>
      <${Live} state=${conn} />
    </div>
    <dl class="stats">
      <div class="stat-id"><dt>Job id</dt><dd><code data-testid="job-id">${j.jobId}</code> <${CopyButton} text=${j.jobId} label="Copy the job id" /></dd></div>
      <div><dt>Attempt</dt><dd data-testid="job-attempt">${j.attempt}</dd></div>
      <div><dt>Duration</dt><dd>${formatDuration(j.durationMs)}</dd></div>
      <div><dt>Parallelism</dt><dd>${j.parallelism}</dd></div>
      <div><dt>Checkpoints</dt><dd data-testid="checkpoint-count" data-count=${ckpts?.counts.completed ?? 0}>${ckpts ? formatCount(ckpts.counts.completed) : '–'}</dd></div>
      <div><dt>Restarts</dt><dd data-testid="restart-count" data-count=${detail.exceptions?.length ?? 0}>${detail.exceptions?.length ?? 0}</dd></div>
    </dl>
    ${j.failure && j.state !== 'RUNNING' ? html`<p class="error" role="alert">${j.failure}</p>` : null}
    <${Actions} detail=${detail} base=${base} chaos=${overview?.chaos === true} />
    ${hasDashboard ? html`<p><a class="button-link" href=${`#/jobs/${encodeURIComponent(j.jobId)}/dashboard`} data-testid="dashboard-link">${TERMINAL.has(j.state) ? 'Open the dashboard' : 'Open the live dashboard'}</a></p>` : null}

    <${Tabs} label="Job details" tabs=${TABS} current=${current}
      onSelect=${(id: string) => {
        location.hash = `#/jobs/${encodeURIComponent(jobId)}${id === 'graph' ? '' : `/${id}`}`;
      }}>
      ${current === 'graph' ? html`<${GraphTab} detail=${detail} />` : null}
      ${current === 'checkpoints' ? html`<${CheckpointsTab} ckpts=${ckpts} />` : null}
      ${current === 'exceptions' ? html`<${ExceptionsTab} detail=${detail} ckpts=${ckpts} />` : null}
      ${current === 'tasks' ? html`<${TasksTab} detail=${detail} />` : null}
    </${Tabs}>
  `;
}

/** States in which a job has (or is about to have) tasks on TaskManagers: the chaos kill makes sense. */
const ACTIVE = new Set(['RUNNING', 'RESTARTING', 'CREATED']);

/** Copies `text` to the clipboard; says so (or that it could not) in place. */
function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState<'copied' | 'failed' | null>(null);
  useEffect(() => {
    if (!done) return;
    const t = setTimeout(() => setDone(null), 2000);
    return () => clearTimeout(t);
  }, [done]);
  return html`<button type="button" class="copy" aria-label=${label} title=${label}
    onClick=${() =>
      navigator.clipboard
        ?.writeText(text)
        .then(() => setDone('copied'))
        .catch(() => setDone('failed')) ??
      setDone(
        'failed',
      )}>${done === 'copied' ? 'Copied' : done === 'failed' ? 'Copy failed' : 'Copy'}</button><span class="sr-only" role="status">${done === 'copied' ? 'Job id copied' : ''}</span>`;
}

function Actions({ detail, base, chaos }: { detail: JobDetail; base: string; chaos: boolean }) {
  const [busy, setBusy] = useState<string | null>(null);
  const [message, setMessage] = useState<{ text: string; bad: boolean } | null>(null);
  const [confirmCancel, setConfirmCancel] = useState(false);
  const [confirmKill, setConfirmKill] = useState(false);
  const [victim, setVictim] = useState('');
  const running = !TERMINAL.has(detail.job.state);
  const active = ACTIVE.has(detail.job.state);
  const tms = usePoll(
    () =>
      chaos && active
        ? getJson<{ taskmanagers: TaskManagerInfo[] }>('taskmanagers').then((r) => r.taskmanagers)
        : Promise.resolve([] as TaskManagerInfo[]),
    3000,
    [chaos, active, detail.job.attempt],
  );

  const run = async (name: string, f: () => Promise<string>) => {
    setBusy(name);
    setMessage(null);
    try {
      setMessage({ text: await f(), bad: false });
    } catch (err) {
      const e = err as Error;
      setMessage({ text: err instanceof ApiError ? `${e.message} (${err.code})` : e.message, bad: true });
    } finally {
      setBusy(null);
    }
  };

  // only ALIVE TaskManagers can be killed; those running this job's tasks come first
  const jobTms = new Set(detail.tasks.map((t) => t.taskmanagerId).filter(Boolean));
  const choices = (tms.data ?? [])
    .filter((t) => t.state === 'ALIVE')
    .map((t) => t.taskmanagerId)
    .sort((a, b) => Number(jobTms.has(b)) - Number(jobTms.has(a)) || a.localeCompare(b));
  const target = choices.includes(victim) ? victim : (choices[0] ?? '');

  return html`
    <div class="actions" role="group" aria-label="Job actions">
      ${
        running
          ? html`
        ${
          confirmCancel
            ? html`
          <button type="button" class="danger" data-testid="confirm-cancel" disabled=${busy !== null}
            onClick=${() => {
              setConfirmCancel(false);
              void run('cancel', async () => {
                const r = await mutate<{ state: string }>('PATCH', base);
                return `Cancel requested: ${r.state}`;
              });
            }}>Really cancel the job</button>
          <button type="button" onClick=${() => setConfirmCancel(false)}>Keep running</button>`
            : html`<button type="button" data-testid="cancel-job" disabled=${busy !== null} onClick=${() => setConfirmCancel(true)}>Cancel job</button>`
        }
        <button type="button" data-testid="take-savepoint" disabled=${busy !== null || detail.job.state !== 'RUNNING'}
          onClick=${() =>
            run('savepoint', async () => {
              const r = await mutate<{ savepointId: string | number }>('POST', `${base}/savepoints`);
              return `Savepoint ${r.savepointId} taken`;
            })}>${busy === 'savepoint' ? 'Taking savepoint…' : 'Take savepoint'}</button>
      `
          : null
      }
      ${
        chaos && active && choices.length > 0
          ? html`
        <span class="chaos">
          <label for="kill-tm">TaskManager</label>
          <select id="kill-tm" value=${target} disabled=${confirmKill} onChange=${(e: Event) => setVictim((e.target as HTMLSelectElement).value)}>
            ${choices.map((id) => html`<option value=${id}>${id}${jobTms.has(id) ? ' (runs this job)' : ''}</option>`)}
          </select>
          ${
            confirmKill
              ? html`
            <button type="button" class="danger" data-testid="confirm-kill" disabled=${busy !== null || !target}
              onClick=${() => {
                setConfirmKill(false);
                void run('kill', async () => {
                  const r = await mutate<{ taskmanagerId: string; pid: number }>(
                    'POST',
                    `taskmanagers/${encodeURIComponent(target)}/kill`,
                  );
                  return `Killed TaskManager ${r.taskmanagerId} (pid ${r.pid})`;
                });
              }}>Really kill ${target}</button>
            <button type="button" onClick=${() => setConfirmKill(false)}>Keep it</button>`
              : html`<button type="button" class="danger" data-testid="kill-taskmanager" disabled=${busy !== null || !target}
              onClick=${() => setConfirmKill(true)}>Kill TaskManager (chaos)</button>`
          }
        </span>`
          : null
      }
      <span class=${`action-msg ${message?.bad ? 'error' : ''}`} role="status" aria-live="polite" data-testid="action-message">${message?.text ?? ''}</span>
    </div>
  `;
}

function GraphTab({ detail }: { detail: JobDetail }) {
  const [colourBy, setColourBy] = useState<ColourBy>('busy');
  return html`
    <div class="graph-controls">
      <fieldset class="inline">
        <legend>Colour vertices by</legend>
        <label><input type="radio" name="colour" checked=${colourBy === 'busy'} onChange=${() => setColourBy('busy')} /> busy ratio</label>
        <label><input type="radio" name="colour" checked=${colourBy === 'backpressure'} onChange=${() => setColourBy('backpressure')} /> backpressure</label>
      </fieldset>
      <span class="legend" aria-hidden="true"><span class="swatch lo"></span>0 % <span class="swatch mid"></span>50 % <span class="swatch hi"></span>100 %</span>
    </div>
    <${JobGraph} vertices=${detail.vertices} edges=${detail.edges ?? []} colourBy=${colourBy} />
    <h3>Vertices and watermarks</h3>
    <div class="table-wrap">
      <table data-testid="vertices-table">
        <thead><tr><th scope="col">Vertex</th><th scope="col" class="num">Parallelism</th><th scope="col" class="num">Records in</th><th scope="col" class="num">Records out / written</th><th scope="col" class="num">In / out per s</th><th scope="col" class="num">Busy</th><th scope="col" class="num">Backpressured</th><th scope="col">Watermark</th><th scope="col" class="num">Lag</th></tr></thead>
        <tbody>
          ${detail.vertices.map((v) => {
            const m = v.metrics;
            return html`<tr key=${v.id}>
              <th scope="row">${v.name}<div class="small muted">${v.id}</div></th>
              <td class="num">${v.parallelism}</td>
              <td class="num">${formatCount(m?.recordsIn)}</td>
              <td class="num">${formatCount(m?.recordsOut)}${m?.rowsWritten ? html`<div class="small muted" data-testid="rows-written">written ${formatCount(m.rowsWritten)}</div>` : null}</td>
              <td class="num">${formatRate(m?.recordsInPerSec)} / ${formatRate(m?.recordsOutPerSec)}</td>
              <td class="num">${formatPercent(m?.busyRatio)}</td>
              <td class="num">${formatPercent(m?.backpressuredRatio)}</td>
              <td>${m?.watermarkMs != null ? html`<time datetime=${isoTime(m.watermarkMs)}>${formatTime(m.watermarkMs, true)}</time>` : '–'}</td>
              <td class="num">${m?.watermarkLagMs != null ? formatDuration(m.watermarkLagMs) : '–'}</td>
            </tr>`;
          })}
        </tbody>
      </table>
    </div>
  `;
}

function CheckpointsTab({ ckpts }: { ckpts: Checkpoints | null }) {
  if (!ckpts) return html`<p>No checkpoint statistics yet.</p>`;
  const s = ckpts.summary;
  const r = ckpts.latestRestore;
  const history = [...ckpts.history].sort((a, b) => b.id - a.id);
  return html`
    <dl class="stats" data-testid="checkpoint-counts">
      <div><dt>Completed</dt><dd>${ckpts.counts.completed}</dd></div>
      <div><dt>Failed</dt><dd>${ckpts.counts.failed}</dd></div>
      <div><dt>Aborted</dt><dd>${ckpts.counts.aborted}</dd></div>
      <div><dt>In progress</dt><dd>${ckpts.counts.inProgress}</dd></div>
      <div><dt>Latest restore</dt><dd data-testid="latest-restore">${r ? `checkpoint ${r.checkpointId}${r.fromSavepoint ? ' (savepoint)' : ''}, attempt ${r.attempt}, ${formatTime(r.restoredAtMs)}` : 'none'}</dd></div>
    </dl>
    ${
      s
        ? html`
      <h3>Summary</h3>
      <div class="table-wrap">
        <table class="compact">
          <thead><tr><th scope="col"></th><th scope="col" class="num">Min</th><th scope="col" class="num">Avg</th><th scope="col" class="num">Max</th></tr></thead>
          <tbody>
            <tr><th scope="row">Duration</th><td class="num">${formatDuration(s.durationMs.min)}</td><td class="num">${formatDuration(s.durationMs.avg)}</td><td class="num">${formatDuration(s.durationMs.max)}</td></tr>
            <tr><th scope="row">State size</th><td class="num">${formatBytes(s.stateBytes.min)}</td><td class="num">${formatBytes(s.stateBytes.avg)}</td><td class="num">${formatBytes(s.stateBytes.max)}</td></tr>
            <tr><th scope="row">Alignment</th><td class="num">${formatDuration(s.alignmentMs.min)}</td><td class="num">${formatDuration(s.alignmentMs.avg)}</td><td class="num">${formatDuration(s.alignmentMs.max)}</td></tr>
          </tbody>
        </table>
      </div>`
        : null
    }
    <h3>History</h3>
    ${
      history.length === 0
        ? html`<p>No checkpoints yet.</p>`
        : html`
      <div class="table-wrap">
        <table data-testid="checkpoint-history">
          <thead><tr><th scope="col" class="num">Id</th><th scope="col">Status</th><th scope="col">Triggered</th><th scope="col" class="num">Duration</th><th scope="col" class="num">State size</th><th scope="col" class="num">Alignment</th></tr></thead>
          <tbody>
            ${history.map(
              (c) => html`<tr key=${c.id} data-checkpoint-id=${c.id}>
              <td class="num">${c.id}${c.savepoint ? html` <span class="badge neutral">savepoint</span>` : null}</td>
              <td><${Badge} state=${c.status} /></td>
              <td>${formatTime(c.triggeredAtMs, true)}</td>
              <td class="num">${formatDuration(c.durationMs)}</td>
              <td class="num">${formatBytes(c.stateBytes)}</td>
              <td class="num">${formatDuration(c.alignmentMs)}</td>
            </tr>`,
            )}
          </tbody>
        </table>
      </div>`
    }
  `;
}

function ExceptionsTab({ detail, ckpts }: { detail: JobDetail; ckpts: Checkpoints | null }) {
  const now = useNow();
  const list = [...(detail.exceptions ?? [])].sort((a, b) => b.timeMs - a.timeMs);
  const restore = ckpts?.latestRestore;
  if (list.length === 0)
    return html`<p data-testid="no-exceptions">No exceptions or restarts: attempt ${detail.job.attempt}.</p>`;
  return html`
    <ol class="timeline" data-testid="exceptions-timeline" aria-label="Exceptions and restarts, newest first">
      ${list.map(
        (e) => html`<li key=${`${e.timeMs}-${e.attempt}`} data-attempt=${e.attempt}>
        <div class="when"><time datetime=${isoTime(e.timeMs)}>${formatTime(e.timeMs, true)}</time> <span class="muted">(${formatDuration(now - e.timeMs)} ago)</span></div>
        <div><strong>Attempt ${e.attempt} failed</strong>${e.restartDelayMs != null ? html` · restart after ${formatDuration(e.restartDelayMs)}` : null}
          ${restore && restore.attempt === e.attempt + 1 ? html` · restored checkpoint ${restore.checkpointId}` : null}</div>
        <pre class="reason">${e.reason}</pre>
      </li>`,
      )}
    </ol>
  `;
}

function TasksTab({ detail }: { detail: JobDetail }) {
  return html`
    <div class="table-wrap">
      <table data-testid="tasks-table">
        <thead><tr><th scope="col">Task</th><th scope="col">Vertex</th><th scope="col" class="num">Subtask</th><th scope="col">TaskManager</th><th scope="col">State</th><th scope="col">Error</th></tr></thead>
        <tbody>
          ${detail.tasks.map(
            (t) => html`<tr key=${t.taskId}>
            <td><code>${t.taskId}</code></td><td>${t.vertex}</td><td class="num">${t.subtask}</td><td>${t.taskmanagerId}</td>
            <td><${Badge} state=${t.state} /></td><td class="small">${t.error ?? ''}</td>
          </tr>`,
          )}
        </tbody>
      </table>
    </div>
  `;
}
