#!/usr/bin/env node
// `npm run bench`: Fluxo against the single-threaded loop a user could write by hand.
//
//   node bench/bench.mjs [--repeat N] [--only baseline,p1,p2] [--keep-output]
//
// Input: bench/data/readings-2m.csv (2,000,000 readings from 10,000 sensors, bench/gen-data.mjs;
// generated once, reused while its sidecar matches). On that file, in one run:
//   baseline  bench/baseline.mjs: read + parse + per-sensor 1-minute tumbling windows, one thread
//   p1        fluxo run bench/readings.yaml, 1 TaskManager × 1 slot, parallelism 1
//   p2        fluxo run bench/readings.yaml, 2 TaskManagers × 1 slot, parallelism 2
//   p2ckpt    p2 with exactly-once checkpoints every 1 s
//   recovery  bench/recovery.mjs: p=2 on 3 TaskManagers × 1 slot (one spare), checkpoints every
//             250 ms, fixed-delay restart 100 ms; SIGKILL of a TaskManager mid-job → first committed
//             output of the restored job (detection, restart delay, redeploy+restore, first output)
// Needs `npm run build` first (the npm script does it).
//
// Figures per config:
//   job readings/s   readings / job time. Fluxo: the summary's wallMs (submit → job ended, as seen by
//                    the JobManager's 100 ms status poll); baseline: its own elapsedMs (open → last
//                    window). The ratio to the baseline uses these.
//   cmd readings/s   readings / wall time of the whole command (process start, TaskManager start
//                    and registration, Redis, shutdown included). Shown, not used for the ratio.
//   peak RSS         per process of the command's process tree: max of /proc/<pid>/status VmHWM
//                    polled every 100 ms, and the exact getrusage maxRSS each Node process reports
//                    at exit (bench/rss-probe.mjs preloaded through NODE_OPTIONS).
// Correctness (a failed check makes the exit code 1, figures are still printed): every Fluxo run
// must FINISH with the baseline's reading count, no rejects, the same late count, and its output file
// must give the baseline's window count and checksum (definitions in bench/baseline.mjs).
// With --repeat N every config runs N times; the table shows the median run by job readings/s,
// peak RSS is the maximum over runs. Everything goes to bench/results.json.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateReadings } from './gen-data.mjs';
import { RECOVERY, runRecovery } from './recovery.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const DATA = join(HERE, 'data');
const INPUT = join(DATA, 'readings-2m.csv');
const SPEC = join(HERE, 'readings.yaml');
const CLI = join(ROOT, 'dist/client/main.js');
const PROBE = join(HERE, 'rss-probe.mjs');
const RESULTS = join(HERE, 'results.json');
const TARGET_RATIO = 1 / 3; // the issue's target for Fluxo at parallelism 2
const SAMPLE_MS = 100;

// ---------------------------------------------------------------------------------------------
// arguments

const CONFIGS = {
  baseline: { id: 'baseline', label: 'baseline (1 thread)' },
  p1: { id: 'p1', label: 'fluxo 1 TM × 1 slot, p=1', taskmanagers: 1, parallelism: 1 },
  p2: { id: 'p2', label: 'fluxo 2 TM × 1 slot, p=2', taskmanagers: 2, parallelism: 2 },
  // issue 3: the cost of exactly-once checkpoints (target: at least 90% of p2 without them)
  p2ckpt: {
    id: 'p2ckpt',
    label: 'p=2, checkpoints every 1 s',
    taskmanagers: 2,
    parallelism: 2,
    set: ['checkpoint.intervalMs=1000'],
  },
  // issue 3: SIGKILL of a TaskManager → first output after restore, spare slot ready (target < 2 s)
  recovery: { id: 'recovery', label: 'recovery after SIGKILL, p=2' },
};
let repeat = 1;
let only = Object.keys(CONFIGS);
let keepOutput = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--repeat') {
    repeat = Number(argv[++i]);
    if (!Number.isSafeInteger(repeat) || repeat < 1) fail('--repeat needs a positive integer');
  } else if (a === '--only') {
    only = String(argv[++i]).split(',');
    for (const c of only) if (!(c in CONFIGS)) fail(`--only: unknown config ${c} (${Object.keys(CONFIGS).join(', ')})`);
    if (!only.includes('baseline')) only.unshift('baseline'); // the reference for ratio and checksum
  } else if (a === '--keep-output') keepOutput = true;
  else fail(`unknown argument ${a}`);
}
if (only.some((c) => c !== 'baseline') && !existsSync(CLI)) fail(`${CLI} is missing: run \`npm run build\` first`);

