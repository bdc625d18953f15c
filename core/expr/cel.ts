/**
 * CEL expressions over rows (filter, map, validate rules), on top of @marcbachmann/cel-js.
 *
 * Numbers: CEL keeps `int` (BigInt) and `double` (JS number) apart and has no mixed arithmetic.
 * Fluxo declares every numeric field, `int` columns included, as CEL `double` and passes the
 * row's JS numbers as they are (no BigInt conversion per record). On top of CEL's own mixed
 * comparisons (`temperature >= -40` works out of the box) we register mixed arithmetic and
 * equality overloads (`double + int`, `int * double`, `double == int`, `double % int`, ...), so
 * `temperature >= -40 && temperature <= 85`, `temperature >= -40.0`,
 * `temperature * 9 / 5 + 32` and `count % 2 == 0` all work as a user expects. Integer-only
 * CEL functions (`s.substring(0, 3)`) still take integer literals. Results are converted back to
 * JS values: a BigInt result becomes a number.
 *
 * Nullable fields are declared `dyn`, so `x == null` works; using a null in arithmetic or a
 * comparison is an evaluation error (EXPR_EVAL), which callers turn into a dead letter.
 *
 * Fields whose names are not CEL identifiers (`out/in`, `3:Temperature`) or are CEL reserved
 * words are not visible to expressions; rename them in the source's `columns`.
 *
 * Never uses eval / new Function: cel-js interprets its own AST.
 */
import { Environment } from '@marcbachmann/cel-js';
import { EngineError } from '../errors/index.js';
import type { FieldType, Row, Value } from '../spec/types.js';

/** A field type as seen by expressions: a FieldType, or `dyn` for nullable fields. */
export type ExprFieldType = FieldType | 'dyn';

/** Field name → type, the row shape an expression is compiled against. */
export type ExprFields = Record<string, ExprFieldType>;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RESERVED = new Set([
  'true',
  'false',
  'null',
  'in',
  'as',
  'break',
  'const',
  'continue',
  'else',
  'for',
  'function',
  'if',
  'import',
  'let',
  'loop',
  'package',
  'namespace',
  'return',
  'var',
  'void',
  'while',
]);

/** True when `name` can be referenced from a CEL expression. */
export function isCelIdentifier(name: string): boolean {
  return IDENT.test(name) && !RESERVED.has(name);
}

let baseEnv: Environment | undefined;

/** The shared environment with Fluxo's mixed-number overloads; cloned per compiled expression. */
function base(): Environment {
  if (baseEnv) return baseEnv;
  const env = new Environment();
  const n = (b: unknown): number => Number(b);
  env.registerOperator('double + int', (a: number, b: bigint) => a + n(b));
  env.registerOperator('int + double', (a: bigint, b: number) => n(a) + b);
  env.registerOperator('double - int', (a: number, b: bigint) => a - n(b));
  env.registerOperator('int - double', (a: bigint, b: number) => n(a) - b);
  env.registerOperator('double * int', (a: number, b: bigint) => a * n(b));
  env.registerOperator('int * double', (a: bigint, b: number) => n(a) * b);
  env.registerOperator('double / int', (a: number, b: bigint) => a / n(b));
  env.registerOperator('int / double', (a: bigint, b: number) => n(a) / b);
  env.registerOperator('double % double', (a: number, b: number) => a % b);
  env.registerOperator('double % int', (a: number, b: bigint) => a % n(b));
  env.registerOperator('int % double', (a: bigint, b: number) => n(a) % b);
  // registering `double == int` also provides `int == double` and both `!=` forms
  env.registerOperator('double == int', (a: number, b: bigint) => a === n(b));
  baseEnv = env;
  return env;
}

function celType(t: ExprFieldType): string {
  switch (t) {
    case 'int':
    case 'double':
      return 'double';
    case 'string':
      return 'string';
    case 'bool':
      return 'bool';
    default:
      return 'dyn';
  }
}

type Compiled = ((ctx: Row) => unknown) & { check(): { valid: boolean; type?: string } };

interface CompileResult {
  fn: Compiled;
  /** CEL result type: `double`, `int`, `string`, `bool`, `dyn`, ... */
  type: string;
}

function firstLine(e: unknown): string {
  const err = e as { summary?: unknown; message?: unknown };
  const text = typeof err.summary === 'string' && err.summary !== '' ? err.summary : String(err.message ?? e);
  return text.split('\n')[0] ?? text;
}

function compile(expr: string, fields: ExprFields): CompileResult {
  if (typeof expr !== 'string' || expr.trim() === '') {
    throw new EngineError('EXPR_INVALID', 'expression is empty');
  }
  const env = base().clone();
  for (const name of Object.keys(fields)) {
    if (isCelIdentifier(name)) env.registerVariable(name, celType(fields[name] as ExprFieldType));
  }
  let checked: { valid: boolean; type?: string; error?: unknown };
  try {
    checked = env.check(expr);
  } catch (e) {
    throw new EngineError('EXPR_INVALID', `invalid expression "${expr}": ${firstLine(e)}`, { cause: e });
  }
  if (!checked.valid) {
    throw new EngineError('EXPR_INVALID', `invalid expression "${expr}": ${firstLine(checked.error)}`, {
      cause: checked.error,
    });
  }
  try {
    const fn = env.parse(expr) as unknown as Compiled;
    return { fn, type: checked.type ?? 'dyn' };
  } catch (e) {
    throw new EngineError('EXPR_INVALID', `invalid expression "${expr}": ${firstLine(e)}`, { cause: e });
  }
}

