import { defineConfig } from 'vitest/config';

/**
 * Four projects, run by `npx vitest run` (or one with `--project unit|integration|browser|netns`):
 *
 * - `unit`: pure tests, no I/O, seconds. test/unit mirrors the source tree; test/cases holds
 *   table-driven scenario files. Runs in parallel with vitest's defaults.
 * - `integration`: real Redis (a private redis-server per file, see test/support/redis.ts) and
 *   real JobManager/TaskManager processes on loopback. Files run one at a time in forked
 *   processes: CI machines have 2 cores and each file may start several processes itself.
 *
 * - `browser`: the web UI (dist/web, built by `npm run build`) in Debian's headless Chromium
 *   (/usr/bin/chromium, driven by playwright-core) against a real cluster and a private Redis.
 *   One file at a time, like `integration`.
 *
 * - `netns`: multi-host tests (test/netns): the JobManager, Redis and each TaskManager in their own
 *   Linux network namespace with their own address, links cut and healed (test/support/netns.ts).
 *   Needs root and iproute2 (.ci/run installs it); skips visibly otherwise. One file at a time.
 *
 * `sequence.groupOrder` runs the unit group first, then the integration group, then the browser
 * group, then the netns group, so they never compete for the cores.
 */
export default defineConfig({
  test: {
    teardownTimeout: 30_000,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/cases/**/*.test.ts'],
          environment: 'node',
          testTimeout: 10_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          pool: 'forks',
          fileParallelism: false,
          maxWorkers: 1,
          testTimeout: 120_000,
          hookTimeout: 120_000,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          environment: 'node',
          pool: 'forks',
          fileParallelism: false,
          maxWorkers: 1,
          testTimeout: 180_000,
          hookTimeout: 120_000,
          sequence: { groupOrder: 2 },
        },
      },
      {
        test: {
          name: 'netns',
          include: ['test/netns/**/*.test.ts'],
          environment: 'node',
          pool: 'forks',
          fileParallelism: false,
          maxWorkers: 1,
          testTimeout: 120_000,
          hookTimeout: 60_000,
          sequence: { groupOrder: 3 },
        },
      },
    ],
  },
});
