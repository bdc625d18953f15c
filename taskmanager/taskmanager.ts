import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ClusterConfig } from '../core/config/index.js';
import { EngineError } from '../core/errors/index.js';
import { faults } from '../core/fault/inject.js';
import type { TaskDeploymentDescriptor, TaskLocation } from '../core/graph/types.js';
import type { Logger } from '../core/log/index.js';
import { Backoff } from '../core/rpc/backoff.js';
import {
  type AcknowledgeCheckpointRequest,
  type CancelJobTasksRequest,
  type Credit,
  type CreditBatch,
  channelCredentials,
  channelOptions,
  clientSecurityOptions,
  type DataBatch,
  type DataFrame,
  type DeclineCheckpointRequest,
  type DeployTasksRequest,
  explainTransportError,
  fluxoProto,
  grpc,
  type HeartbeatRequest,
  type HeartbeatResponse,
  handleUnary,
  isAuthRefusal,
  type NotifyCheckpointCompleteRequest,
  type RegisterTaskManagerResponse,
  type ReportTaskStateRequest,
  type RpcSecurity,
  refusalMessage,
  type StartTasksRequest,
  serverCredentials,
  serverSecurityOptions,
  type TriggerTaskCheckpointRequest,
  throttleRefusals,
  unary,
} from '../core/rpc/index.js';
import type { TaskCounters } from '../core/runtime/transport.js';
import type { FromSlot, SlotWorkerData, ToSlot } from './messages.js';

/** Options of `fluxo taskmanager`. */
export interface TaskManagerOptions {
  /** JobManager RPC address, `host:port` */
  jobmanager: string;
  /** task slots, one worker thread each. Default 1 */
  slots: number;
  /** address to bind the TaskManager's gRPC server (control + data plane) to. Default 127.0.0.1 */
  host: string;
  /** address other processes use to reach this TaskManager. Default: `host` (or the hostname when host is 0.0.0.0) */
  advertiseHost?: string;
  /** port of the gRPC server; 0 = any free port. Default 0 */
  dataPort: number;
  /** id; default `tm-<random>` */
  id?: string;
  /**
   * TLS and cluster token (core/rpc/security.ts): its gRPC server (control calls of the
   * JobManager, data streams of other TaskManagers) requires them, and its calls to the
   * JobManager and to other TaskManagers carry them. Default `{}`: plaintext, open.
   */
  security?: RpcSecurity;
  config: Readonly<ClusterConfig>;
  log: Logger;
}

interface Slot {
  worker: Worker;
  index: number;
}

/**
 * A TaskManager process: slots as worker threads, one gRPC server for the control calls of the
 * JobManager and the data plane of other TaskManagers, registration and a heartbeat stream to the
 * JobManager. Frames between slots of this process are routed through the main thread (a local
 * channel, no serialisation); frames for other TaskManagers go over one Exchange stream per peer.
 */
/**
 * How long a TaskManager whose data stream broke waits before failing the attempt itself (ms): a
 * peer that died is noticed by the JobManager through its heartbeat at once, and that failover
 * names the lost TaskManager; only a break the heartbeats do not see (a cut between two
 * TaskManagers) is left to this report. Env FLUXO_DATA_CONNECTION_GRACE_MS, default 1000.
 */
const DATA_CONNECTION_GRACE_MS = Number(process.env.FLUXO_DATA_CONNECTION_GRACE_MS ?? 1000);

/** `jobId:attempt` of a task key `jobId:attempt:taskId`. */
function attemptOf(taskKey: string): string {
  return taskKey.slice(0, taskKey.lastIndexOf(':'));
}