function fail(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}
const say = (msg) => process.stderr.write(`${msg}\n`);

// ---------------------------------------------------------------------------------------------
// process-tree RSS sampling

/** pid → ppid for every process, from /proc/<pid>/stat (field 4; comm may hold spaces/parens). */
function parentMap() {
  const m = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      m.set(Number(name), Number(rest[1]));
    } catch {
      // exited meanwhile
    }
  }
  return m;
}

function descendants(root) {
  const parents = parentMap();
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of parents) if (ppid === out[i]) out.push(pid);
  return out;
}

function readProc(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean);
    return hwm ? { hwmKiB: Number(hwm[1]), cmd } : undefined;
  } catch {
    return undefined;
  }
}

/** Polls the tree under `root` until stopped; returns pid → {cmd, hwmKiB, samples}. */
function startSampler(root) {
  const procs = new Map();
  const sample = () => {
    for (const pid of descendants(root)) {
      const p = readProc(pid);
      if (!p) continue;
      const seen = procs.get(pid);
      if (seen) {
        seen.hwmKiB = Math.max(seen.hwmKiB, p.hwmKiB);
        seen.samples++;
      } else procs.set(pid, { pid, cmd: p.cmd, hwmKiB: p.hwmKiB, samples: 1 });
    }
  };
  sample();
  const timer = setInterval(sample, SAMPLE_MS);
  return {
    sample,
    stop() {
      clearInterval(timer);
      return procs;
    },
  };
}

/** A readable role for a process of the tree. */
function roleOf(cmd, rootPid, pid) {
  const s = cmd.join(' ');
  const tm = /taskmanager .*--id (\S+)/.exec(s);
  if (tm) return `taskmanager ${tm[1]}`;
  if (/redis-server/.test(s)) return 'redis-server (private)';
  if (pid === rootPid)
    return / run /.test(s) ? 'jobmanager (fluxo run)' : /baseline\.mjs/.test(s) ? 'baseline' : 'main';
  return cmd.slice(0, 2).join(' ');
}

// ---------------------------------------------------------------------------------------------
// one measured command

/**
 * Runs `node args…` with RSS sampling. Resolves with stdout, stderr, exit code, wall time and the
 * per-process peak RSS list.
 */
