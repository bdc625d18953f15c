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
 * so for others). Prints one line per kill. A TaskManager (id or pid) killed earlier in the same
 * call is never picked again, even while the JobManager still lists it as ALIVE (it notices a kill
 * only when the heartbeat stream breaks).
 * @throws EngineError NO_RESOURCES when no live TaskManager on this host matches (or every one left
 *   was already killed by this call); INTERNAL when the kill itself fails
 */
export async function killTaskManagers(
  client: JobManagerClient,
  o: KillOptions,
  say: (line: string) => void,
): Promise<void> {
  const here = hostname();
  const killedIds = new Set<string>();
  const killedPids = new Set<number>();
  const killedHere = (t: TaskManagerInfo): boolean =>
    killedIds.has(t.taskmanagerId) || (t.hostname === here && killedPids.has(t.pid));
  for (let i = 0; i < o.count; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, o.everyMs));
    const alive = (await client.listTaskManagers()).filter((t) => t.state === 'ALIVE' && !killedHere(t));
    let victim: TaskManagerInfo | undefined;
    if (o.id) {
      victim = alive.find((t) => t.taskmanagerId === o.id);
      if (!victim) {
        throw new EngineError(
          'NO_RESOURCES',
          killedIds.has(o.id)
            ? `TaskManager ${o.id} was already killed by this command (it is killed once; --count ${o.count} needs --random)`
            : `no live TaskManager ${o.id}`,
        );
      }
    } else {
      const local = alive.filter((t) => t.hostname === here && t.pid > 0);
      if (local.length === 0) {
        throw new EngineError(
          'NO_RESOURCES',
          killedIds.size > 0
            ? `no live TaskManager on this host (${here}) left to kill after ${killedIds.size} kill${killedIds.size > 1 ? 's' : ''}`
            : `no live TaskManager on this host (${here}) to kill`,
        );
      }
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
    killedIds.add(victim.taskmanagerId);
    killedPids.add(victim.pid);
    say(`killed TaskManager ${victim.taskmanagerId} (pid ${victim.pid}, ${victim.controlAddress})`);
  }
}
