/**
 * Loading a job spec file (YAML or JSON) with `--set path=value` overrides.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { EngineError, printable } from '../errors/index.js';
import { parseJobSpec } from './schema.js';
import type { JobSpec } from './types.js';

/**
 * Parses YAML (or JSON, a subset of YAML) text into a raw object.
 * @throws EngineError `SPEC_INVALID` on a syntax error; the message and `problems` carry
 * `line L, column C` (1-based).
 */
export function parseSpecText(text: string, what = 'job spec'): unknown {
  try {
    return YAML.parse(text);
  } catch (e) {
    const err = e as { linePos?: { line: number; col: number }[]; message?: string };
    const pos = err.linePos?.[0];
    const where = pos ? `line ${pos.line}, column ${pos.col}` : 'the document';
    // the yaml library appends its own " at line L, column C:" to the first line; we say it once
    const msg = String(err.message ?? e)
      .split('\n')[0]
      .replace(/\s*at line \d+, column \d+:?\s*$/, '');
    // a binary or garbled file must not spill control bytes onto the terminal
    const shown = printable(msg);
    throw new EngineError('SPEC_INVALID', `${what} is not valid YAML/JSON at ${where}: ${shown}`, {
      cause: e,
      problems: [`${where}: ${shown}`],
    });
  }
}

type Segment = string | number;

/** `steps[2].window.sizeMs` → ['steps', 2, 'window', 'sizeMs']; undefined when malformed. */
export function parseSetPath(p: string): Segment[] | undefined {
  const out: Segment[] = [];
  const re = /([A-Za-z_$][\w$-]*)|\[(\d+)\]|(\.)/gy;
  let expectName = true;
  let m: RegExpExecArray | null;
  re.lastIndex = 0;
  while (re.lastIndex < p.length) {
    m = re.exec(p);
    if (!m) return undefined;
    if (m[1] !== undefined) {
      if (!expectName) return undefined;
      out.push(m[1]);
      expectName = false;
    } else if (m[2] !== undefined) {
      if (expectName) return undefined;
      out.push(Number(m[2]));
    } else {
      if (expectName) return undefined;
      expectName = true;
    }
  }
  return out.length === 0 || expectName ? undefined : out;
}

/**
 * Applies `--set path=value` overrides to a raw (not yet validated) spec object, in order.
 * `path` uses dots and `[index]` (`source.watermark.outOfOrdernessMs`, `steps[2].window.sizeMs`);
 * `value` is read as a YAML scalar/flow value (`30000` → number, `true` → boolean,
 * `[a, b]` → list, `abc` → string). Missing intermediate objects are created.
 * Mutates and returns `raw`.
 * @throws EngineError `SPEC_INVALID` listing every malformed override.
 */
export function applySets(raw: unknown, sets: readonly string[]): unknown {
  const problems: string[] = [];
  let root = raw;
  for (const set of sets) {
    const eq = set.indexOf('=');
    const p = eq < 0 ? set : set.slice(0, eq);
    const segs = eq < 0 ? undefined : parseSetPath(p.trim());
    if (!segs) {
      problems.push(`--set ${set}: expected path=value with a path like steps[2].window.sizeMs`);
      continue;
    }
    let value: unknown;
    try {
      value = YAML.parse(set.slice(eq + 1));
    } catch {
      value = set.slice(eq + 1);
    }
    if (value === undefined) value = null;
    if (typeof root !== 'object' || root === null) root = {};
    let cur = root as Record<string | number, unknown>;
    let failed = false;
    for (let i = 0; i < segs.length - 1; i++) {
      const s = segs[i] as Segment;
      const nextIsIndex = typeof segs[i + 1] === 'number';
      if (typeof s === 'number' && !Array.isArray(cur)) {
        problems.push(`--set ${p}: ${segs.slice(0, i).join('.')} is not a list`);
        failed = true;
        break;
      }
      let child = cur[s];
      if (typeof child !== 'object' || child === null) {
        child = nextIsIndex ? [] : {};
        cur[s] = child;
      }
      cur = child as Record<string | number, unknown>;
    }
    if (failed) continue;
    const last = segs[segs.length - 1] as Segment;
    if (typeof last === 'number' && !Array.isArray(cur)) {
      problems.push(`--set ${p}: not a list`);
      continue;
    }
    cur[last] = value;
  }
  if (problems.length > 0) {
    throw new EngineError('SPEC_INVALID', `invalid --set: ${problems.join('; ')}`, { problems });
  }
  return root;
}

/**
 * Reads and validates a job spec file: YAML or JSON (detected by content), applies `sets`
 * (`--set path=value`, before validation), resolves relative source paths against the file's
 * folder and relative sink paths against the working directory.
 * @throws EngineError `SPEC_NOT_FOUND` when the file cannot be read, `SPEC_INVALID` for syntax
 * errors (with line and column), bad overrides or any validation problem (see parseJobSpec).
 */
export function loadJobSpecFile(file: string, sets: readonly string[] = []): JobSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : String((e as Error).message);
    throw new EngineError('SPEC_NOT_FOUND', `cannot read job spec ${file}: ${why}`, { cause: e });
  }
  const raw = applySets(parseSpecText(text, `job spec ${file}`), sets);
  return parseJobSpec(raw, { baseDir: path.dirname(path.resolve(file)), outputBaseDir: process.cwd() });
}
