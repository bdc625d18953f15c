/**
 * The job graph as SVG: vertices as boxes, left to right by topological layer (longest path from a
 * source), stacked within a layer; edges as curves labelled with records/s. Each box is filled by
 * its busy ratio or its backpressured ratio (green 0 → red 1).
 */
import { html } from 'htm/preact';
import { formatCompact, formatCount, formatPercent, formatRate, ratioColour } from '../format.js';
import type { Edge, Vertex } from '../types.js';

const BOX_W = 200;
const BOX_H = 78;
const GAP_X = 110;
const GAP_Y = 28;
const PAD = 16;

export type ColourBy = 'busy' | 'backpressure';

/** Layer of each vertex: 0 for sources, else 1 + the highest layer of its inputs. Cycles are broken by input order. */
export function layers(vertices: Vertex[], edges: Edge[]): Map<string, number> {
  const ids = new Set(vertices.map((v) => v.id));
  const inputs = new Map<string, string[]>();
  for (const v of vertices) inputs.set(v.id, []);
  for (const e of edges) if (ids.has(e.source) && ids.has(e.target)) inputs.get(e.target)?.push(e.source);
  const out = new Map<string, number>();
  const visiting = new Set<string>();
  const layerOf = (id: string): number => {
    const known = out.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0;
    visiting.add(id);
    let l = 0;
    for (const s of inputs.get(id) ?? []) l = Math.max(l, layerOf(s) + 1);
    visiting.delete(id);
    out.set(id, l);
    return l;
  };
  for (const v of vertices) layerOf(v.id);
  return out;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export function JobGraph({ vertices, edges, colourBy }: { vertices: Vertex[]; edges: Edge[]; colourBy: ColourBy }) {
  const layer = layers(vertices, edges);
  const columns: Vertex[][] = [];
  for (const v of vertices) {
    const l = layer.get(v.id) ?? 0;
    if (!columns[l]) columns[l] = [];
    columns[l].push(v);
  }
  const tallest = Math.max(1, ...columns.map((c) => c?.length ?? 0));
  const height = PAD * 2 + tallest * BOX_H + (tallest - 1) * GAP_Y;
  const width = PAD * 2 + columns.length * BOX_W + Math.max(0, columns.length - 1) * GAP_X;
  const pos = new Map<string, { x: number; y: number }>();
  columns.forEach((col, ci) => {
    if (!col) return;
    const colH = col.length * BOX_H + (col.length - 1) * GAP_Y;
    const y0 = (height - colH) / 2;
    col.forEach((v, i) => {
      pos.set(v.id, { x: PAD + ci * (BOX_W + GAP_X), y: y0 + i * (BOX_H + GAP_Y) });
    });
  });

  const summary = vertices.map((v) => `${v.name} (${formatPercent(v.metrics?.busyRatio)} busy)`).join(', then ');
  return html`
    <div class="graph-wrap">
      <svg class="job-graph" data-testid="job-graph" viewBox=${`0 0 ${width} ${height}`} width=${width} height=${height}
        role="img" aria-label=${`Job graph: ${summary}`}>
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" fill="#4a5568" />
          </marker>
        </defs>
        ${edges.map((e) => {
          const a = pos.get(e.source);
          const b = pos.get(e.target);
          if (!a || !b) return null;
          const x1 = a.x + BOX_W;
          const y1 = a.y + BOX_H / 2;
          const x2 = b.x - 2;
          const y2 = b.y + BOX_H / 2;
          const mx = (x1 + x2) / 2;
          const label = formatRate(e.recordsPerSec);
          const lw = label.length * 7.2 + 10;
          return html`
            <g class="edge" key=${`${e.source}->${e.target}`} data-edge=${`${e.source}->${e.target}`}>
              <path d=${`M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`} fill="none" stroke="#4a5568" stroke-width="1.6" marker-end="url(#arrow)" />
              <rect x=${mx - lw / 2} y=${(y1 + y2) / 2 - 20} width=${lw} height="17" rx="3" fill="#fff" stroke="#cbd5e0" />
              <text x=${mx} y=${(y1 + y2) / 2 - 7.5} text-anchor="middle" class="edge-label">${label}</text>
              <text x=${mx} y=${(y1 + y2) / 2 + 12} text-anchor="middle" class="edge-part">${e.partitioner}</text>
            </g>`;
        })}
        ${vertices.map((v) => {
          const p = pos.get(v.id);
          if (!p) return null;
          const m = v.metrics;
          const ratio = colourBy === 'busy' ? m?.busyRatio : m?.backpressuredRatio;
          return html`
            <g class="vertex" key=${v.id} data-vertex=${v.id} transform=${`translate(${p.x},${p.y})`}>
              <title>${v.name}: busy ${formatPercent(m?.busyRatio)}, backpressured ${formatPercent(m?.backpressuredRatio)}, in ${formatRate(m?.recordsInPerSec)}, out ${formatRate(m?.recordsOutPerSec)}${m?.rowsWritten ? `, written ${formatCount(m.rowsWritten)}` : ''}</title>
              <rect width=${BOX_W} height=${BOX_H} rx="6" fill=${ratioColour(ratio)} stroke="#2d3748" stroke-width="1.2" />
              <text x="10" y="20" class="v-name">${truncate(v.name, 24)}</text>
              <text x="10" y="38" class="v-line">${truncate(v.id, 16)} · ×${v.parallelism}</text>
              <text x="10" y="55" class="v-line">busy ${formatPercent(m?.busyRatio)} · bp ${formatPercent(m?.backpressuredRatio)}</text>
              <text x="10" y="71" class="v-line">in ${formatRate(m?.recordsInPerSec)} · ${m?.rowsWritten ? `written ${formatCompact(m.rowsWritten)}` : `out ${formatRate(m?.recordsOutPerSec)}`}</text>
            </g>`;
        })}
      </svg>
    </div>
  `;
}