function evalError(expr: string, e: unknown): EngineError {
  return new EngineError('EXPR_EVAL', `cannot evaluate "${expr}": ${firstLine(e)}`, { cause: e });
}

/**
 * Checks that `expr` compiles against `fields` and returns its CEL result type
 * (`bool`, `double`, `int`, `string`, `dyn`, ...).
 * @throws EngineError `EXPR_INVALID` on a syntax or type error.
 */
export function checkExpression(expr: string, fields: ExprFields): string {
  return compile(expr, fields).type;
}

/**
 * Compiles a boolean filter. The returned predicate takes the row itself as the CEL context
 * (no copy) and returns true to keep the row.
 * @throws EngineError `EXPR_INVALID` at compile time (syntax, unknown field, type error, non-bool result).
 * The predicate throws EngineError `EXPR_EVAL` when evaluation fails (null field, division by
 * zero, ...) or the result is not a boolean.
 */
export function compileFilter(expr: string, fields: ExprFields): (row: Row) => boolean {
  const { fn, type } = compile(expr, fields);
  if (type !== 'bool' && type !== 'dyn') {
    throw new EngineError('EXPR_INVALID', `invalid expression "${expr}": must be a boolean, got ${type}`);
  }
  return (row: Row): boolean => {
    let r: unknown;
    try {
      r = fn(row);
    } catch (e) {
      throw evalError(expr, e);
    }
    if (r === true) return true;
    if (r === false) return false;
    throw new EngineError('EXPR_EVAL', `cannot evaluate "${expr}": result is not a boolean`);
  };
}

/**
 * Compiles a validate rule: like a filter, but a failing rule means "reject the record".
 * Returns a predicate that is true when the row passes.
 * @throws EngineError `EXPR_INVALID` at compile time; the predicate throws `EXPR_EVAL`.
 */
export function compileRule(rule: string, fields: ExprFields): (row: Row) => boolean {
  return compileFilter(rule, fields);
}

function toFieldType(celResult: string): FieldType {
  switch (celResult) {
    case 'int':
    case 'uint':
      return 'int';
    case 'string':
      return 'string';
    case 'bool':
      return 'bool';
    default:
      // `double`, and `dyn` (results depending on nullable fields): numbers are the common case
      return 'double';
  }
}

/**
 * Output types of a map step: output field → FieldType. `int` results (e.g. `int(temperature)`)
 * are `int`, `dyn` results are reported as `double`.
 * @throws EngineError `EXPR_INVALID` if any expression does not compile; the message names the field.
 */
export function inferMapTypes(outputs: Record<string, string>, inputTypes: ExprFields): Record<string, FieldType> {
  const types: Record<string, FieldType> = {};
  for (const name of Object.keys(outputs)) {
    types[name] = toFieldType(compileOne(name, outputs[name] as string, inputTypes).type);
  }
  return types;
}

function compileOne(name: string, expr: string, inputTypes: ExprFields): CompileResult {
  try {
    return compile(expr, inputTypes);
  } catch (e) {
    if (e instanceof EngineError) throw new EngineError('EXPR_INVALID', `${name}: ${e.message}`, { cause: e.cause });
    throw e;
  }
}

function toValue(expr: string, v: unknown): Value {
  switch (typeof v) {
    case 'number':
    case 'string':
    case 'boolean':
      return v;
    case 'bigint':
      return Number(v);
    default:
      if (v === null) return null;
      throw new EngineError('EXPR_EVAL', `cannot evaluate "${expr}": result is not a number, string or bool`);
  }
}

/**
 * Compiles a map step `{ output: expr }`. Every expression sees the INPUT row (outputs of the
 * same step are not visible to each other). The returned function returns a new row: the input
 * fields plus the outputs (an output named like an input field replaces it). BigInt results
 * become numbers.
 * @throws EngineError `EXPR_INVALID` at compile time (message starts with the output name);
 * the mapper throws `EXPR_EVAL` when an evaluation fails.
 */
export function compileMap(outputs: Record<string, string>, inputTypes: ExprFields): (row: Row) => Row {
  const names = Object.keys(outputs);
  const exprs = names.map((n) => outputs[n] as string);
  const fns = names.map((n, i) => compileOne(n, exprs[i] as string, inputTypes).fn);
  const k = names.length;
  return (row: Row): Row => {
    const out: Row = { ...row };
    for (let i = 0; i < k; i++) {
      let r: unknown;
      try {
        r = (fns[i] as Compiled)(row);
      } catch (e) {
        throw evalError(exprs[i] as string, e);
      }
      out[names[i] as string] = toValue(exprs[i] as string, r);
    }
    return out;
  };
}
