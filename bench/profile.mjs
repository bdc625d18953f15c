#!/usr/bin/env node
// Where Fluxo's time goes on the benchmark job: runs `fluxo run bench/readings.yaml` with every
// Node process and worker thread under `--cpu-prof`, then prints the top self-time functions per
// profile (the TaskManager's slot worker is the one that runs the tasks).
//
//   npm run build && node bench/profile.mjs [--taskmanagers 1] [--top 25] [--dir bench/data/prof] [--set k=v ...]
//   (--set is passed to `fluxo submit`, e.g. --set checkpoint.intervalMs=1000)
//   node bench/profile.mjs --summarise <file.cpuprofile | folder> [--top 25]
//
// Self time of a function = time of the samples whose top frame is that function, merged over
// every node of the call tree with the same name, file, line and column. Percentages are of the
// profile's whole duration ("% all") and of its busy time, i.e. without (idle) ("% busy").
// Positions are in dist/*.js (tsc output keeps the .ts structure; dist has source maps).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');

const argv = process.argv.slice(2);
let taskmanagers = 1;
const sets = [];
let top = 25;
let dir = join(HERE, 'data/prof');
let summarise;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--taskmanagers') taskmanagers = Number(argv[++i]);
  else if (a === '--set') sets.push('--set', argv[++i]);
  else if (a === '--top') top = Number(argv[++i]);
  else if (a === '--dir') dir = resolve(argv[++i]);
  else if (a === '--summarise') summarise = resolve(argv[++i]);
  else {
    process.stderr.write(`profile: unknown argument ${a}\n`);
    process.exit(2);
  }
}

const maps = new Map();
/** dist/x.js line/column (1-based) → `x.ts:line` through tsc's source map, when there is one. */
function sourcePosition(file, line, column) {
  if (!file.startsWith('dist/') || !file.endsWith('.js')) return undefined;
  if (!maps.has(file)) {
    let map;
    try {
      map = new SourceMap(JSON.parse(readFileSync(join(ROOT, `${file}.map`), 'utf8')));
    } catch {
      map = null;
    }
    maps.set(file, map);
  }
  const map = maps.get(file);
  const e = map?.findEntry(line - 1, column - 1);
  if (!e || e.originalSource === undefined) return undefined;
  const src = e.originalSource.startsWith('file:')
    ? fileURLToPath(e.originalSource)
    : resolve(ROOT, dirname(file), e.originalSource);
  return `${relative(ROOT, src)}:${e.originalLine + 1}`;
}

/**
 * Self and total time (µs) per function of one .cpuprofile. Total counts a sample once per
 * function on its stack (recursion is not counted twice).
 */
export function selfTimes(profile) {
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const fns = new Map();
  const keyOf = new Map();
  for (const n of profile.nodes) {
    const cf = n.callFrame;
    const file = cf.url.startsWith('file:') ? relative(ROOT, fileURLToPath(cf.url)) : cf.url;
    const key = `${cf.functionName}\t${file}:${cf.lineNumber}:${cf.columnNumber}`;
    keyOf.set(n.id, key);
    if (!fns.has(key)) {
      const where = file ? `${file}:${cf.lineNumber + 1}` : '';
      const src = file ? sourcePosition(file, cf.lineNumber + 1, cf.columnNumber + 1) : undefined;
      fns.set(key, { fn: cf.functionName || '(anonymous)', where, src, selfUs: 0, totalUs: 0 });
    }
  }
  const { samples, timeDeltas } = profile;
  let totalUs = 0;
  let idleUs = 0;
  // timeDeltas[i] is the gap before sample i: charge sample i with the gap up to the next one
  for (let i = 0; i < samples.length; i++) {
    const dt = Math.max(0, i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0);
    totalUs += dt;
    const top = fns.get(keyOf.get(samples[i]));
    top.selfUs += dt;
    if (top.fn === '(idle)') idleUs += dt;
    const seen = new Set();
    for (let id = samples[i]; id !== undefined; id = parent.get(id)) {
      const k = keyOf.get(id);
      if (seen.has(k)) continue;
      seen.add(k);
      fns.get(k).totalUs += dt;
    }
  }
  const list = [...fns.values()].filter((f) => f.selfUs > 0 || f.totalUs > 0).sort((a, b) => b.selfUs - a.selfUs);
  return { totalMs: totalUs / 1000, busyMs: (totalUs - idleUs) / 1000, list };
}

/** Self time per file (node internals and dependencies grouped). */
function byFile(list) {
  const m = new Map();
  for (const f of list) {
    let k = f.where.replace(/:\d+$/, '');
    if (k === '') k = f.fn.startsWith('(') ? f.fn : '(native / builtin)';
    else if (k.startsWith('node:') || !k.includes('/')) k = 'node internals';
    else if (k.includes('node_modules/')) k = `node_modules/${k.split('node_modules/')[1].split('/')[0]}`;
    m.set(k, (m.get(k) ?? 0) + f.selfUs);
  }
  return [...m.entries()].sort((a, b) => b[1] - a[1]);
}