export class TaskManager {
  readonly id: string;
  private readonly server: grpc.Server;
  private readonly slots: Slot[] = [];
  private address = '';
  private jmClient: grpc.Client | undefined;
  private heartbeatCall: grpc.ClientDuplexStream<HeartbeatRequest, HeartbeatResponse> | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly taskSlot = new Map<string, number>();
  private readonly outStreams = new Map<string, grpc.ClientDuplexStream<DataBatch, CreditBatch>>();
  private readonly inStreams = new Map<string, grpc.ServerDuplexStream<DataBatch, CreditBatch>>();
  private readonly metrics = new Map<
    string,
    { jobId: string; attempt: number; taskId: string; counters: TaskCounters }
  >();
  /** slot index → its worker's V8 heap in use, bytes, from the worker's last metrics message */
  private readonly slotHeapBytes = new Map<number, number>();
  private readonly deployWaiters = new Map<number, { left: number; errors: string[]; done: () => void }>();
  private nextReqId = 1;
  private stopping = false;
  private readonly peers = new Map<string, grpc.Client>();
  /** per data stream (outbound stream or inbound call): the attempts (`jobId:attempt`) whose frames it carried */
  private readonly streamAttempts = new WeakMap<object, Set<string>>();
  /**
   * Attempts whose data connection broke here. Frames cannot be replayed once a stream is lost, so
   * such an attempt is fenced on this TaskManager until the JobManager cancels it: its frames are
   * dropped both ways (no later frame can arrive behind a gap) and its checkpoint acks withheld
   * (no checkpoint can complete over lost records); after `DATA_CONNECTION_GRACE_MS` one of its
   * tasks here is reported FAILED, unless the JobManager failed the attempt over already (a
   * TaskManager that died breaks its streams and its heartbeat at once). Flink likewise fails the
   * tasks of a broken data connection (its PartitionNotFound / RemoteTransportException path).
   */
  private readonly brokenAttempts = new Set<string>();

  constructor(private readonly opts: TaskManagerOptions) {
    this.id = opts.id ?? `tm-${randomUUID().slice(0, 8)}`;
    this.server = new grpc.Server({
      ...channelOptions,
      ...serverSecurityOptions(
        opts.security,
        `TaskManager ${this.id}`,
        throttleRefusals((r) => opts.log.warn(r, refusalMessage(r))),
      ),
    });
  }

  get dataAddress(): string {
    return this.address;
  }

