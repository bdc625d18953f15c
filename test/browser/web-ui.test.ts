/**
 * The web UI (dist/web) in Debian's headless Chromium against a real cluster: a JobManager started
 * with --chaos, three TaskManager processes with one slot each (one spare), a private Redis. One
 * endless generator job (parallelism 2, checkpoints every 500 ms) writes window results per
 * (house, room) to a redis sink. The pages are checked against the cluster itself:
 * - the overview lists the job and the three TaskManagers;
 * - the job page draws the graph and its checkpoint count grows, live over SSE;
 * - the dashboard's table shows, for each sensor, the numbers of the Redis hash the sink wrote
 *   (read here with HGETALL and compared: raw values and the two-decimal text shown);
 * - the chaos button kills a TaskManager running the job (after a confirmation): the page shows a
 *   restart and the job RUNNING again in a new attempt;
 * - a FINISHED job's page offers no kill button and its dashboard is not "live";
 * - the page heading takes focus on load without a focus ring, the job id fits on one line;
 * - a JobManager with a token (FLUXO_WEB_TOKEN, --web-auth reads) refuses a wrong token: the token
 *   dialog says so, and the right one opens the overview.
 * Screenshots of every page go to test-artifacts/screenshots/; with UPDATE_DOCS_SCREENSHOT=1 the
 * job page's is also copied to docs/screenshots/job.png (the README's picture).
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, killAll, REPO_ROOT, startCluster, type TestCluster, waitFor } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const CHROMIUM = '/usr/bin/chromium';
const WEB_DIST = join(REPO_ROOT, 'dist/web/index.html');
const SHOTS = join(REPO_ROOT, 'test-artifacts/screenshots');
const PREFIX = 'webui';

describe('web UI in Chromium against a real cluster', () => {
  let redis: TestRedis;
  let client: Redis;
  let cluster: TestCluster;
  let browser: Browser;
  let page: Page;
  let dir: string;
  let jobId: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(WEB_DIST)) throw new Error(`${WEB_DIST} is missing: run \`npm run build\` (it runs build:web)`);
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
    mkdirSync(SHOTS, { recursive: true });
    redis = await startRedis();
    client = new Redis(redis.url);
    dir = mkdtempSync(join(tmpdir(), 'fluxo-webui-'));
    cluster = await startCluster({
      redisUrl: redis.url,
      clusterId: 'webui',
      jmArgs: ['--chaos'],
      taskmanagers: [
        { id: 'tm-1', slots: 1 },
        { id: 'tm-2', slots: 1 },
        { id: 'tm-3', slots: 1 },
      ],
    });
    const spec = join(dir, 'webui.json');
    writeFileSync(
      spec,
      JSON.stringify({
        name: 'webui-iot',
        parallelism: 2,
        checkpoint: { intervalMs: 500, mode: 'exactly-once' },
        restart: { type: 'fixed-delay', attempts: 5, delayMs: 200 },
        source: { type: 'generator', sensors: 1000, count: 1_000_000_000, ratePerSec: 1000, seed: 5 },
        steps: [
          { keyBy: ['house', 'room'] },
          { window: { type: 'tumbling', sizeMs: 60_000 } },
          {
            aggregate: {
              count: 'count()',
              avg: 'avg(temperature)',
              min: 'min(temperature)',
              max: 'max(temperature)',
            },
          },
        ],
        sink: { type: 'redis', keyPrefix: PREFIX },
      }),
    );
    const sub = await cluster.cli(['submit', spec]);
    expect(sub.code, sub.stderr).toBe(0);
    jobId = sub.stdout.trim();
    await cluster.waitForState(jobId, 'RUNNING', 30_000);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  });

  afterAll(async () => {
    await browser?.close();
    if (cluster && jobId) await cluster.cli(['cancel', jobId]).catch(() => undefined);
    await cluster?.stop();
    await killAll();
    client?.disconnect();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const open = (hash: string) => page.goto(`${cluster.web}/${hash}`);
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const attr = async (selector: string, name: string) => page.locator(selector).first().getAttribute(name);

  it('lists the job and the TaskManagers on the overview, live', async () => {
    await open('#/');
    await page.locator(`[data-testid="jobs-table"] tr[data-job-id="${jobId}"]`).waitFor({ timeout: 15_000 });
    expect(await attr(`tr[data-job-id="${jobId}"]`, 'data-state')).toBe('RUNNING');
    await page.locator('[data-testid="taskmanagers-table"] tr[data-tm-id]').nth(2).waitFor({ timeout: 15_000 });
    const tms = await page
      .locator('[data-testid="taskmanagers-table"] tr[data-tm-id]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-tm-id')).sort());
    expect(tms).toEqual(['tm-1', 'tm-2', 'tm-3']);
    // jobs waiting for slots (CREATED) have their count too
    expect(await page.getByTestId('jobs-created').textContent()).toMatch(/^\d+$/);
    await shot('overview');
    expect(pageErrors).toEqual([]);
  });

  it('draws the job graph and shows a growing checkpoint count', async () => {
    await open(`#/jobs/${jobId}`);
    await page.locator('[data-testid="job-state"][data-state="RUNNING"]').waitFor({ timeout: 15_000 });
    // the heading has the focus (for screen readers) but no focus ring; the job id is on one line
    expect(await page.evaluate('document.activeElement?.tagName')).toBe('H1');
    expect(await page.evaluate('getComputedStyle(document.activeElement).outlineStyle')).toBe('none');
    expect(await page.getByTestId('job-id').evaluate((e) => e.getClientRects().length)).toBe(1);
    // an active job with --chaos offers the kill button, preselecting an ALIVE TaskManager of the job
    await page.getByTestId('kill-taskmanager').waitFor({ timeout: 10_000 });
    const rest = await cluster.job(jobId);
    const jobTms = rest.tasks.map((t) => t.taskmanagerId);
    expect(jobTms).toContain(await page.getByLabel('TaskManager', { exact: true }).inputValue());
    await expect
      .poll(() => page.locator('[data-testid="job-graph"] g[data-vertex]').count(), { timeout: 10_000 })
      .toBe(rest.vertices.length);
    const count = async () => Number(await attr('[data-testid="checkpoint-count"]', 'data-count'));
    const first = await waitFor(async () => ((await count()) >= 1 ? count() : 0), {
      timeoutMs: 20_000,
      message: 'the page shows no completed checkpoint',
    });
    await expect.poll(count, { timeout: 20_000, interval: 500 }).toBeGreaterThan(first);
    // the page's count is the JobManager's, at most a few checkpoints behind
    const api = await getJson<{ counts: { completed: number } }>(`${cluster.web}/jobs/${jobId}/checkpoints`);
    expect(api.counts.completed).toBeGreaterThanOrEqual(await count());
    await page.waitForTimeout(1500); // let the rates of the graph settle for the screenshot
    await shot('job-graph');
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') {
      mkdirSync(join(REPO_ROOT, 'docs/screenshots'), { recursive: true });
      copyFileSync(join(SHOTS, 'job-graph.png'), join(REPO_ROOT, 'docs/screenshots/job.png'));
    }

    await page.getByRole('tab', { name: 'Checkpoints' }).click();
    await page.locator('[data-testid="checkpoint-history"] tr[data-checkpoint-id]').first().waitFor();
    await shot('job-checkpoints');
    expect(pageErrors).toEqual([]);
  });

  it('shows on the dashboard the sensor values the redis sink wrote', async () => {
    await open(`#/jobs/${jobId}/dashboard`);
    await page.locator('[data-testid="sensor-row"]').nth(4).waitFor({ timeout: 30_000 });
    // one consistent read of the rows: key, window, raw numbers and the text shown
    const rows = await page.locator('[data-testid="sensor-row"]').evaluateAll((trs) =>
      trs.map((tr) => {
        const text = (col: string) => tr.querySelector(`[data-col="${col}"]`)?.textContent?.trim() ?? '';
        return {
          key: tr.getAttribute('data-key') ?? '',
          windowStart: tr.getAttribute('data-window-start') ?? '',
          avg: Number(tr.getAttribute('data-avg')),
          min: Number(tr.getAttribute('data-min')),
          max: Number(tr.getAttribute('data-max')),
          count: Number(tr.getAttribute('data-count')),
          shown: { avg: text('avg'), min: text('min'), max: text('max'), count: text('count') },
        };
      }),
    );
    expect(rows.length).toBeGreaterThanOrEqual(5);
    for (const r of rows) {
      expect(r.key).toMatch(/^house-\d+\|room-\d$/);
      const h = await client.hgetall(`${PREFIX}:${r.key}:${r.windowStart}`);
      expect(h, `no hash ${PREFIX}:${r.key}:${r.windowStart}`).toHaveProperty('avg');
      expect(r.avg, r.key).toBe(Number(h.avg));
      expect(r.min, r.key).toBe(Number(h.min));
      expect(r.max, r.key).toBe(Number(h.max));
      expect(r.count, r.key).toBe(Number(h.count));
      expect(r.shown.avg).toBe(Number(h.avg).toFixed(2));
      expect(r.shown.min).toBe(Number(h.min).toFixed(2));
      expect(r.shown.max).toBe(Number(h.max).toFixed(2));
      expect(r.shown.count).toBe(Number(h.count).toLocaleString('en-US'));
    }
    // 100 houses × 5 rooms, paged: never more rows than the page size
    await expect.poll(() => page.getByTestId('sensor-total').textContent(), { timeout: 30_000 }).toContain('500');
    expect(await page.locator('[data-testid="sensor-row"]').count()).toBeLessThanOrEqual(25);
    // the first sensor is charted (uPlot canvas), the heat map has a row per house
    await page.locator('[data-testid="sensor-chart"] canvas').first().waitFor({ timeout: 15_000 });
    await page.locator('[data-testid="heatmap"] tbody tr').first().waitFor({ timeout: 15_000 });
    await shot('dashboard');

    // search narrows the table to one house
    await page.getByLabel('Search').fill('house-7|');
    await expect
      .poll(
        async () =>
          (
            await page
              .locator('[data-testid="sensor-row"]')
              .evaluateAll((t) => t.map((r) => r.getAttribute('data-key')))
          ).join(','),
        {
          timeout: 10_000,
        },
      )
      .toMatch(/^house-7\|room-\d(,house-7\|room-\d){4}$/);

    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(500);
    const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'));
    expect(overflow, 'the dashboard is wider than a phone screen').toBeLessThanOrEqual(1);
    await shot('dashboard-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
    expect(pageErrors).toEqual([]);
  });

  it('offers no kill button on a FINISHED job, and calls its dashboard not live', async () => {
    const spec = join(dir, 'finite.json');
    writeFileSync(
      spec,
      JSON.stringify({
        name: 'webui-finite',
        parallelism: 1,
        source: { type: 'generator', sensors: 10, count: 200, ratePerSec: 100_000, seed: 7 },
        steps: [
          { keyBy: ['house'] },
          { window: { type: 'tumbling', sizeMs: 60_000 } },
          { aggregate: { avg: 'avg(temperature)' } },
        ],
        sink: { type: 'redis', keyPrefix: 'webui-finite' },
      }),
    );
    const sub = await cluster.cli(['submit', spec]);
    expect(sub.code, sub.stderr).toBe(0);
    const finite = sub.stdout.trim();
    await cluster.waitForState(finite, 'FINISHED', 60_000);
    await open(`#/jobs/${finite}`);
    await page.locator('[data-testid="job-state"][data-state="FINISHED"]').waitFor({ timeout: 15_000 });
    await page.locator('[data-testid="job-graph"] g[data-vertex]').first().waitFor();
    await page.waitForTimeout(1000); // the TaskManagers list would have arrived by now
    expect(await page.getByTestId('kill-taskmanager').count()).toBe(0);
    expect(await page.getByTestId('cancel-job').count()).toBe(0);
    expect(await page.getByTestId('dashboard-link').textContent()).toBe('Open the dashboard');
    await open(`#/jobs/${finite}/dashboard`);
    await expect
      .poll(() => page.getByTestId('dashboard-title').textContent(), { timeout: 15_000 })
      .toBe('webui-finite: dashboard');
    await page.getByTestId('ended-note').waitFor();
    await shot('dashboard-finished');
    expect(pageErrors).toEqual([]);
  });

  it('kills a TaskManager with the chaos button; the page shows the restart and the job RUNNING again', async () => {
    await open(`#/jobs/${jobId}`);
    await page.locator('[data-testid="job-state"][data-state="RUNNING"]').waitFor({ timeout: 15_000 });
    const attempt = Number(await page.getByTestId('job-attempt').textContent());
    const restarts = Number(await attr('[data-testid="restart-count"]', 'data-count'));
    const victim = (await cluster.job(jobId)).tasks[0].taskmanagerId;
    await page.getByLabel('TaskManager', { exact: true }).selectOption(victim);
    await page.getByTestId('kill-taskmanager').click();
    await page.getByTestId('confirm-kill').click();
    await expect
      .poll(() => page.getByTestId('action-message').textContent(), { timeout: 10_000 })
      .toContain(`Killed TaskManager ${victim}`);
    await waitFor(() => cluster.tms.get(victim)?.exited, { timeoutMs: 10_000, message: `${victim} did not exit` });

    await expect
      .poll(async () => Number(await attr('[data-testid="restart-count"]', 'data-count')), { timeout: 60_000 })
      .toBeGreaterThan(restarts);
    await expect
      .poll(async () => Number(await page.getByTestId('job-attempt').textContent()), { timeout: 60_000 })
      .toBeGreaterThan(attempt);
    await page.locator('[data-testid="job-state"][data-state="RUNNING"]').waitFor({ timeout: 60_000 });
    expect((await cluster.job(jobId)).job.state).toBe('RUNNING');

    await page.getByRole('tab', { name: 'Exceptions & restarts' }).click();
    await page.locator('[data-testid="exceptions-timeline"] li').first().waitFor();
    await shot('job-exceptions');
    expect(pageErrors).toEqual([]);
  });

  it('says in the token dialog that a wrong token was refused, and takes the right one', async () => {
    const secured = await startCluster({
      redisUrl: redis.url,
      clusterId: 'webui-auth',
      jmEnv: { FLUXO_WEB_TOKEN: 'right-token' },
      jmArgs: ['--web-auth', 'reads'],
      taskmanagers: [],
    });
    const p2 = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await p2.goto(`${secured.web}/#/`);
      const input = p2.getByLabel('Token', { exact: true });
      await input.waitFor({ timeout: 15_000 });
      expect(await p2.getByTestId('token-error').textContent()).toBe('');
      await input.fill('wrong-token');
      await p2.getByRole('button', { name: 'Use token' }).click();
      await expect
        .poll(() => p2.getByTestId('token-error').textContent(), { timeout: 10_000 })
        .toBe('That token was refused (401).');
      expect(await p2.getByTestId('token-error').getAttribute('aria-live')).toBe('assertive');
      expect(await input.getAttribute('aria-invalid')).toBe('true');
      await p2.screenshot({ path: join(SHOTS, 'token-refused.png') });
      await input.fill('right-token');
      await p2.getByRole('button', { name: 'Use token' }).click();
      await p2.getByTestId('overview-stats').waitFor({ timeout: 15_000 });
      expect(await p2.locator('dialog.token-dialog[open]').count()).toBe(0);
    } finally {
      await p2.close();
      await secured.stop();
    }
  });
});
