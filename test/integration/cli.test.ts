/**
 * The `fluxo` CLI as a user meets it: help, spec errors, unreachable JobManager / Redis, unknown
 * jobs, and cancelling a running job on a real cluster (1 JobManager + 1 TaskManager, 2 slots).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliResult,
  freePort,
  killAll,
  runCli,
  startCluster,
  type TestCluster,
  waitFor,
} from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const COMMANDS = ['jobmanager', 'taskmanager', 'submit', 'list', 'status', 'cancel', 'taskmanagers', 'run'];

/** No JavaScript stack frames leaked to the user. */
function expectNoStack(r: CliResult): void {
  expect(r.stderr, r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stdout, r.stdout).not.toMatch(/^\s+at /m);
}

/** The one `fluxo: ...` error line (plus `  - ` problem lines, nothing else). */
function errorLines(r: CliResult): string[] {
  return r.stderr.split('\n').filter((l) => l !== '');
}

let redis: TestRedis;
let cluster: TestCluster;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fluxo-cli-'));
  redis = await startRedis();
  cluster = await startCluster({
    redisUrl: redis.url,
    clusterId: `cli-test-${process.pid}`,
    taskmanagers: [{ id: 'tm-cli', slots: 2 }],
  });
});

afterAll(async () => {
  await killAll();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fluxo --help', () => {
  it('the program and every command print usage and exit 0', async () => {
    const results = await Promise.all([runCli(['--help']), ...COMMANDS.map((c) => runCli([c, '--help']))]);
    const [top, ...perCommand] = results;
    expect(top?.code).toBe(0);
    for (const c of COMMANDS) expect(top?.stdout).toContain(c);
    perCommand.forEach((r, i) => {
      expect(r.code, `${COMMANDS[i]} --help: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: fluxo ${COMMANDS[i]}`, 'm'));
      expect(r.stderr).toBe('');
    });
  });
});

describe('invalid job specs', () => {
  const spec = `
name: bad-job
extra: 1
source:
  type: file
  path: readings.csv
  columns: [sensor_id, ts:int, temperature:double]
  eventTime: { field: ts, unit: ms }
steps:
  - filter: "temperature >>> 3"
  - keyBy: room
  - window: { type: tumbling, sizeMs: -60000 }
  - aggregate: { avg: "avg(temperature)" }
sink: { type: file, path: out/bad.jsonl }
`;
  const problems = [
    'extra: unknown field',
    'steps[0].filter: invalid expression',
    'steps[1].keyBy: unknown field "room"',
    'steps[2].window.sizeMs: expected a positive integer',
  ];

  for (const cmd of ['submit', 'run'] as const) {
    it(`\`fluxo ${cmd}\` lists every problem with its path, no stack trace, exit 1`, async () => {
      const file = path.join(dir, `bad-${cmd}.yaml`);
      writeFileSync(file, spec);
      // submit: validated locally, before any connection (the JobManager address is unused)
      const r = await runCli(cmd === 'submit' ? ['submit', file, '--jobmanager', cluster.address] : ['run', file]);
      expect(r.code).toBe(1);
      expectNoStack(r);
      const lines = errorLines(r);
      expect(lines[0]).toBe(`fluxo: invalid job spec (${problems.length} problems):`);
      expect(lines).toHaveLength(problems.length + 1);
      for (const p of problems)
        expect(
          lines.some((l) => l.startsWith(`  - ${p}`)),
          `${p}\n${r.stderr}`,
        ).toBe(true);
      expect(r.stdout).toBe('');
    });
  }

  it('a YAML syntax error names line and column, exit 1, no stack trace', async () => {
    const file = path.join(dir, 'syntax.yaml');
    writeFileSync(file, 'name: x\nsource: { type: file\nsteps: []\n');
    const r = await runCli(['submit', file, '--jobmanager', cluster.address]);
    expect(r.code).toBe(1);
    expectNoStack(r);
    expect(errorLines(r)[0]).toBe('fluxo: invalid job spec (1 problem):');
    expect(errorLines(r)[1]).toMatch(/^ {2}- line 3, column \d+: /);
  });

  it('a missing spec file is one readable line naming the file', async () => {
    const file = path.join(dir, 'nope.yaml');
    const r = await runCli(['submit', file, '--jobmanager', cluster.address]);
    expect(r.code).toBe(1);
    expectNoStack(r);
    expect(errorLines(r)).toHaveLength(1);
    expect(r.stderr).toContain(file);
  });
});

