import { loadJobSpecFile } from '../core/spec/load.js';
import type { JobSpec } from '../core/spec/types.js';

/** Loads and validates a spec file with `--set` overrides and an optional parallelism override. */
export function loadSpec(file: string, sets: string[], parallelism?: number): JobSpec {
  const all = parallelism === undefined ? sets : [...sets, `parallelism=${parallelism}`];
  return loadJobSpecFile(file, all);
}
