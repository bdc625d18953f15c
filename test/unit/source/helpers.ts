import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSourceReader, newSourceBatch } from '../../../core/source/index.js';
import type { SourcePosition } from '../../../core/source/types.js';
import { parseJobSpec } from '../../../core/spec/schema.js';
import type { DeadLetter, Row, SourceSpec } from '../../../core/spec/types.js';

export interface ReadResult {
  rows: Row[];
  timestamps: number[];
  deadLetters: DeadLetter[];
  linesRead: number;
  polls: number;
}

/** Writes `files` (name → content) into a fresh temp folder and returns the folder. */
export function tempFiles(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'fluxo-source-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

/** Normalises a raw `source:` block through the real validator (paths relative to `dir`). */
export function sourceSpec(source: Record<string, unknown>, dir?: string): SourceSpec {
  const opts = dir === undefined ? {} : { baseDir: dir };
  return parseJobSpec({ name: 't', source, steps: [], sink: { type: 'stdout' } }, opts).source;
}

/** Reads a whole split, polling `batch` lines at a time. */
export async function readSplit(
  spec: SourceSpec,
  split = 0,
  splits = 1,
  batch = 3,
  restore?: SourcePosition,
): Promise<ReadResult> {
  const reader = createSourceReader(spec, split, splits, restore);
  const out = newSourceBatch();
  const res: ReadResult = { rows: [], timestamps: [], deadLetters: [], linesRead: 0, polls: 0 };
  for (;;) {
    const more = await reader.poll(out, batch);
    res.polls++;
    res.rows.push(...out.rows);
    res.timestamps.push(...out.timestamps);
    res.deadLetters.push(...out.deadLetters);
    res.linesRead += out.linesRead;
    if (!more) break;
  }
  await reader.close();
  return res;
}

/** One file with `content`, read with the given source options. */
export async function readFile(
  source: Record<string, unknown>,
  content: string | Buffer,
  name = 'in.csv',
): Promise<ReadResult> {
  const dir = tempFiles({ [name]: content });
  return readSplit(sourceSpec({ type: 'file', path: name, ...source }, dir));
}