async function measured(args, { rssFile }) {
  rmSync(rssFile, { force: true });
  const env = {
    ...process.env,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${PROBE}`.trim(),
    FLUXO_BENCH_RSS_FILE: rssFile,
  };
  const cpuBefore = systemCpu();
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const sampler = startSampler(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  // the JobManager prints its summary once the job ended, before it stops the TaskManagers: take
  // a sample right then, while every child is alive
  child.stderr.on('data', (d) => {
    if (/^Job .* after /m.test(String(d))) sampler.sample();
  });
  const code = await new Promise((r) => child.once('close', (c, sig) => r(c ?? sig)));
  const cmdMs = performance.now() - started;
  const cpuAfter = systemCpu();
  const procs = sampler.stop();
  // exact peaks reported by the processes themselves at exit
  const exact = existsSync(rssFile)
    ? readFileSync(rssFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
  for (const e of exact) {
    const p = procs.get(e.pid);
    const cpuUs = (e.cpuUserUs ?? 0) + (e.cpuSysUs ?? 0);
    if (p) {
      p.exitMaxRssKiB = e.maxRssKiB;
      p.cpuUs = cpuUs;
    } else {
      procs.set(e.pid, {
        pid: e.pid,
        cmd: [process.execPath, ...e.argv],
        hwmKiB: 0,
        samples: 0,
        exitMaxRssKiB: e.maxRssKiB,
        cpuUs,
      });
    }
  }
  rmSync(rssFile, { force: true });
  const rss = [...procs.values()]
    .map((p) => ({
      role: roleOf(p.cmd, child.pid, p.pid),
      pid: p.pid,
      peakRssMiB: round1(Math.max(p.hwmKiB, p.exitMaxRssKiB ?? 0) / 1024),
      polledVmHwmMiB: round1(p.hwmKiB / 1024),
      exitMaxRssMiB: p.exitMaxRssKiB === undefined ? null : round1(p.exitMaxRssKiB / 1024),
      samples: p.samples,
      cpuMs: p.cpuUs === undefined ? null : Math.round(p.cpuUs / 1000),
    }))
    .sort((a, b) => a.role.localeCompare(b.role));
  const ownCpuMs = rss.reduce((s, p) => s + (p.cpuMs ?? 0), 0);
  // CPU the rest of the machine used meanwhile (other processes, this harness's sampling), in cores
  const otherCores = Math.max(0, (cpuAfter.busyMs - cpuBefore.busyMs - ownCpuMs) / cmdMs);
  return { code, stdout, stderr, cmdMs, rss, cpuMs: ownCpuMs, otherCores: Math.round(otherCores * 100) / 100 };
}

const CLK_TCK_MS = 10; // USER_HZ = 100 on Linux
/** Busy CPU time of the whole machine so far (all cores), from /proc/stat. */
function systemCpu() {
  try {
    const f = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
    return {
      busyMs: (user + nice + system + irq + softirq + (steal ?? 0)) * CLK_TCK_MS,
      idleMs: (idle + iowait) * CLK_TCK_MS,
    };
  } catch {
    return { busyMs: Number.NaN, idleMs: Number.NaN };
  }
}

const round1 = (x) => Math.round(x * 10) / 10;

// ---------------------------------------------------------------------------------------------
// checksums

/** The baseline's checksum (bench/baseline.mjs) computed from a Fluxo JSON-lines result file. */
function checksumOfJsonl(file) {
  const c = { windows: 0, sumCount: 0, sumAvgCenti: 0, sumMinCenti: 0, sumMaxCenti: 0, sumTempCenti: 0 };
  const text = readFileSync(file, 'utf8');
  let from = 0;
  while (from < text.length) {
    let nl = text.indexOf('\n', from);
    if (nl < 0) nl = text.length;
    const line = text.slice(from, nl);
    from = nl + 1;
    if (line === '') continue;
    const w = JSON.parse(line);
    // avg = sum / count in floating point; avg * count recovers the exact sum in hundredths (inputs
    // have 2 decimals), from which the baseline's half-up rounded average is derived
    const sumCenti = Math.round(w.avg * w.count * 100);
    c.windows++;
    c.sumCount += w.count;
    c.sumAvgCenti += Math.round(sumCenti / w.count);
    c.sumMinCenti += Math.round(w.min * 100);
    c.sumMaxCenti += Math.round(w.max * 100);
    c.sumTempCenti += sumCenti;
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// runs

async function runBaseline(i) {
  const r = await measured([join(HERE, 'baseline.mjs'), INPUT], { rssFile: join(DATA, `rss-baseline-${i}.jsonl`) });
  if (r.code !== 0) throw new Error(`baseline failed (${r.code}):\n${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  return {
    readings: out.readings,
    jobMs: out.elapsedMs,
    cmdMs: Math.round(r.cmdMs),
    jobReadingsPerSec: Math.round(out.readings / (out.elapsedMs / 1000)),
    cmdReadingsPerSec: Math.round(out.readings / (r.cmdMs / 1000)),
    cpuMs: r.cpuMs,
    readingsPerCpuSec: Math.round(out.readings / (r.cpuMs / 1000)),
    otherCores: r.otherCores,
    rss: r.rss,
    late: out.late,
    malformed: out.malformed,
    windows: out.windows,
    checksum: out.checksum,
  };
}

async function runFluxo(cfg, i, reference) {
  const tag = `${cfg.id}-${i}`;
  const sinkPath = join(DATA, `out-${tag}.jsonl`);
  const summaryPath = join(DATA, `summary-${tag}.json`);
  for (const f of [sinkPath, summaryPath]) rmSync(f, { force: true });
  const args = [
    CLI,
    'run',
    SPEC,
    '--taskmanagers',
    String(cfg.taskmanagers),
    '--slots',
    '1',
    '--parallelism',
    String(cfg.parallelism),
    '--set',
    `sink.path=${sinkPath}`,
    ...(cfg.set ?? []).flatMap((x) => ['--set', x]),
    '--summary-json',
    summaryPath,
  ];
  const r = await measured(args, { rssFile: join(DATA, `rss-${tag}.jsonl`) });
  const problems = [];
  if (r.code !== 0) problems.push(`fluxo run exited with ${r.code}`);
  if (!existsSync(summaryPath)) {
    problems.push('no summary JSON');
    return { problems, stderr: r.stderr, cmdMs: Math.round(r.cmdMs), rss: r.rss };
  }
  const summary = JSON.parse(readFileSync(summaryPath, 'utf8'));
  const t = summary.totals ?? {};
  const sumTasks = (k) => (summary.tasks ?? []).reduce((s, task) => s + (task.counters?.[k] ?? 0), 0);
  const totals = {
    readingsIn: t.readingsIn,
    windowsEmitted: t.windowsEmitted ?? sumTasks('windowsEmitted'),
    sensors: t.sensors,
    late: t.late ?? sumTasks('late'),
    rejected: t.rejected ?? sumTasks('rejected'),
    resultsWritten: t.resultsWritten,
  };
  const readings = totals.readingsIn;
  if (summary.job?.state !== 'FINISHED')
    problems.push(`job state ${summary.job?.state}: ${summary.job?.failure ?? ''}`);
  if (readings !== reference.readings) problems.push(`readingsIn ${readings} ≠ baseline ${reference.readings}`);
  if (totals.rejected !== 0) problems.push(`${totals.rejected} readings rejected`);
  if (totals.late !== reference.late) problems.push(`late ${totals.late} ≠ baseline ${reference.late}`);
  if (totals.windowsEmitted !== reference.windows)
    problems.push(`windowsEmitted ${totals.windowsEmitted} ≠ baseline ${reference.windows}`);
  let checksum;
  if (existsSync(sinkPath)) {
    const c = checksumOfJsonl(sinkPath);
    checksum = {
      sumCount: c.sumCount,
      sumAvgCenti: c.sumAvgCenti,
      sumMinCenti: c.sumMinCenti,
      sumMaxCenti: c.sumMaxCenti,
      sumTempCenti: c.sumTempCenti,
    };
    if (c.windows !== reference.windows)
      problems.push(`output has ${c.windows} windows ≠ baseline ${reference.windows}`);
    for (const [k, v] of Object.entries(reference.checksum))
      if (checksum[k] !== v) problems.push(`checksum ${k} ${checksum[k]} ≠ baseline ${v}`);
  } else problems.push(`no output file ${sinkPath}`);
  if (!keepOutput) {
    // the outputs and the exactly-once sink's staging folders (.out-<tag>.jsonl.fluxo)
    for (const f of readdirSync(DATA))
      if (f.startsWith(`out-${tag}.`) || f.startsWith(`.out-${tag}.`))
        rmSync(join(DATA, f), { force: true, recursive: true });
    rmSync(summaryPath, { force: true });
  }
  const jobMs = summary.wallMs;
  return {
    readings,
    jobMs,
    jobMsCreatedToEnded:
      summary.job?.endedAtMs && summary.job?.createdAtMs ? summary.job.endedAtMs - summary.job.createdAtMs : null,
    cmdMs: Math.round(r.cmdMs),
    jobReadingsPerSec: Math.round(readings / (jobMs / 1000)),
    cmdReadingsPerSec: Math.round(readings / (r.cmdMs / 1000)),
    cpuMs: r.cpuMs,
    readingsPerCpuSec: Math.round(readings / (r.cpuMs / 1000)),
    otherCores: r.otherCores,
    rss: r.rss,
    totals,
    checksum,
    checkpoints: summary.checkpoints
      ? {
          completed: summary.checkpoints.completed,
          failed: summary.checkpoints.failed,
          history: summary.checkpoints.history,
        }
      : null,
    problems,
    ...(problems.length ? { stderr: r.stderr } : {}),
  };
}

function median(runs) {
  const ok = runs.filter((r) => Number.isFinite(r.jobReadingsPerSec));
  if (ok.length === 0) return runs[0];
  const sorted = [...ok].sort((a, b) => a.jobReadingsPerSec - b.jobReadingsPerSec);
  return sorted[(sorted.length - 1) >> 1];
}

/** The lower median of the numbers in `xs` (nulls skipped), or null when there are none. */
function medianOf(xs) {
  const ok = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return ok.length ? ok[(ok.length - 1) >> 1] : null;
}

/** Per role, the maximum peak RSS over all runs. */
function peakRss(runs) {
  const by = new Map();
  for (const r of runs) for (const p of r.rss ?? []) by.set(p.role, Math.max(by.get(p.role) ?? 0, p.peakRssMiB));
  return Object.fromEntries(by);
}

// ---------------------------------------------------------------------------------------------
// main

const LOAD_START = os.loadavg();
const gen = await generateReadings({ out: INPUT, lines: 2_000_000, sensors: 10_000 });
say(
  `bench: input ${INPUT}: ${gen.lines.toLocaleString('en-US')} readings, ${gen.sensors} sensors (${gen.skipped ? 'reused' : `generated in ${gen.elapsedMs} ms`})`,
);

const results = {};
let failed = false;
// Rounds of baseline, p1, p2 (not all runs of one config, then the next): a machine whose load
// changes during the benchmark then weighs on every config alike.
const runsOf = Object.fromEntries(only.map((id) => [id, []]));
let reference;
for (let i = 1; i <= repeat; i++) {
  for (const id of only) {
    const cfg = CONFIGS[id];
    say(`bench: ${cfg.label}, run ${i}/${repeat} ...`);
    const run =
      id === 'baseline'
        ? await runBaseline(i)
        : id === 'recovery'
          ? await runRecoveryConfig(i, reference)
          : await runFluxo(cfg, i, reference);
    if (id === 'baseline') {
      if (reference && JSON.stringify(run.checksum) !== JSON.stringify(reference.checksum)) {
        run.problems = ['baseline checksum differs between runs'];
      }
      reference ??= run;
    }
    runsOf[id].push(run);
    const status = run.problems?.length ? `  INCORRECT: ${run.problems.join('; ')}` : '';
    if (id === 'recovery') {
      say(`bench:   ${recoveryLine(run.breakdown)}${status}`);
      if (run.problems?.length) {
        failed = true;
        if (run.stderr) say(run.stderr.trimEnd());
      }
      continue;
    }
    say(
      `bench:   job ${run.jobMs} ms, command ${run.cmdMs} ms, ${run.jobReadingsPerSec?.toLocaleString('en-US')} readings/s, ` +
        `CPU ${run.cpuMs} ms, other load ${run.otherCores} cores${status}`,
    );
    if (run.otherCores > 0.25)
      say(`bench:   warning: other processes used ${run.otherCores} cores during this run: figures are disturbed`);
    if (run.problems?.length) {
      failed = true;
      if (run.stderr) say(run.stderr.trimEnd());
    }
  }
}
for (const id of only) {
  const runs = runsOf[id];
  if (id === 'recovery') continue;
  results[id] = { ...CONFIGS[id], runs, median: median(runs), peakRssMiB: peakRss(runs) };
}
const recovery = only.includes('recovery') ? recoverySummary(runsOf.recovery) : undefined;

const base = results.baseline.median.jobReadingsPerSec;
const baseCmd = results.baseline.median.cmdReadingsPerSec;
const ratio = (x, y) => (x && y ? Math.round((x / y) * 1000) / 1000 : null);
for (const r of Object.values(results)) {
  r.ratioToBaseline = ratio(r.median.jobReadingsPerSec, base);
  r.cmdRatioToBaseline = ratio(r.median.cmdReadingsPerSec, baseCmd);
  // each run against the baseline run of the same round: less sensitive to load that drifts
  r.pairedRatios = r.runs.map((x, i) => ratio(x.jobReadingsPerSec, results.baseline.runs[i].jobReadingsPerSec));
  // p2ckpt against the p2 run of the same round (see the summary line)
  if (r.id === 'p2ckpt' && results.p2)
    r.pairedToP2 = r.runs.map((x, i) => ratio(x.jobReadingsPerSec, results.p2.runs[i]?.jobReadingsPerSec));
  r.correct = r.runs.every((x) => (x.problems ?? []).length === 0);
  r.disturbed = r.runs.some((x) => x.otherCores > 0.25);
}

// table
const fmt = (n) => (n === null || n === undefined || Number.isNaN(n) ? '-' : n.toLocaleString('en-US'));
const pad = (s, w, right = true) => (right ? String(s).padStart(w) : String(s).padEnd(w));
const cols = [
  ['config', 26, (r) => r.label],
  ['job ms', 7, (r) => fmt(r.median.jobMs)],
  ['job readings/s', 14, (r) => fmt(r.median.jobReadingsPerSec)],
  ['× base', 6, (r) => r.ratioToBaseline?.toFixed(3) ?? '-'],
  ['cmd ms', 7, (r) => fmt(r.median.cmdMs)],
  ['cmd readings/s', 14, (r) => fmt(r.median.cmdReadingsPerSec)],
  ['× base', 6, (r) => r.cmdRatioToBaseline?.toFixed(3) ?? '-'],
  ['CPU s', 6, (r) => (r.median.cpuMs / 1000).toFixed(1)],
  ['other', 5, (r) => r.median.otherCores?.toFixed(2) ?? '-'],
  ['check', 5, (r) => (!r.correct ? 'FAIL' : r.id === 'baseline' ? 'ref' : 'ok')],
  [
    'peak RSS per process (MiB)',
    0,
    (r) =>
      Object.entries(r.peakRssMiB)
        .map(([role, mib]) => `${role} ${mib}`)
        .join(', '),
  ],
];
const lines = [cols.map(([h, w], i) => pad(h, w, i > 0 && i < cols.length - 1)).join('  ')];
for (const r of Object.values(results))
  lines.push(cols.map(([, w, f], i) => pad(f(r), w, i > 0 && i < cols.length - 1)).join('  '));
const p2 = results.p2;
const target = p2
  ? {
      description: 'Fluxo at parallelism 2 reaches at least 1/3 of the baseline (job readings/s)',
      ratio: p2.ratioToBaseline,
      met: p2.correct && p2.ratioToBaseline !== null && p2.ratioToBaseline >= TARGET_RATIO,
      reliable: !p2.disturbed && !results.baseline.disturbed,
    }
  : undefined;
process.stdout.write(
  `\nFluxo benchmark: ${gen.lines.toLocaleString('en-US')} readings, ${gen.sensors.toLocaleString('en-US')} sensors, 60 s tumbling windows` +
    `${repeat > 1 ? `, median of ${repeat} runs` : ''}\n` +
    `${lines.join('\n')}\n` +
    '  job = readings / job time (Fluxo: summary wallMs, submit → end; baseline: its own elapsedMs); cmd = whole command incl. process start\n' +
    "  CPU s = CPU time of all the run's processes; other = cores used by other processes meanwhile (> 0.25: disturbed)\n" +
    (target
      ? `  target (p2 ≥ 1/3 of baseline): ${target.met ? 'MET' : 'NOT MET'} (${target.ratio?.toFixed(3) ?? '-'}` +
        `${repeat > 1 ? `; per round ${p2.pairedRatios.map((x) => x?.toFixed(3) ?? '-').join(' ')}` : ''})` +
        `${target.reliable ? '' : ' — UNRELIABLE: other processes loaded the machine during the runs'}\n`
      : '') +
    (results.p2ckpt && results.p2
      ? (() => {
          const c = results.p2ckpt;
          const done = c.runs.flatMap((x) => (x.checkpoints?.history ?? []).filter((h) => h.status === 'COMPLETED'));
          const ms = done.map((h) => h.durationMs).sort((a, b) => a - b);
          const kib = done.map((h) => h.stateBytes / 1024).sort((a, b) => a - b);
          const rel = ratio(c.median.jobReadingsPerSec, results.p2.median.jobReadingsPerSec);
          // the runs alternate (p2, p2ckpt, p2, ...): a round's pair shares the machine's state of the
          // moment, so the median of the per-round ratios is steadier than the ratio of the medians
          const perRound = c.pairedToP2;
          const paired = medianOf(perRound);
          return (
            `  checkpoints every 1 s: ${rel?.toFixed(3) ?? '-'} of the throughput without (target ≥ 0.9: ${rel !== null && rel >= 0.9 ? 'MET' : 'NOT MET'})` +
            `${repeat > 1 ? `; median of the per-round ratios ${paired?.toFixed(3) ?? '-'} (${perRound.map((x) => x?.toFixed(3) ?? '-').join(' ')})` : ''}; ` +
            `${done.length} completed, duration ${ms[0] ?? '-'}–${ms[ms.length - 1] ?? '-'} ms (median ${ms[Math.floor(ms.length / 2)] ?? '-'}), ` +
            `state ${kib[0]?.toFixed(0) ?? '-'}–${kib[kib.length - 1]?.toFixed(0) ?? '-'} KiB\n`
          );
        })()
      : '') +
    (recovery
      ? `  recovery (SIGKILL of the TaskManager running window-1 and the sink, spare slot ready, fixed-delay ${RECOVERY.restartDelayMs} ms, ` +
        `checkpoints every ${RECOVERY.checkpointIntervalMs} ms): kill → first committed output of the restored job, median run of ${recovery.runs.length}: ` +
        `${recoveryLine(recovery.median)}; runs ${recovery.runs.map((r) => r.breakdown.totalMs ?? '-').join(', ')} ms; ` +
        `target < ${RECOVERY.targetMs} ms: ${recovery.met ? 'MET' : 'NOT MET'}${recovery.correct ? '' : ' — INCORRECT output, see above'}\n`
      : '') +
    `  machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, node ${process.version}, load avg at start ${LOAD_START.map((x) => x.toFixed(2)).join(' ')}\n`,
);

const commit = await gitCommit();
writeFileSync(
  RESULTS,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        totalMemMiB: Math.round(os.totalmem() / 1048576),
        platform: `${os.platform()} ${os.release()}`,
        node: process.version,
        loadAvgAtStart: LOAD_START,
        loadAvgAtEnd: os.loadavg(),
      },
      commit: commit.head,
      uncommittedEngineChanges: commit.dirty,
      input: { file: INPUT, lines: gen.lines, sensors: gen.sensors, bytes: gen.bytes, sha256: gen.sha256 },
      job: { spec: SPEC, windowMs: 60_000, outOfOrdernessMs: 2000, aggregates: ['count', 'avg', 'min', 'max'] },
      method: {
        jobReadingsPerSec:
          'readings / job ms; Fluxo job ms = summary wallMs (submit → end, JobManager polls every 100 ms); baseline job ms = its elapsedMs',
        cmdReadingsPerSec:
          'readings / wall time of the whole command, including process start, TaskManager registration and shutdown',
        peakRss: `per process: max(VmHWM polled every ${SAMPLE_MS} ms, getrusage maxRSS at exit)`,
        repeat,
        aggregate:
          'median run by job readings/s; peak RSS = max over runs; runs interleaved in rounds (baseline, p1, p2)',
        cpu: 'cpuMs = user + system CPU of every process of the run (getrusage at exit); otherCores = (machine busy CPU from /proc/stat − cpuMs) / command wall time',
      },
      target,
      results,
      recovery,
    },
    null,
    2,
  )}\n`,
);
say(`bench: wrote ${RESULTS}`);
if (failed) {
  say('bench: INCORRECT results (see above)');
  process.exitCode = 1;
}

async function runRecoveryConfig(i, reference) {
  return runRecovery({
    cli: CLI,
    root: ROOT,
    spec: SPEC,
    dataDir: DATA,
    tag: `recovery-${i}`,
    reference,
    checksumOfJsonl,
    keepOutput,
  });
}

/** `total 1234 ms = detection 5 + restart delay 103 + redeploy+restore 456 + first output 670 (first ckpt 600)` */
function recoveryLine(b) {
  const f = (x) => (x === null || x === undefined ? '-' : String(x));
  return (
    `total ${f(b.totalMs)} ms = detection ${f(b.detectionMs)} + restart delay ${f(b.restartDelayMs)} + ` +
    `redeploy+restore ${f(b.redeployRestoreMs)} + first output ${f(b.firstOutputMs)} (attempt 2's first checkpoint completed after ${f(b.firstCheckpointMs)})`
  );
}