  /** Starts slots and the server, then registers with the JobManager (retrying for up to 30 s). */
  async start(): Promise<void> {
    const { log } = this.opts;
    await this.startSlots();
    const proto = fluxoProto();
    this.server.addService(proto.TaskManagerService.service, {
      deployTasks: handleUnary((req: DeployTasksRequest) => this.deploy(req)),
      startTasks: handleUnary(async (req: StartTasksRequest) => {
        this.broadcast({ t: 'start', jobId: req.jobId, attempt: req.attempt });
        return {};
      }),
      cancelJobTasks: handleUnary(async (req: CancelJobTasksRequest) => {
        this.broadcast({ t: 'cancel', jobId: req.jobId, attempt: req.attempt });
        return {};
      }),
      triggerCheckpoint: handleUnary(async (req: TriggerTaskCheckpointRequest) => {
        this.broadcast({
          t: 'triggerCheckpoint',
          jobId: req.jobId,
          attempt: req.attempt,
          checkpointId: req.checkpointId,
          timestampMs: req.timestampMs,
          flags: req.flags,
          haltSources: req.haltSources,
        });
        return {};
      }),
      notifyCheckpointComplete: handleUnary(async (req: NotifyCheckpointCompleteRequest) => {
        this.broadcast({
          t: 'checkpointComplete',
          jobId: req.jobId,
          attempt: req.attempt,
          checkpointId: req.checkpointId,
        });
        return {};
      }),
      stopSources: handleUnary(async (req: CancelJobTasksRequest) => {
        this.broadcast({ t: 'stopSources', jobId: req.jobId, attempt: req.attempt });
        return {};
      }),
      shutdownTaskManager: handleUnary(async () => {
        setTimeout(() => void this.stop().then(() => process.exit(0)), 50);
        return {};
      }),
    });
    this.server.addService(proto.DataPlaneService.service, {
      exchange: (call: grpc.ServerDuplexStream<DataBatch, CreditBatch>) => this.onExchange(call),
    });
    const port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(
        `${this.opts.host}:${this.opts.dataPort}`,
        serverCredentials(this.opts.security?.tls),
        (err, p) =>
          err
            ? reject(
                new EngineError('INTERNAL', `cannot listen on ${this.opts.host}:${this.opts.dataPort}: ${err.message}`),
              )
            : resolve(p),
      );
    });
    const adv =
      this.opts.advertiseHost ??
      (this.opts.host === '0.0.0.0' || this.opts.host === '::' ? hostname() : this.opts.host);
    this.address = `${adv}:${port}`;
    log.info({ taskmanagerId: this.id, address: this.address, slots: this.slots.length }, 'taskmanager listening');
    // parsed here so a bad value fails the start, not a worker thread later
    if (faults())
      log.warn(
        { faults: process.env.FLUXO_FAULTS },
        'fault injection active (FLUXO_FAULTS): this TaskManager will crash or slow down on purpose',
      );
    await this.register();
  }

  private async startSlots(): Promise<void> {
    const here = dirname(fileURLToPath(import.meta.url));
    const workerFile = join(here, 'slot-worker.js');
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.opts.slots; i++) {
      const data: SlotWorkerData = {
        taskmanagerId: this.id,
        slot: i,
        redisUrl: this.opts.config.redisUrl,
        clusterId: this.opts.config.clusterId,
        config: {
          batchRecords: this.opts.config.batchRecords,
          sourceBatchLines: this.opts.config.sourceBatchLines,
          channelCredits: this.opts.config.channelCredits,
          bufferTimeoutMs: this.opts.config.bufferTimeoutMs,
        },
        metricsIntervalMs: this.opts.config.heartbeatIntervalMs,
      };
      // A larger young generation than V8's default: tasks allocate a row per record and most die
      // young, so fewer scavenges. Measured on the benchmark: p1 0.34 → 0.42, p2 0.40 → 0.44 of
      // the baseline, CPU 8.2 s → 7.2 s, peak RSS +10 to +20 MiB per TaskManager.
      const worker = new Worker(workerFile, { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 64 } });
      const slot = { worker, index: i };
      this.slots.push(slot);
      ready.push(
        new Promise((resolve, reject) => {
          worker.once('error', reject);
          worker.on('message', (m: FromSlot) => {
            if (m.t === 'ready') resolve();
            else this.onSlotMessage(slot, m);
          });
        }),
      );
      worker.on('error', (err) => {
        this.opts.log.fatal({ err, slot: i }, 'slot worker crashed');
        process.exit(70);
      });
    }
    await Promise.all(ready);
  }

  private async register(): Promise<void> {
    const proto = fluxoProto();
    const target = this.opts.jobmanager;
    this.jmClient = new proto.JobManagerService(target, channelCredentials(this.opts.security?.tls), {
      ...channelOptions,
      ...clientSecurityOptions(this.opts.security),
    });
    const deadline = Date.now() + 30_000;
    // 200 ms doubling to 2 s, ±20 %: TaskManagers that lost the same JobManager (a restart, a
    // healed partition) spread their retries instead of knocking all at once
    const backoff = new Backoff();
    for (;;) {
      try {
        const res = await unary<unknown, RegisterTaskManagerResponse>(
          this.jmClient,
          'registerTaskManager',
          {
            taskmanagerId: this.id,
            controlAddress: this.address,
            slots: this.slots.map((s) => ({ index: s.index, dataAddress: this.address })),
            pid: process.pid,
            hostname: hostname(),
          },
          `JobManager at ${target}`,
          5_000,
        );
        this.opts.log.info(
          { taskmanagerId: this.id, jobmanager: target, clusterId: res.clusterId },
          'registered with jobmanager',
        );
        this.startHeartbeats(res.heartbeatIntervalMs || this.opts.config.heartbeatIntervalMs);
        return;
      } catch (e) {
        // a refused token stays refused: no retrying
        if (isAuthRefusal(e)) throw e;
        const err = explainTransportError(e, this.opts.security);
        if (Date.now() > deadline) {
          throw new EngineError(
            'JOBMANAGER_UNAVAILABLE',
            `cannot reach the JobManager at ${target} (tried for 30 s): ${(err as Error).message.replace(`cannot reach JobManager at ${target}: `, '')}`,
            { cause: err },
          );
        }
        const delay = backoff.next();
        this.opts.log.warn(
          { jobmanager: target, retryInMs: delay, reason: (err as Error).message },
          'jobmanager not reachable, retrying',
        );
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private startHeartbeats(intervalMs: number): void {
    const client = this.jmClient as grpc.Client;
    const call = (
      client as unknown as { heartbeat: () => grpc.ClientDuplexStream<HeartbeatRequest, HeartbeatResponse> }
    ).heartbeat();
    this.heartbeatCall = call;
    const beat = (): void => {
      const tasks = [...this.metrics.values()].map((m) => ({
        taskId: `${m.jobId}:${m.attempt}:${m.taskId}`,
        countersJson: JSON.stringify(m.counters),
      }));
      // each worker thread has its own V8 heap: the process's heap is the main thread's plus theirs
      let heapUsedBytes = process.memoryUsage().heapUsed;
      for (const b of this.slotHeapBytes.values()) heapUsedBytes += b;
      call.write({
        taskmanagerId: this.id,
        sentAtMs: Date.now(),
        rssBytes: process.memoryUsage.rss(),
        tasks,
        heapUsedBytes,
      });
    };
    beat();
    this.heartbeatTimer = setInterval(beat, intervalMs);
    call.on('data', (res: HeartbeatResponse) => {
      if (!res.known && !this.stopping && this.heartbeatCall === call) {
        // The JobManager declared this TaskManager lost (e.g. it was frozen past the heartbeat
        // timeout) and failed its jobs: nothing of theirs may keep running here (zombie tasks).
        this.opts.log.warn('jobmanager no longer knows this taskmanager; cancelling all tasks and re-registering');
        this.broadcast({ t: 'cancel', jobId: '*', attempt: Number.MAX_SAFE_INTEGER });
        this.metrics.clear();
        this.reconnect();
      }
    });
    const lost = (why: string): void => {
      if (this.stopping || this.heartbeatCall !== call) return;
      this.opts.log.error({ reason: why }, 'lost the jobmanager; cancelling all tasks and re-registering');
      this.broadcast({ t: 'cancel', jobId: '*', attempt: Number.MAX_SAFE_INTEGER });
      this.metrics.clear();
      this.reconnect();
    };
    call.on('error', (err) => lost(err.message));
    call.on('end', () => lost('heartbeat stream ended'));
  }

  private reconnect(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    const old = this.heartbeatCall;
    this.heartbeatCall = undefined;
    old?.cancel();
    this.jmClient?.close();
    this.register().catch((err) => {
      this.opts.log.fatal({ err }, 'giving up on the jobmanager');
      process.stderr.write(`fluxo taskmanager: ${(err as Error).message}\n`);
      process.exit(69);
    });
  }

  private broadcast(msg: ToSlot): void {
    for (const s of this.slots) s.worker.postMessage(msg);
  }

  private async deploy(req: DeployTasksRequest): Promise<Record<string, never>> {
    const descs = JSON.parse(req.tasksJson) as TaskDeploymentDescriptor[];
    const bySlot = new Map<number, TaskDeploymentDescriptor[]>();
    for (const d of descs) {
      if (d.slot >= this.slots.length)
        throw new EngineError(
          'NO_RESOURCES',
          `task ${d.taskId} wants slot ${d.slot}, this taskmanager has ${this.slots.length}`,
        );
      const list = bySlot.get(d.slot) ?? [];
      list.push(d);
      bySlot.set(d.slot, list);
      this.taskSlot.set(d.taskKey, d.slot);
    }
    const reqId = this.nextReqId++;
    const errors: string[] = [];
    await new Promise<void>((done) => {
      this.deployWaiters.set(reqId, { left: bySlot.size, errors, done });
      for (const [slot, list] of bySlot)
        this.slots[slot].worker.postMessage({ t: 'deploy', reqId, descs: list } satisfies ToSlot);
      if (bySlot.size === 0) done();
    });
    this.deployWaiters.delete(reqId);
    if (errors.length > 0) throw new EngineError('TASK_FAILED', `on ${this.id}: ${errors.join('; ')}`);
    return {};
  }

  private onSlotMessage(slot: Slot, m: FromSlot): void {
    switch (m.t) {
      case 'deployed': {
        const w = this.deployWaiters.get(m.reqId);
        if (!w) return;
        if (m.error) w.errors.push(`${m.error.code}: ${m.error.message}`);
        if (--w.left === 0) w.done();
        return;
      }
      case 'frames':
        for (const it of m.items) this.route(it.dest, it.frame);
        this.scheduleFlush();
        return;
      case 'credits':
        for (const it of m.items) this.routeCredit(it.dest, it.key, it.credits);
        this.scheduleFlush();
        return;
      case 'metrics':
        for (const t of m.tasks) this.metrics.set(`${t.jobId}:${t.attempt}:${t.taskId}`, t);
        this.slotHeapBytes.set(slot.index, m.heapUsedBytes);
        return;
      case 'state': {
        this.metrics.delete(`${m.jobId}:${m.attempt}:${m.taskId}`);
        this.taskSlot.delete(`${m.jobId}:${m.attempt}:${m.taskId}`);
        const attemptKey = `${m.jobId}:${m.attempt}`;
        if (this.brokenAttempts.has(attemptKey) && this.liveTaskOf(attemptKey) === undefined)
          this.brokenAttempts.delete(attemptKey);
        void this.reportTaskState({
          taskmanagerId: this.id,
          jobId: m.jobId,
          attempt: m.attempt,
          taskId: m.taskId,
          state: m.state,
          errorCode: m.errorCode,
          errorMessage: m.errorMessage,
          countersJson: JSON.stringify(m.counters),
        });
        return;
      }
      case 'ckptAck':
        if (this.brokenAttempts.has(`${m.jobId}:${m.attempt}`)) return; // fenced: see brokenAttempts
        void this.toJobManager('acknowledgeCheckpoint', {
          taskmanagerId: this.id,
          jobId: m.jobId,
          attempt: m.attempt,
          taskId: m.taskId,
          checkpointId: m.checkpointId,
          parts: m.parts,
          stateBytes: m.stateBytes,
          alignmentMs: m.alignmentMs,
        } satisfies AcknowledgeCheckpointRequest);
        return;
      case 'ckptDecline':
        void this.toJobManager('declineCheckpoint', {
          taskmanagerId: this.id,
          jobId: m.jobId,
          attempt: m.attempt,
          taskId: m.taskId,
          checkpointId: m.checkpointId,
          reason: m.reason,
          message: m.message,
        } satisfies DeclineCheckpointRequest);
        return;
      case 'ready':
        return;
      default:
        this.opts.log.error(
          { slot: slot.index, message: (m as { t?: unknown }).t },
          'unknown message from slot worker',
        );
    }
  }

  /** A one-way message to the JobManager (checkpoint acks and declines); a failure is logged, the coordinator's timeout covers it. */
  private async toJobManager(method: string, req: object): Promise<void> {
    try {
      if (!this.jmClient) throw new Error('not registered');
      await unary(this.jmClient, method, req, 'JobManager');
    } catch (err) {
      this.opts.log.warn({ err, method }, 'cannot reach the jobmanager');
    }
  }

  /**
   * Reports a task's final state to the JobManager, retrying (5 attempts, 200 ms doubling, ±20 %)
   * so a passing hiccup cannot leave a job RUNNING forever; gives up (logged) when the JobManager is gone.
   */
  private async reportTaskState(req: ReportTaskStateRequest): Promise<void> {
    const backoff = new Backoff();
    for (let attempt = 1; ; attempt++) {
      try {
        if (!this.jmClient) throw new Error('not registered');
        await unary(this.jmClient, 'reportTaskState', req, 'JobManager');
        return;
      } catch (err) {
        if (attempt >= 5 || this.stopping) {
          this.opts.log.error(
            { err, jobId: req.jobId, taskId: req.taskId, state: req.state },
            'cannot report task state',
          );
          return;
        }
        await new Promise((r) => setTimeout(r, backoff.next()));
      }
    }
  }

  // Outgoing traffic is coalesced per event-loop turn: one postMessage per slot worker, one gRPC
  // message per peer TaskManager, each carrying every frame (or credit) queued in that turn, in order.
  private readonly toSlot = new Map<
    number,
    {
      frames: { taskKey: string; frame: Uint8Array }[];
      transfer: ArrayBuffer[];
      credits: { taskKey: string; key: string; credits: number }[];
    }
  >();
  private readonly toPeer = new Map<string, DataFrame[]>();
  /** data address → TaskManager id, for messages */
  private readonly peerNames = new Map<string, string>();
  private readonly creditsToPeer = new Map<string, Credit[]>();
  private flushScheduled = false;

  private slotOutbox(slot: number) {
    let box = this.toSlot.get(slot);
    if (!box) {
      box = { frames: [], transfer: [], credits: [] };
      this.toSlot.set(slot, box);
    }
    return box;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const [slot, box] of this.toSlot) {
        const w = this.slots[slot]?.worker;
        if (box.frames.length > 0) w?.postMessage({ t: 'frames', items: box.frames } satisfies ToSlot, box.transfer);
        if (box.credits.length > 0) w?.postMessage({ t: 'credits', items: box.credits } satisfies ToSlot);
      }
      this.toSlot.clear();
      for (const [address, frames] of this.toPeer) {
        const stream = this.outStream(address);
        this.noteAttempts(stream, frames);
        stream.write({ frames } satisfies DataBatch);
      }
      this.toPeer.clear();
      for (const [tmId, credits] of this.creditsToPeer) {
        const call = this.inStreams.get(tmId);
        if (call) call.write({ credits } satisfies CreditBatch);
        else
          this.opts.log.warn(
            { taskmanagerId: tmId, credits: credits.length },
            'no data stream from the producer TaskManager; credits dropped',
          );
      }
      this.creditsToPeer.clear();
    });
  }

  /** Queues a frame for a task: for a slot worker of this TaskManager, or for its TaskManager over gRPC. */
  private route(dest: TaskLocation, frame: Uint8Array): void {
    if (dest.taskmanagerId === this.id) {
      const box = this.slotOutbox(dest.slot);
      box.frames.push({ taskKey: dest.taskKey, frame });
      box.transfer.push(frame.buffer as ArrayBuffer);
      return;
    }
    if (this.brokenAttempts.size > 0 && this.brokenAttempts.has(attemptOf(dest.taskKey))) return;
    let list = this.toPeer.get(dest.dataAddress);
    if (!list) {
      list = [];
      this.toPeer.set(dest.dataAddress, list);
      this.peerNames.set(dest.dataAddress, dest.taskmanagerId); // once per peer and flush, not per frame
    }
    list.push({ targetTask: dest.taskKey, frame: Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength) });
  }

  private routeCredit(dest: TaskLocation, key: string, credits: number): void {
    if (dest.taskmanagerId === this.id) {
      this.slotOutbox(dest.slot).credits.push({ taskKey: dest.taskKey, key, credits });
      return;
    }
    let list = this.creditsToPeer.get(dest.taskmanagerId);
    if (!list) {
      list = [];
      this.creditsToPeer.set(dest.taskmanagerId, list);
    }
    list.push({ producerTask: dest.taskKey, outputChannel: key, credits });
  }

  private outStream(address: string): grpc.ClientDuplexStream<DataBatch, CreditBatch> {
    const existing = this.outStreams.get(address);
    if (existing) return existing;
    let client = this.peers.get(address);
    if (!client) {
      client = new (fluxoProto().DataPlaneService)(address, channelCredentials(this.opts.security?.tls), {
        ...channelOptions,
        ...clientSecurityOptions(this.opts.security),
      });
      this.peers.set(address, client);
    }
    const md = new grpc.Metadata();
    md.set('fluxo-from-tm', this.id);
    const stream = (
      client as unknown as { exchange: (md: grpc.Metadata) => grpc.ClientDuplexStream<DataBatch, CreditBatch> }
    ).exchange(md);
    stream.on('data', (batch: CreditBatch) => {
      for (const c of batch.credits) {
        const slot = this.taskSlot.get(c.producerTask);
        if (slot !== undefined)
          this.slotOutbox(slot).credits.push({ taskKey: c.producerTask, key: c.outputChannel, credits: c.credits });
      }
      this.scheduleFlush();
    });
    const drop = (err?: Error): void => {
      if (this.outStreams.get(address) === stream) this.outStreams.delete(address);
      if (this.stopping) return;
      if (err) this.opts.log.warn({ peer: address, err: err.message }, 'data stream to peer closed');
      const peer = this.peerNames.get(address);
      this.dataConnectionLost(
        stream,
        `data connection to ${peer ? `TaskManager ${peer} (${address})` : address} lost: ${err?.message ?? 'closed by the peer'}`,
      );
    };
    stream.on('error', drop);
    stream.on('end', () => drop());
    this.outStreams.set(address, stream);
    return stream;
  }

  private onExchange(call: grpc.ServerDuplexStream<DataBatch, CreditBatch>): void {
    const from = String(call.metadata.get('fluxo-from-tm')[0] ?? '');
    if (from) this.inStreams.set(from, call);
    call.on('data', (batch: DataBatch) => {
      this.noteAttempts(call, batch.frames);
      for (const m of batch.frames) {
        const slot = this.taskSlot.get(m.targetTask);
        if (slot === undefined) continue; // task gone (cancelled): drop
        if (this.brokenAttempts.size > 0 && this.brokenAttempts.has(attemptOf(m.targetTask))) continue;
        const frame = new Uint8Array(m.frame.byteLength);
        frame.set(m.frame);
        const box = this.slotOutbox(slot);
        box.frames.push({ taskKey: m.targetTask, frame });
        box.transfer.push(frame.buffer);
      }
      this.scheduleFlush();
    });
    const close = (why: string): void => {
      if (this.inStreams.get(from) === call) this.inStreams.delete(from);
      if (!this.stopping)
        this.dataConnectionLost(call, `data connection from ${from ? `TaskManager ${from}` : 'a peer'} lost: ${why}`);
    };
    call.on('end', () => {
      close('closed by the peer');
      call.end();
    });
    call.on('error', (err: Error) => close(err.message));
    call.on('cancelled', () => close('cancelled'));
  }

  /** Records which attempts' frames `stream` carries (see `brokenAttempts`). */
  private noteAttempts(stream: object, frames: readonly { targetTask: string }[]): void {
    let set = this.streamAttempts.get(stream);
    if (!set) {
      set = new Set();
      this.streamAttempts.set(stream, set);
    }
    let last = '';
    for (const f of frames) {
      if (f.targetTask.startsWith(last) && last !== '') continue;
      last = `${attemptOf(f.targetTask)}:`;
      set.add(last.slice(0, -1));
    }
  }

  /** A task of `attemptKey` (`jobId:attempt`) still deployed here, as its task key, or undefined. */
  private liveTaskOf(attemptKey: string): string | undefined {
    const prefix = `${attemptKey}:`;
    for (const k of this.taskSlot.keys()) if (k.startsWith(prefix)) return k;
    return undefined;
  }

  /**
   * A data stream broke (error, cancel, or closed by a peer that stopped): every attempt whose
   * frames it carried and that still has tasks here is fenced (`brokenAttempts`) and, after the
   * grace period, failed through one of its tasks with `DATA_CONNECTION_LOST`.
   */
  private dataConnectionLost(stream: object, reason: string): void {
    const attempts = this.streamAttempts.get(stream);
    if (!attempts) return;
    for (const a of attempts) {
      if (this.brokenAttempts.has(a) || this.liveTaskOf(a) === undefined) continue;
      this.brokenAttempts.add(a);
      this.opts.log.warn({ attempt: a, reason }, 'data connection lost: the attempt is fenced here');
      setTimeout(() => {
        const taskKey = this.liveTaskOf(a);
        if (this.stopping || taskKey === undefined) return; // canceled meanwhile: failed over already
        const [jobId, attempt, taskId] = taskKey.split(':') as [string, string, string];
        void this.reportTaskState({
          taskmanagerId: this.id,
          jobId,
          attempt: Number(attempt),
          taskId,
          state: 'FAILED',
          errorCode: 'DATA_CONNECTION_LOST',
          errorMessage: reason,
          countersJson: '',
        });
      }, DATA_CONNECTION_GRACE_MS).unref();
    }
  }

  /** Stops heartbeats, workers and the server. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatCall?.end();
    for (const s of this.outStreams.values()) s.end();
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.server.forceShutdown();
    this.jmClient?.close();
    for (const c of this.peers.values()) c.close();
  }
}
