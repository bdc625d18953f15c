import type { JobSpec } from '../spec/types.js';
import { type JobGraph, type TaskDeploymentDescriptor, type TaskLocation, taskKeyOf } from './types.js';

/** A free slot offered by a TaskManager. */
export interface SlotRef {
  taskmanagerId: string;
  slot: number;
  dataAddress: string;
}

/**
 * Builds the execution graph: every vertex × parallelism becomes a subtask; subtask i of every
 * vertex goes to `slots[i]` (Flink's slot sharing: one slot holds one subtask of each vertex, so a
 * job needs as many slots as its largest parallelism), except that single-subtask vertices other
 * than the source go to the last slot used. Input channels of a task are numbered edge
 * by edge (in edge order), then by producer subtask.
 * @param slots at least `max(parallelism)` slots, in the order they should be used
 */
export function buildDeployment(
  jobId: string,
  attempt: number,
  spec: JobSpec,
  graph: JobGraph,
  slots: SlotRef[],
): TaskDeploymentDescriptor[] {
  const location = new Map<string, TaskLocation[]>();
  const used = Math.max(...graph.vertices.map((v) => v.parallelism));
  for (const v of graph.vertices) {
    const locs: TaskLocation[] = [];
    // Single-subtask vertices after the source (sinks, side outputs) go to the last slot, away
    // from the source, so the source's slot does not also carry all the output work.
    const offset = v.id !== 'source' && v.parallelism === 1 ? used - 1 : 0;
    for (let i = 0; i < v.parallelism; i++) {
      const s = slots[offset + i];
      if (!s) throw new Error(`not enough slots for ${v.id}[${i}]`);
      locs.push({
        taskKey: taskKeyOf(jobId, attempt, `${v.id}-${i}`),
        taskmanagerId: s.taskmanagerId,
        dataAddress: s.dataAddress,
        slot: s.slot,
      });
    }
    location.set(v.id, locs);
  }
  const channelBase = new Map<number, number>();
  const totals = new Map<string, number>();
  for (const e of graph.edges) {
    const base = totals.get(e.target) ?? 0;
    channelBase.set(e.id, base);
    totals.set(e.target, base + (location.get(e.source)?.length ?? 0));
  }
  const descs: TaskDeploymentDescriptor[] = [];
  for (const v of graph.vertices) {
    const locs = location.get(v.id) as TaskLocation[];
    for (let i = 0; i < v.parallelism; i++) {
      descs.push({
        jobId,
        attempt,
        taskId: `${v.id}-${i}`,
        taskKey: locs[i].taskKey,
        vertexId: v.id,
        subtask: i,
        parallelism: v.parallelism,
        taskmanagerId: locs[i].taskmanagerId,
        slot: locs[i].slot,
        spec,
        graph,
        inputs: graph.edges
          .filter((e) => e.target === v.id)
          .map((e) => ({
            edgeId: e.id,
            channelBase: channelBase.get(e.id) as number,
            producers: location.get(e.source) as TaskLocation[],
          })),
        outputs: graph.edges
          .filter((e) => e.source === v.id)
          .map((e) => ({
            edgeId: e.id,
            consumers: location.get(e.target) as TaskLocation[],
            consumerChannel: (channelBase.get(e.id) as number) + i,
          })),
      });
    }
  }
  return descs;
}
