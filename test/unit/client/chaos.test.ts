import { hostname } from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { killTaskManagers } from '../../../client/chaos.js';
import type { JobManagerClient } from '../../../client/jm-client.js';
import type { TaskManagerInfo } from '../../../core/rpc/index.js';

const tm = (id: string, pid: number): TaskManagerInfo => ({
  taskmanagerId: id,
  controlAddress: `127.0.0.1:${7000 + pid}`,
  slotsTotal: 1,
  slotsUsed: 1,
  lastHeartbeatMs: Date.now(),
  state: 'ALIVE',
  rssBytes: 0,
  heapUsedBytes: 0,
  pid,
  hostname: hostname(),
});

/** A JobManager that never notices a kill: it lists the same TaskManagers ALIVE every time. */
const slowJobManager = (tms: TaskManagerInfo[]) =>
  ({ listTaskManagers: async () => tms.map((t) => ({ ...t })) }) as unknown as JobManagerClient;

describe('fluxo chaos kill-taskmanager', () => {
  afterEach(() => vi.restoreAllMocks());

  it('never kills the same TaskManager twice, even while the JobManager still lists it', async () => {
    const killed: number[] = [];
    vi.spyOn(process, 'kill').mockImplementation((pid) => {
      killed.push(Number(pid));
      return true;
    });
    const said: string[] = [];
    await killTaskManagers(slowJobManager([tm('tm-1', 101), tm('tm-2', 102)]), { everyMs: 0, count: 2 }, (l) =>
      said.push(l),
    );
    expect(killed.sort()).toEqual([101, 102]);
    expect(said).toHaveLength(2);
  });

  it('stops with NO_RESOURCES when every live TaskManager was already killed', async () => {
    const killed: number[] = [];
    vi.spyOn(process, 'kill').mockImplementation((pid) => {
      killed.push(Number(pid));
      return true;
    });
    const run = killTaskManagers(slowJobManager([tm('tm-1', 101)]), { everyMs: 0, count: 2 }, () => {});
    await expect(run).rejects.toMatchObject({ code: 'NO_RESOURCES', message: expect.stringMatching(/left to kill/) });
    expect(killed).toEqual([101]);
  });

  it('kills an --id once', async () => {
    vi.spyOn(process, 'kill').mockImplementation(() => true);
    const run = killTaskManagers(
      slowJobManager([tm('tm-1', 101), tm('tm-2', 102)]),
      { id: 'tm-2', everyMs: 0, count: 2 },
      () => {},
    );
    await expect(run).rejects.toMatchObject({ code: 'NO_RESOURCES', message: expect.stringMatching(/already killed/) });
  });
});
