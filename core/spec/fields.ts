/**
 * Field types of the rows a source produces, derived from a normalised SourceSpec.
 * Used by the spec validator (CEL checks, keyBy/aggregate field checks) and by the source
 * readers (validate rules).
 */
import type { ExprFields } from '../expr/cel.js';
import type { FieldType, SourceSpec } from './types.js';

/** Fields of every generator reading, in this order. */
export const GENERATOR_FIELDS: Readonly<Record<string, FieldType>> = Object.freeze({
  sensorId: 'string',
  timestamp: 'int',
  temperature: 'double',
  room: 'string',
  house: 'string',
});

/**
 * The fields of a source's rows and their types, in row order:
 * - file, redis-stream: the columns (melted columns replaced by `melt.nameField` (string) and
 *   `melt.valueField` (`melt.valueType`)), then `eventTime.outputField` (`int`, ms) if it is not
 *   already a column (a unit-based event-time column is overwritten with its ms value and becomes `int`);
 * - generator: GENERATOR_FIELDS.
 */
export function sourceFieldTypes(source: SourceSpec): Record<string, FieldType> {
  if (source.type === 'generator') return { ...GENERATOR_FIELDS };
  const out: Record<string, FieldType> = {};
  const melted = new Set(source.melt?.columns ?? []);
  for (const c of source.columns) {
    if (!melted.has(c.name)) out[c.name] = c.type;
  }
  if (source.melt) {
    out[source.melt.nameField] = 'string';
    out[source.melt.valueField] = source.melt.valueType;
  }
  out[source.eventTime.outputField] = 'int';
  return out;
}

/**
 * Like sourceFieldTypes, but as seen by CEL expressions: nullable columns are `dyn`
 * (they may hold null).
 */
export function sourceExprFields(source: SourceSpec): ExprFields {
  const types: ExprFields = sourceFieldTypes(source);
  if (source.type !== 'generator') {
    const melted = new Set(source.melt?.columns ?? []);
    for (const c of source.columns) {
      if (c.nullable && !melted.has(c.name) && c.name !== source.eventTime.outputField) types[c.name] = 'dyn';
    }
  }
  return types;
}
