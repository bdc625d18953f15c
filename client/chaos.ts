import { hostname } from 'node:os';
import { EngineError } from '../core/errors/index.js';
import type { TaskManagerInfo } from '../core/rpc/index.js';
import type { JobManagerClient } from './jm-client.js';

/** Parses a duration like `500ms`, `5s`, `2m` (a bare number is ms). @throws EngineError SPEC_INVALID */
export function parseDurationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new EngineError('SPEC_INVALID', `not a duration: "${text}" (use e.g. 500ms, 5s, 2m)`);
  const n = Number(m[1]);
  return Math.round(m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n);
}

export interface KillOptions {
  /** kill this TaskManager */
  id?: string;
  /** pick a live TaskManager at random (default when no id is given) */
  random?: boolean;
  /** time between kills, ms; with count > 1. Default 5000 */
  everyMs: number;
  /** how many kills. Default 1 */
  count: number;
}

/**
 * `fluxo chaos kill-taskmanager`: sends SIGKILL to TaskManager processes the JobManager knows,
 * by the pid they registered with. Only TaskManagers on this host can be killed (the command says
 * so for others). Prints one line per kill.
 * @throws EngineError NO_RESOURCES when no live TaskManager on this host matches
 */
export async function killTaskManagers(
  client: JobManagerClient,
  o: KillOptions,
  say: (line: string) => void,
): Promise<void> {
  const here = hostname();
  for (let i = 0; i < o.count; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, o.everyMs));
    const alive = (await client.listTaskManagers()).filter((t) => t.state === 'ALIVE');
    let victim: TaskManagerInfo | undefined;
    if (o.id) {
      victim = alive.find((t) => t.taskmanagerId === o.id);
      if (!victim) throw new EngineError('NO_RESOURCES', `no live TaskManager ${o.id}`);
    } else {
      const local = alive.filter((t) => t.hostname === here && t.pid > 0);
      if (local.length === 0)
        throw new EngineError('NO_RESOURCES', `no live TaskManager on this host (${here}) to kill`);
      victim = local[Math.floor(Math.random() * local.length)];
    }
    if (victim.hostname !== here) {
      throw new EngineError(
        'NO_RESOURCES',
        `TaskManager ${victim.taskmanagerId} runs on ${victim.hostname}, not on this host; kill it there`,
      );
    }
    try {
      process.kill(victim.pid, 'SIGKILL');
    } catch (err) {
      throw new EngineError(
        'INTERNAL',
        `cannot kill TaskManager ${victim.taskmanagerId} (pid ${victim.pid}): ${(err as Error).message}`,
      );
    }
    say(`killed TaskManager ${victim.taskmanagerId} (pid ${victim.pid}, ${victim.controlAddress})`);
  }
}