describe('unreachable services', () => {
  it('`fluxo submit` and `fluxo list` against a port where nothing listens: exit 1, one line naming the address', async () => {
    const port = await freePort();
    const file = path.join(dir, 'ok.yaml');
    writeFileSync(file, 'name: ok\nsource: { type: generator, count: 10 }\nsteps: []\nsink: { type: stdout }\n');
    for (const args of [['submit', file], ['list'], ['taskmanagers'], ['status', 'abcd']]) {
      const r = await runCli([...args, '--jobmanager', `127.0.0.1:${port}`], { timeoutMs: 20_000 });
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(1);
      expect(r.ms, `${args[0]} took ${r.ms} ms`).toBeLessThan(15_000);
      expectNoStack(r);
      const lines = errorLines(r);
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^fluxo: /);
      expect(lines[0]).toContain(`127.0.0.1:${port}`);
      expect(lines[0]).toMatch(/JobManager/);
    }
  });

  it('`fluxo jobmanager` with Redis on a closed port: exit 1 with a message naming Redis', async () => {
    const port = await freePort();
    const [rpc, web] = [await freePort(), await freePort()];
    const r = await runCli(
      ['jobmanager', '--rpc-port', String(rpc), '--web-port', String(web), '--redis', `redis://127.0.0.1:${port}`],
      { timeoutMs: 20_000 },
    );
    expect(r.code, r.stderr).toBe(1);
    expectNoStack(r);
    expect(r.stderr).toMatch(/^fluxo: .*Redis/);
    expect(r.stderr).toContain(`127.0.0.1:${port}`);
  });
});

describe('against a running cluster', () => {
  it('`fluxo status` of an unknown job: exit 1, `no job ...`', async () => {
    const r = await cluster.cli(['status', 'nosuchjob']);
    expect(r.code).toBe(1);
    expectNoStack(r);
    expect(errorLines(r)).toEqual(['fluxo: no job nosuchjob']);
  });

  it('`fluxo cancel` of an unknown job: exit 1, `no job ...`', async () => {
    const r = await cluster.cli(['cancel', 'nosuchjob']);
    expect(r.code).toBe(1);
    expectNoStack(r);
    expect(r.stderr).toMatch(/^fluxo: no job nosuchjob/);
  });

  it('`fluxo cancel` stops a running job: CANCELED in `fluxo status`, slots free again', async () => {
    const file = path.join(dir, 'endless.yaml');
    writeFileSync(
      file,
      `name: endless
parallelism: 2
source: { type: generator, sensors: 1000, count: 100000000, ratePerSec: 1000, seed: 1 }
steps:
  - keyBy: sensorId
  - window: { type: tumbling, sizeMs: 60000 }
  - aggregate: { count: "count()", avg: "avg(temperature)" }
sink: { type: file, path: ${path.join(dir, 'endless', 'out.jsonl')} }
`,
    );
    const sub = await cluster.cli(['submit', file]);
    expect(sub.code, sub.stderr).toBe(0);
    const jobId = sub.stdout.trim();
    const running = await cluster.waitForState(jobId, 'RUNNING', 20_000);
    expect(running.tasks.length).toBeGreaterThan(0);
    // really consuming: the source counts readings
    await waitFor(async () => ((await cluster.job(jobId)).totals.readingsIn ?? 0) > 0, {
      timeoutMs: 10_000,
      message: 'no readings read',
    });
    expect((await cluster.taskmanagers()).find((t) => t.taskmanagerId === 'tm-cli')?.slotsUsed).toBe(2);

    const c = await cluster.cli(['cancel', jobId]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout.trim()).toBe('CANCELED');

    const st = await cluster.cli(['status', jobId]);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toContain(`(${jobId}) CANCELED`);
    // one generator split: the source runs 1 subtask, the keyed window the job's 2
    expect(st.stdout).toMatch(/^ {2}parallelism {7}2 \(source 1, window 2.*\)$/m);

    await waitFor(
      async () => {
        const r = await cluster.cli(['taskmanagers']);
        return /^tm-cli\s+\S+\s+ALIVE\s+0\/2\s/m.test(r.stdout) ? r : undefined;
      },
      { timeoutMs: 5000, intervalMs: 200, message: 'slots of tm-cli not free after cancel' },
    );
    // canceled means stopped: the reading count no longer moves
    const a = (await cluster.job(jobId)).totals.readingsIn;
    await new Promise((r) => setTimeout(r, 600)); // over one heartbeat (counters travel with heartbeats)
    const b = (await cluster.job(jobId)).totals.readingsIn;
    expect(b).toBe(a);
    expect((await cluster.job(jobId)).job.state).toBe('CANCELED');
  });
});
