/**
 * Validation of a job spec's `detect` step (user-facing shape → `DetectSpec`, core/spec/types.ts).
 *
 * ```yaml
 * - detect:
 *     value: temperature                 # numeric, non-null field; default `temperature`
 *     rules:
 *       - { type: jump, minDelta: 5 }                      # |Δvalue| ≥ 5 °C
 *       - { type: rate, perMinute: 30 }                    # |Δvalue/Δt| > 30 °C per minute
 *       - { type: zscore, k: 4, alpha: 0.05, warmup: 20, minStdDev: 0 }   # defaults shown but k
 *       - { type: jump, minDelta: 2, name: small-jump }    # name: the alert's `rule` (default: the type)
 * ```
 */
import * as z from 'zod';
import type { ExprFields } from '../expr/cel.js';
import type { DetectRule, DetectSpec } from '../spec/types.js';

type PathPart = string | number;

/** The slice of the spec validator's problem list this module needs. */
export interface DetectProblems {
  add(at: readonly PathPart[], message: string): void;
  parse<T extends z.ZodType>(schema: T, value: unknown, at: readonly PathPart[]): z.output<T> | undefined;
}

/** Defaults of the `zscore` rule: smoothing factor, readings before it may fire, floor of the std dev. */
export const ZSCORE_DEFAULTS = { alpha: 0.05, warmup: 20, minStdDev: 0 } as const;

const positive = () => z.number({ error: 'expected a number' }).positive({ error: 'must be > 0' });
const name = z
  .string()
  .regex(/^[A-Za-z0-9_.-]+$/, { error: 'expected letters, digits, _ . -' })
  .optional();

const jumpSchema = z.strictObject({ type: z.literal('jump'), name, minDelta: positive() });
const rateSchema = z.strictObject({ type: z.literal('rate'), name, perMinute: positive() });
const zscoreSchema = z.strictObject({
  type: z.literal('zscore'),
  name,
  k: positive(),
  alpha: positive().max(1, { error: 'must be at most 1' }).default(ZSCORE_DEFAULTS.alpha),
  warmup: z.int({ error: 'expected a non-negative integer' }).nonnegative().default(ZSCORE_DEFAULTS.warmup),
  minStdDev: z.number().nonnegative({ error: 'must be ≥ 0' }).default(ZSCORE_DEFAULTS.minStdDev),
});
const bodySchema = z.strictObject({
  value: z.string().min(1).default('temperature'),
  rules: z.array(z.unknown()).min(1, { error: 'expected at least one rule' }),
});

/**
 * Validates the body of a `detect` step at `at` (e.g. `['steps', 3, 'detect']`), recording every
 * problem. `fields` are the row fields visible at the step (undefined: skip field checks).
 * @returns the normalised spec, or undefined when there were problems
 */
export function normaliseDetect(
  body: unknown,
  fields: ExprFields | undefined,
  at: PathPart[],
  problems: DetectProblems,
): DetectSpec | undefined {
  const b = problems.parse(bodySchema, body, at);
  if (!b) return undefined;
  let ok = true;
  if (fields) {
    const t = fields[b.value];
    if (t === undefined) {
      problems.add([...at, 'value'], `unknown field "${b.value}"`);
      ok = false;
    } else if (t !== 'int' && t !== 'double') {
      problems.add(
        [...at, 'value'],
        `field "${b.value}" is ${t === 'dyn' ? 'nullable' : t}, expected a non-null number`,
      );
      ok = false;
    }
  }
  const rules: DetectRule[] = [];
  const names = new Set<string>();
  b.rules.forEach((raw, i) => {
    const sub = [...at, 'rules', i];
    const type = typeof raw === 'object' && raw !== null ? (raw as { type?: unknown }).type : undefined;
    const schema =
      type === 'jump' ? jumpSchema : type === 'rate' ? rateSchema : type === 'zscore' ? zscoreSchema : undefined;
    if (!schema) {
      problems.add([...sub, 'type'], `expected jump | rate | zscore, got ${JSON.stringify(type ?? null)}`);
      ok = false;
      return;
    }
    const r = problems.parse(schema, raw, sub);
    if (!r) {
      ok = false;
      return;
    }
    const rule = { ...r, name: r.name ?? r.type } as DetectRule;
    if (names.has(rule.name)) {
      problems.add([...sub, 'name'], `duplicate rule name "${rule.name}" (set name: to tell them apart)`);
      ok = false;
    }
    names.add(rule.name);
    rules.push(rule);
  });
  return ok ? { valueField: b.value, rules } : undefined;
}
