import { describe, expect, it } from 'vitest';
import type { EngineError } from '../../../core/errors/index.js';
import { compileFilter, compileMap, compileRule, inferMapTypes } from '../../../core/expr/cel.js';

const fields = { sensorId: 'string', temperature: 'double', count: 'int', ok: 'bool', maybe: 'dyn' } as const;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as EngineError).code;
  }
  return undefined;
}

describe('compileFilter', () => {
  it('compares double fields with int and double literals alike', () => {
    const f1 = compileFilter('temperature >= -40 && temperature <= 85', fields);
    const f2 = compileFilter('temperature >= -40.0 && temperature <= 85.0', fields);
    for (const [t, keep] of [
      [21.5, true],
      [-40, true],
      [-40.5, false],
      [85, true],
      [85.25, false],
    ] as const) {
      expect(f1({ temperature: t })).toBe(keep);
      expect(f2({ temperature: t })).toBe(keep);
    }
  });

  it('treats int columns as numbers: equality, modulo and mixed arithmetic', () => {
    expect(compileFilter('count == 4', fields)({ count: 4 })).toBe(true);
    expect(compileFilter('count % 2 == 0', fields)({ count: 3 })).toBe(false);
    expect(compileFilter('count * 1.5 > 5', fields)({ count: 4 })).toBe(true);
    expect(compileFilter('sensorId.startsWith("hall") && ok', fields)({ sensorId: 'hall-2', ok: true })).toBe(true);
  });

  it('rejects bad expressions at compile time with EXPR_INVALID', () => {
    expect(codeOf(() => compileFilter('temperature >=', fields))).toBe('EXPR_INVALID');
    expect(codeOf(() => compileFilter('humidity > 3.0', fields))).toBe('EXPR_INVALID');
    expect(codeOf(() => compileFilter('temperature + 1.0', fields))).toBe('EXPR_INVALID');
    expect(codeOf(() => compileFilter('sensorId + 1', fields))).toBe('EXPR_INVALID');
  });

  it('throws EXPR_EVAL at run time for a null field', () => {
    const f = compileFilter('temperature > 0.0', fields);
    expect(codeOf(() => f({ temperature: null }))).toBe('EXPR_EVAL');
    const g = compileFilter('maybe == null || maybe > 3', fields);
    expect(g({ maybe: null })).toBe(true);
    expect(g({ maybe: 5 })).toBe(true);
    expect(g({ maybe: 1 })).toBe(false);
  });

  it('compileRule is a predicate like a filter', () => {
    const r = compileRule('temperature > -60.0', fields);
    expect(r({ temperature: -70 })).toBe(false);
    expect(r({ temperature: 20 })).toBe(true);
  });
});

describe('compileMap', () => {
  it('returns a new row with added and replaced fields; ints come back as numbers', () => {
    const m = compileMap(
      { tempF: 'temperature * 9 / 5 + 32', whole: 'int(temperature)', sensorId: '"x-" + sensorId' },
      fields,
    );
    const input = { sensorId: 's1', temperature: 21.5 };
    const out = m(input);
    // 21.5 * 9 / 5 + 32 = 70.7
    expect(out).toEqual({ sensorId: 'x-s1', temperature: 21.5, tempF: 70.7, whole: 21 });
    expect(input).toEqual({ sensorId: 's1', temperature: 21.5 });
    expect(typeof out.whole).toBe('number');
  });

  it('every output sees the input row', () => {
    const m = compileMap({ temperature: 'temperature + 1.0', copy: 'temperature' }, fields);
    expect(m({ temperature: 1 })).toEqual({ temperature: 2, copy: 1 });
  });

  it('infers output types', () => {
    expect(
      inferMapTypes(
        { a: 'temperature * 2', b: 'int(temperature)', c: 'sensorId + "!"', d: 'temperature > 1.0' },
        fields,
      ),
    ).toEqual({
      a: 'double',
      b: 'int',
      c: 'string',
      d: 'bool',
    });
  });

  it('names the output in compile errors and throws EXPR_EVAL at run time', () => {
    try {
      compileMap({ tempF: 'temperature *' }, fields);
      throw new Error('no error');
    } catch (e) {
      expect((e as EngineError).code).toBe('EXPR_INVALID');
      expect((e as EngineError).message).toMatch(/^tempF: invalid expression/);
    }
    const m = compileMap({ q: 'count / 0' }, { count: 'int' });
    expect(m({ count: 1 }).q).toBe(Number.POSITIVE_INFINITY);
    const n = compileMap({ q: 'temperature * 2.0' }, fields);
    expect(codeOf(() => n({ temperature: 'warm' }))).toBe('EXPR_EVAL');
  });
});