/** The median run by total time (its breakdown adds up to its total) and the target check. */
function recoverySummary(runs) {
  const timed = runs
    .filter((r) => Number.isFinite(r.breakdown?.totalMs))
    .sort((a, b) => a.breakdown.totalMs - b.breakdown.totalMs);
  const median = timed.length ? timed[(timed.length - 1) >> 1].breakdown : { totalMs: null };
  const correct = runs.every((r) => r.problems.length === 0);
  return {
    description:
      'SIGKILL of a TaskManager mid-job → the committed output file of the restored job grows (first rows of attempt 2 visible); ' +
      'detection = kill → JobManager fails over; restart delay = → attempt 2 CREATED; redeploy+restore = → attempt 2 RUNNING; ' +
      'first output = → committed output grows (includes attempt 2 first checkpoint)',
    setup: {
      taskmanagers: 3,
      slotsPerTaskManager: 1,
      parallelism: 2,
      checkpointIntervalMs: RECOVERY.checkpointIntervalMs,
      restart: { type: 'fixed-delay', delayMs: RECOVERY.restartDelayMs },
    },
    targetMs: RECOVERY.targetMs,
    met: correct && median.totalMs !== null && median.totalMs < RECOVERY.targetMs,
    correct,
    median,
    runs,
  };
}

/** HEAD, and the engine files with uncommitted changes (they are in the measured build). */
async function gitCommit() {
  const git = (...args) =>
    new Promise((r) => {
      const g = spawn('git', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      g.stdout.on('data', (d) => {
        out += d;
      });
      g.on('error', () => r(''));
      g.on('close', () => r(out));
    });
  const head = (await git('rev-parse', '--short', 'HEAD')).trim() || null;
  const status = await git('status', '--porcelain', '--', 'core', 'jobmanager', 'taskmanager', 'client');
  return {
    head,
    dirty: status
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(3)),
  };
}
