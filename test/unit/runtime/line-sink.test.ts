/**
 * The plain (non-exactly-once) file sink keeps the previous output until it writes: a job that
 * fails or is canceled before its first row leaves the old file byte for byte.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FieldDesc } from '../../../core/graph/types.js';
import { LineSink } from '../../../core/runtime/sinks.js';
import { newCounters } from '../../../core/runtime/transport.js';

const fields: FieldDesc[] = [
  { name: 'key', type: 'string' },
  { name: 'n', type: 'int' },
];
const OLD = '{"key":"old","n":1}\n{"key":"old","n":2}\n';

describe('the plain file sink (LineSink)', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fluxo-line-sink-'));
    path = join(dir, 'out.jsonl');
    writeFileSync(path, OLD);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('leaves the previous file untouched when the task is created and closed before any write', () => {
    const sink = new LineSink({ type: 'file', path }, fields, newCounters(), 'main');
    sink.close(); // the job failed (missing source) or was canceled
    expect(readFileSync(path, 'utf8')).toBe(OLD);
  });

  it('replaces the previous file at its first write', async () => {
    const sink = new LineSink({ type: 'file', path }, fields, newCounters(), 'main');
    sink.processElement({ key: 'a', n: 7 });
    await sink.endOfInput();
    sink.close();
    expect(readFileSync(path, 'utf8')).toBe('{"key":"a","n":7}\n');
  });

  it('leaves an empty file when the job finishes without a row', async () => {
    const sink = new LineSink({ type: 'file', path }, fields, newCounters(), 'main');
    await sink.endOfInput();
    sink.close();
    expect(readFileSync(path, 'utf8')).toBe('');
  });

  it('appends to the previous file on an at-least-once restore', async () => {
    const sink = new LineSink({ type: 'file', path }, fields, newCounters(), 'main', undefined, { append: true });
    sink.processElement({ key: 'a', n: 7 });
    await sink.endOfInput();
    sink.close();
    expect(readFileSync(path, 'utf8')).toBe(`${OLD}{"key":"a","n":7}\n`);
  });
});
