import { afterEach, describe, expect, it, vi } from 'vitest';
import type { JobDetails } from '../../../client/jm-client.js';
import { printSavepoints, summaryLines } from '../../../client/print.js';
import type { JobSummary, SavepointInfo } from '../../../core/rpc/index.js';

function details(job: Partial<JobSummary>, more: Partial<JobDetails> = {}): JobDetails {
  return {
    job: {
      jobId: '27c2a58a600e3bcf',
      name: 'room-temperature',
      state: 'RUNNING',
      attempt: 1,
      createdAtMs: 1_780_000_000_000,
      endedAtMs: 1_780_000_010_000,
      failure: '',
      parallelism: 2,
      ...job,
    },
    vertices: [{ id: 'window', name: 'Window', parallelism: 2 }],
    tasks: [],
    totals: { readingsIn: 1000, windowsEmitted: 10 },
    outputs: { results: 'out/r.jsonl', deadLetters: 'out/r.deadletter.jsonl', late: 'out/r.late.jsonl' },
    fromSavepoint: null,
    stoppedWithSavepoint: null,
    checkpoints: null,
    ...more,
  };
}

describe('fluxo status summary', () => {
  it('shows attempt 1 without restarts and no counters label', () => {
    const lines = summaryLines(details({}));
    expect(lines).toContain('  attempt           1');
    expect(lines.some((l) => l.includes('counters of attempt'))).toBe(false);
    expect(lines.some((l) => l.includes('exceptions'))).toBe(false);
  });

  it('shows the attempt, labels the counters as its own and lists the exceptions newest last', () => {
    const lines = summaryLines(
      details(
        { attempt: 3 },
        {
          exceptions: [
            { timeMs: 1_780_000_001_000, attempt: 1, reason: 'TaskManager tm-1 lost', restartDelayMs: 1000 },
            { timeMs: 1_780_000_005_000, attempt: 2, reason: 'task window-0 failed', restartDelayMs: 2000 },
          ],
        },
      ),
    );
    expect(lines[1]).toBe('  attempt           3 (2 restarts)');
    expect(lines[3]).toBe('  counters of attempt 3 (a restored attempt counts only what it processed itself)');
    const first = lines.findIndex((l) => l.includes('TaskManager tm-1 lost'));
    const second = lines.findIndex((l) => l.includes('task window-0 failed'));
    expect(first).toBeGreaterThan(0);
    expect(second).toBe(first + 1);
    expect(lines[first]).toBe('    2026-05-28 20:26:41Z  attempt 1  TaskManager tm-1 lost; restart after 1000 ms');
    expect(summaryLines(details({ attempt: 2 }))[1]).toBe('  attempt           2 (1 restart)');
  });

  it("shows the job's current parallelism, and each vertex's when they differ", () => {
    const line = (more: Partial<JobDetails>, parallelism = 3) =>
      summaryLines(details({ parallelism }, more)).find((l) => l.startsWith('  parallelism'));
    const v = (id: string, parallelism: number) => ({ id, name: id, parallelism });
    expect(line({ vertices: [v('source', 3), v('window', 3), v('sink', 3)] })).toBe('  parallelism       3');
    expect(line({ vertices: [v('source', 1), v('window', 3), v('sink', 1)] })).toBe(
      '  parallelism       3 (source 1, window 3, sink 1)',
    );
    expect(line({ vertices: [] }, 2)).toBe('  parallelism       2');
  });

  it('prints aborted checkpoints only when there are some', () => {
    const cp = { completed: 13, failed: 0, inProgress: 0, latest: null, history: [] };
    const line = (c: NonNullable<JobDetails['checkpoints']>) =>
      summaryLines(details({}, { checkpoints: c })).find((l) => l.includes('checkpoints'));
    expect(line({ ...cp, aborted: 1 })).toBe('  checkpoints       13 completed, 0 failed, 1 aborted');
    expect(line({ ...cp, aborted: 0 })).toBe('  checkpoints       13 completed, 0 failed');
    expect(line(cp)).toBe('  checkpoints       13 completed, 0 failed');
  });

  it("prints a CREATED job's wait reason as is, other failures with a label", () => {
    const waiting = summaryLines(details({ state: 'CREATED', failure: 'waiting for slots: needs 3, 2 free' }));
    expect(waiting).toContain('  waiting for slots: needs 3, 2 free');
    const failed = summaryLines(details({ state: 'FAILED', failure: 'TaskManager tm-a lost' }));
    expect(failed).toContain('  failure: TaskManager tm-a lost');
  });
});

describe('fluxo savepoints', () => {
  afterEach(() => vi.restoreAllMocks());

  it('has a KIND column: savepoint, or retained for a FAILED job checkpoint (missing field = savepoint)', () => {
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      out.push(String(s));
      return true;
    });
    const sp = (id: string, retained?: boolean): SavepointInfo =>
      ({
        savepointId: id,
        jobId: id.split('-')[0],
        jobName: 'job',
        checkpointId: 1,
        createdAtMs: 1_780_000_000_000,
        durationMs: 10,
        stateBytes: 2048,
        parallelism: 2,
        ...(retained === undefined ? {} : { retained }),
      }) as SavepointInfo;
    printSavepoints([sp('aaaaaaaaaaaaaaaa-3', false), sp('bbbbbbbbbbbbbbbb-7', true), sp('cccccccccccccccc-1')]);
    const lines = out.join('').trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SAVEPOINT ID\s+KIND\s+JOB\s+CREATED/);
    expect(lines[1]).toMatch(/^aaaaaaaaaaaaaaaa-3\s+savepoint\s+job\s/);
    expect(lines[2]).toMatch(/^bbbbbbbbbbbbbbbb-7\s+retained\s+job\s/);
    expect(lines[3]).toMatch(/^cccccccccccccccc-1\s+savepoint\s+job\s/);
  });
});
