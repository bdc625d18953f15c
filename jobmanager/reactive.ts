/**
 * Reactive mode (`fluxo jobmanager --scheduler reactive`), after Flink's Reactive Mode of the
 * adaptive scheduler (docs: deployment/elastic_scaling): a job's parallelism follows the slots the
 * cluster has, so adding TaskManagers (an Auto Scaling group growing) scales running jobs up, and
 * losing some scales them down instead of leaving them waiting for the slots that went away.
 *
 * The rules (the pure parts live here; jobmanager.ts acts on them):
 *
 * - **What rescales.** Only the keyed vertices (`window`, rollups `window-2`…, detect, running
 *   aggregates): every one of them runs at the target parallelism `p`, whatever the spec's
 *   `parallelism` and a keyed step's own `parallelism` say (Flink's Reactive Mode ignores
 *   configured parallelism the same way). The source keeps one subtask per input split (file
 *   paths, generator `splits`, redis-stream `partitions`), so its positions restore one to one at
 *   any `p`, and file/stdout sinks, late data and dead letters stay at 1. A job without a keyed
 *   step has nothing to rescale: it runs at its own shape.
 * - **Target.** `p = min(slots for the job, reactive.maxParallelism of the spec, maxParallelism)`,
 *   at least 1. With slot sharing a slot holds one subtask of every vertex, so the job holds
 *   `max(p, source splits)` slots: it needs at least one slot per source split to run at all, and
 *   waits (CREATED, "waiting for slots") below that, with no NO_RESOURCES deadline (Flink's
 *   `resource-wait-timeout` is infinite in Reactive Mode too).
 * - **Slots for the job.** On (re)deploy: the free slots. For a running job deciding whether to
 *   scale up: the slots it holds plus the free ones; jobs are considered oldest first and never
 *   take slots from one another. Reactive mode is meant for one job per cluster, as Flink's
 *   (application clusters); with several, the oldest gets the free slots first.
 * - **Scale up** happens `resourceStabilizationMs` after TaskManagers joined (or another job
 *   freed slots), debounced: every join re-arms the timer, so TaskManagers that join together
 *   cause one rescale; the wait is at most 3 × the timeout after the first join, so a steady
 *   trickle cannot postpone it forever (Flink: `jobmanager.adaptive-scheduler.
 *   resource-stabilization-timeout`). A rescale cancels the attempt and deploys attempt + 1 at the
 *   new parallelism restoring the latest completed checkpoint (key groups redistributed, as a
 *   restore from a savepoint at another `--parallelism`); the new attempt's fencing epoch fences
 *   the old one's sinks, so exactly-once output stays exactly-once. With no completed checkpoint
 *   yet the job starts over from the beginning (a transactional sink has committed nothing yet).
 *   A rescale does not count against the restart strategy.
 * - **Scale down** needs no timer: losing a TaskManager fails the job over as always (restart
 *   strategy, delay), and its next attempt is deployed at the slots that remain.
 * - **Jobs without checkpoints** (no `checkpoint:` block and no cluster default) are not reactive:
 *   a rescale would have to drop their state and write their output again. They run at their
 *   own parallelism as under the default scheduler; the JobManager logs why at submit.
 */
import { isKeyedVertex } from '../core/graph/build.js';
import type { JobGraph } from '../core/graph/types.js';
import type { JobSpec } from '../core/spec/types.js';

/** `fluxo jobmanager --scheduler`: `default` (fixed parallelism) or `reactive` (this module). */
export type SchedulerKind = 'default' | 'reactive';

/** Default of `--resource-stabilization-timeout`, ms. */
export const DEFAULT_RESOURCE_STABILIZATION_MS = 3000;

/** What the target parallelism of a job depends on, read from its spec and graph. */
export interface ReactiveShape {
  /** subtasks of the source: one per input split, fixed */
  splits: number;
  /** the job has a keyed vertex (only those rescale) */
  keyed: boolean;
  /** the job's `maxParallelism` (number of key groups) */
  maxParallelism: number;
  /** the spec's `reactive.maxParallelism`, when set */
  cap?: number;
  /** the parallelism the job has now (its spec's `parallelism`) */
  parallelism: number;
}