function report(file) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const { totalMs, busyMs, list } = selfTimes(p);
  const pct = (us, of) => `${((us / 1000 / of) * 100).toFixed(1)}%`.padStart(6);
  const out = [
    `\n${relative(process.cwd(), file)}: ${(totalMs / 1000).toFixed(2)} s profiled, ${(busyMs / 1000).toFixed(2)} s busy (not idle)`,
  ];
  out.push(
    `  ${'self ms'.padStart(8)}  ${'% all'.padStart(6)}  ${'% busy'.padStart(6)}  ${'total%'.padStart(6)}  function  (position; source)`,
  );
  for (const f of list.slice(0, top)) {
    const busy = f.fn === '(idle)' ? '     -' : pct(f.selfUs, busyMs);
    const where = [f.where, f.src].filter(Boolean).join('; ');
    out.push(
      `  ${(f.selfUs / 1000).toFixed(0).padStart(8)}  ${pct(f.selfUs, totalMs)}  ${busy}  ${f.fn === '(idle)' ? '     -' : pct(f.totalUs, busyMs)}  ${f.fn}  ${where}`,
    );
  }
  out.push('  (% busy = share of non-idle time; total% = inclusive time, share of non-idle time)');
  out.push('  by file (self time):');
  for (const [k, us] of byFile(list).slice(0, 15))
    out.push(
      `  ${(us / 1000).toFixed(0).padStart(8)}  ${pct(us, totalMs)}  ${k === '(idle)' ? '     -' : pct(us, busyMs)}  ${k}`,
    );
  process.stdout.write(`${out.join('\n')}\n`);
}

function profilesIn(path) {
  if (statSync(path).isFile()) return [path];
  return readdirSync(path)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort()
    .map((f) => join(path, f));
}

if (summarise) {
  for (const f of profilesIn(summarise)) report(f);
} else {
  await profileRun();
}

/**
 * `--cpu-prof` is not allowed in NODE_OPTIONS, so the cluster is started by hand: a JobManager,
 * N TaskManagers under `node --cpu-prof` (slot worker threads inherit it), `fluxo submit`, a poll
 * of the JobManager's /jobs endpoint until the job ends, then SIGTERM (the processes exit through
 * process.exit, which writes the profiles).
 */
async function profileRun() {
  const cli = join(ROOT, 'dist/client/main.js');
  if (!existsSync(cli)) {
    process.stderr.write('profile: run `npm run build` first\n');
    process.exit(2);
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const rpcPort = 20000 + Math.floor(Math.random() * 20000);
  const webPort = rpcPort + 1;
  const env = { ...process.env, FLUXO_CLUSTER_ID: `prof-${process.pid}`, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' };
  const opts = { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit'] };
  const procs = [];
  const stopAll = async () => {
    for (const p of procs.reverse()) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGTERM');
        await new Promise((r) => p.once('exit', r));
      }
    }
  };
  try {
    procs.push(
      spawn(process.execPath, [cli, 'jobmanager', '--rpc-port', String(rpcPort), '--web-port', String(webPort)], opts),
    );
    const get = async (path) => (await fetch(`http://127.0.0.1:${webPort}${path}`)).json();
    await until(
      async () =>
        get('/overview').then(
          () => true,
          () => false,
        ),
      'JobManager did not start',
    );
    for (let i = 1; i <= taskmanagers; i++) {
      procs.push(
        spawn(
          process.execPath,
          [
            '--cpu-prof',
            `--cpu-prof-dir=${dir}`,
            cli,
            'taskmanager',
            '--jobmanager',
            `127.0.0.1:${rpcPort}`,
            '--slots',
            '1',
            '--id',
            `tm-${i}`,
          ],
          opts,
        ),
      );
    }
    await until(async () => (await get('/overview')).taskmanagers >= taskmanagers, 'TaskManagers did not register');
    const sink = join(HERE, 'data/out-profile.jsonl');
    const started = performance.now();
    const sub = spawnSync(
      process.execPath,
      [
        cli,
        'submit',
        join(HERE, 'readings.yaml'),
        '--jobmanager',
        `127.0.0.1:${rpcPort}`,
        '--parallelism',
        String(taskmanagers),
        '--set',
        `sink.path=${sink}`,
        ...sets,
      ],
      { cwd: ROOT, env, encoding: 'utf8' },
    );
    if (sub.status !== 0) throw new Error(`submit failed: ${sub.stderr}`);
    const jobId = sub.stdout.trim();
    let state = '';
    await until(
      async () => {
        const jobs = await get('/jobs');
        const list = Array.isArray(jobs) ? jobs : (jobs.jobs ?? []);
        state = list.find((j) => j.jobId === jobId)?.state ?? '';
        return ['FINISHED', 'FAILED', 'CANCELED'].includes(state);
      },
      'job did not end',
      600_000,
    );
    process.stderr.write(
      `profile: job ${jobId} ${state} after ~${Math.round(performance.now() - started)} ms (incl. the submit command's start)\n`,
    );
    for (const f of readdirSync(join(HERE, 'data'))) if (f.startsWith('out-profile.')) rmSync(join(HERE, 'data', f));
  } finally {
    await stopAll();
  }
  for (const f of profilesIn(dir)) report(f);
}

async function until(cond, message, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(message);
    await new Promise((r) => setTimeout(r, 100));
  }
}
