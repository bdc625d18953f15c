/**
 * Fault injection for chaos and recovery tests: a TaskManager started with `FLUXO_FAULTS` SIGKILLs
 * itself at a precise point of the checkpoint protocol, or slows its sinks down. A kill from
 * outside (`fluxo chaos kill-taskmanager`) cannot hit "during barrier alignment" reliably; a
 * fault point can, and the process dies exactly as under `kill -9` (no cleanup, no goodbye).
 * Nothing here runs unless the variable is set; the TaskManager logs a warning when it is.
 *
 * `FLUXO_FAULTS` is a comma-separated list of:
 * - `crash@records:N`: a source task has emitted N records (the check runs once per batch);
 * - `crash@alignment:ID`: an input task received the first barrier of checkpoint ID and blocked
 *   that channel, while other channels have not delivered theirs (mid-alignment);
 * - `crash@state-write:ID`: a task's state for checkpoint ID is written to the store and not yet
 *   acknowledged (the checkpoint can never complete; its state is orphaned);
 * - `crash@checkpoint-complete:ID`: the completion notice of checkpoint ID arrived, before sinks
 *   commit (the restore must commit what was pre-committed);
 * - `slow@sink:MS`: each row a sink writes blocks its thread for MS ms (a slow external system).
 *
 * `FLUXO_FAULTS_ONCE_DIR`, when set, makes each crash fire once per test: before killing, the
 * process creates `<dir>/<fault>` exclusively, and a fault whose marker exists is skipped. Without
 * it a crash fires in every process where its condition holds.
 */
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';

export type CrashPoint = 'records' | 'alignment' | 'state-write' | 'checkpoint-complete';

const POINTS: ReadonlySet<string> = new Set(['records', 'alignment', 'state-write', 'checkpoint-complete']);

export interface Faults {
  crash: { point: CrashPoint; at: number; text: string }[];
  /** ms each sink row blocks for; 0 = no delay */
  sinkDelayMs: number;
}

/**
 * Parses a `FLUXO_FAULTS` value.
 * @throws Error naming each bad entry (like an invalid cluster configuration)
 */
export function parseFaults(raw: string | undefined): Faults | null {
  if (!raw || raw.trim() === '') return null;
  const out: Faults = { crash: [], sinkDelayMs: 0 };
  const bad: string[] = [];
  for (const text of raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const m = /^(crash|slow)@([a-z-]+):(\d+)$/.exec(text);
    if (!m) {
      bad.push(`${text}: expected crash@POINT:N or slow@sink:MS`);
    } else if (m[1] === 'slow') {
      if (m[2] === 'sink') out.sinkDelayMs = Number(m[3]);
      else bad.push(`${text}: only slow@sink is known`);
    } else if (POINTS.has(m[2])) {
      out.crash.push({ point: m[2] as CrashPoint, at: Number(m[3]), text });
    } else {
      bad.push(`${text}: unknown crash point ${m[2]} (known: ${[...POINTS].join(', ')})`);
    }
  }
  if (bad.length > 0) throw new Error(`invalid configuration: FLUXO_FAULTS: ${bad.join('; ')}`);
  return out;
}

let active: Faults | null | undefined;

/** The faults of this process (parsed once from `FLUXO_FAULTS`), or null. */
export function faults(): Faults | null {
  if (active === undefined) active = parseFaults(process.env.FLUXO_FAULTS);
  return active;
}

/**
 * SIGKILLs this process if a `crash@point:N` fault matches: for `records` when `value >= N`, for
 * the checkpoint points when `value === N`. Call only behind `faults() !== null`.
 */
export function crashPoint(point: CrashPoint, value: number): void {
  const f = faults();
  if (!f) return;
  for (const c of f.crash) {
    if (c.point !== point || (point === 'records' ? value < c.at : value !== c.at)) continue;
    const dir = process.env.FLUXO_FAULTS_ONCE_DIR;
    if (dir) {
      try {
        closeSync(openSync(join(dir, c.text.replace(/[^A-Za-z0-9_.-]/g, '_')), 'wx'));
      } catch {
        continue; // fired before
      }
    }
    process.stderr.write(`fluxo: fault injection: ${c.text}: SIGKILL\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the calling thread for the `slow@sink` delay, if one is set. */
export function sinkDelay(): void {
  const ms = faults()?.sinkDelayMs ?? 0;
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}