/** The shape of a job for `targetParallelism`. */
export function reactiveShape(spec: JobSpec, graph: JobGraph): ReactiveShape {
  return {
    splits: graph.vertices.find((v) => v.id === 'source')?.parallelism ?? 1,
    keyed: graph.vertices.some((v) => isKeyedVertex(v.id)),
    maxParallelism: graph.maxParallelism,
    cap: spec.reactive?.maxParallelism,
    parallelism: spec.parallelism,
  };
}

/**
 * The parallelism reactive mode gives a job with `slotsAvailable` slots for it (module comment):
 * `{ parallelism, slots }` (the job then holds `slots` = max(parallelism, splits) slots), or
 * `{ minSlots }` when it cannot run on so few (it needs one slot per source split). A job without
 * a keyed vertex keeps its `parallelism` (it changes no vertex).
 */
export function targetParallelism(
  shape: ReactiveShape,
  slotsAvailable: number,
): { parallelism: number; slots: number } | { minSlots: number } {
  const minSlots = Math.max(1, shape.splits);
  if (slotsAvailable < minSlots) return { minSlots };
  if (!shape.keyed) return { parallelism: shape.parallelism, slots: minSlots };
  const parallelism = Math.max(1, Math.min(slotsAvailable, shape.cap ?? shape.maxParallelism, shape.maxParallelism));
  return { parallelism, slots: Math.max(parallelism, minSlots) };
}

/**
 * The spec a job runs with at reactive parallelism `p`: `parallelism: p`, and no `parallelism`
 * on keyed steps (window, detect, running), so every keyed vertex runs `p` subtasks. Filter and
 * map steps keep theirs (it must equal the source's splits anyway). Returns a new object; `spec`
 * is not changed.
 */
export function reactiveSpec(spec: JobSpec, p: number): JobSpec {
  const steps = spec.steps.map((s) => {
    if ((s.kind === 'window' || s.kind === 'detect' || s.kind === 'running') && s.parallelism !== undefined) {
      const { parallelism: _, ...rest } = s;
      return rest as typeof s;
    }
    return s;
  });
  return { ...spec, parallelism: p, steps };
}

/** The exceptions entry of a rescale: `rescale 1 → 3: TaskManagers joined`. */
export function rescaleReason(from: number, to: number, cause: string): string {
  return `rescale ${from} → ${to}: ${cause}`;
}

/** Options of a {@link StabilizationTimer}. */
export interface StabilizationOptions {
  /** quiet time after the last `poke` before `onStable` runs, ms (≥ 0) */
  delayMs: number;
  /** longest time from the first `poke` to `onStable`, ms. Default 3 × `delayMs` */
  maxDelayMs?: number;
  /** called once per burst of pokes with their causes, deduplicated, in first-poke order */
  onStable: (causes: string[]) => void;
}

/**
 * Debounces resource changes (Flink's resource stabilization timeout): after a `poke`, waits
 * until no other poke came for `delayMs`, but no longer than `maxDelayMs` after the first one of
 * the burst, then calls `onStable` once. Several TaskManagers joining together thus cause one
 * rescale. Timers are unref'd (they never keep the process alive).
 */
export class StabilizationTimer {
  private timer: NodeJS.Timeout | undefined;
  private firstAtMs: number | undefined;
  private causes: string[] = [];

  constructor(private readonly o: StabilizationOptions) {}

  /** True while a burst is waiting to settle. */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  /** A resource change (`cause`, e.g. `TaskManagers joined`): (re)arms the timer. */
  poke(cause: string): void {
    const now = Date.now();
    this.firstAtMs ??= now;
    if (!this.causes.includes(cause)) this.causes.push(cause);
    const maxDelayMs = this.o.maxDelayMs ?? 3 * this.o.delayMs;
    const at = Math.min(now + this.o.delayMs, this.firstAtMs + maxDelayMs);
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - now));
    this.timer.unref();
  }

  /** Drops a waiting burst without calling `onStable`. */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.firstAtMs = undefined;
    this.causes = [];
  }

  private fire(): void {
    const causes = this.causes;
    this.cancel();
    this.o.onStable(causes);
  }
}
