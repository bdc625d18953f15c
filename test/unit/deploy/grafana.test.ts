/**
 * deploy/grafana/fluxo-dashboard.json reads only metrics the JobManager's /metrics serves: every
 * `fluxo_…` name in a panel query (a histogram's `_bucket` series by its base name) must be
 * registered by jobmanager/metrics.ts, and the dashboard must be importable JSON with a
 * Prometheus data-source input.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../../../jobmanager/metrics.js';
import { REPO_ROOT } from '../../support/processes.js';

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

describe('the Grafana dashboard', () => {
  const dash = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy/grafana/fluxo-dashboard.json'), 'utf8')) as {
    __inputs: { name: string; pluginId: string }[];
    panels: Panel[];
    templating: { list: { query: { query: string } }[] };
  };

  it('queries only metrics that /metrics serves', async () => {
    const registry = createMetricsRegistry({ jobViews: () => [], taskmanagerList: () => [] });
    const served = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
    const used = new Set<string>();
    const queries = [
      ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
      ...dash.templating.list.map((v) => v.query.query),
    ];
    for (const q of queries) for (const m of q.matchAll(/\bfluxo_[a-z_]+/g)) used.add(m[0].replace(/_bucket$/, ''));
    expect(used.size).toBeGreaterThan(10);
    const missing = [...used].filter((name) => !served.has(name));
    expect(missing).toEqual([]);
  });

  it('is importable: a Prometheus input, panels with queries', () => {
    expect(dash.__inputs).toContainEqual(expect.objectContaining({ name: 'DS_PROMETHEUS', pluginId: 'prometheus' }));
    expect(dash.panels.length).toBeGreaterThanOrEqual(10);
    for (const p of dash.panels) expect(p.targets?.length, p.title).toBeGreaterThan(0);
  });
});
