// A small validator for the structural OpenAPI subset our CRDs use, applied the way kube-apiserver
// applies a CRD schema with strict field validation: types, enums, bounds, required fields,
// oneOf-required, int-or-string, nullable, and unknown fields (pruned fields) as errors. Test
// support only: it checks that what the zod schemas accept a real API server would accept too.

import type { OpenApiSchema } from '../crd/structural.js';

function typeOk(type: OpenApiSchema['type'], v: unknown): boolean {
  switch (type) {
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    default:
      return true;
  }
}

export function openApiErrors(schema: OpenApiSchema, value: unknown, path = ''): string[] {
  const at = path || '<root>';
  if (value === null)
    return schema.nullable || schema['x-kubernetes-preserve-unknown-fields']
      ? []
      : [`${at}: must not be null`];
  if (schema['x-kubernetes-int-or-string']) {
    return typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value))
      ? []
      : [`${at}: must be an integer or a string`];
  }
  if (schema.type && !typeOk(schema.type, value)) return [`${at}: must be of type ${schema.type}`];
  const out: string[] = [];
  if (schema.enum && !schema.enum.some((e) => e === value))
    out.push(`${at}: unsupported value ${JSON.stringify(value)}`);
  if (typeof value === 'number') {
    if (
      schema.minimum !== undefined &&
      (schema.exclusiveMinimum ? value <= schema.minimum : value < schema.minimum)
    )
      out.push(`${at}: below minimum`);
    if (
      schema.maximum !== undefined &&
      (schema.exclusiveMaximum ? value >= schema.maximum : value > schema.maximum)
    )
      out.push(`${at}: above maximum`);
    if (schema.format === 'int32' && (value < -2147483648 || value > 2147483647))
      out.push(`${at}: not an int32`);
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength)
      out.push(`${at}: too short`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength)
      out.push(`${at}: too long`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value))
      out.push(`${at}: does not match pattern`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems)
      out.push(`${at}: too few items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems)
      out.push(`${at}: too many items`);
    if (schema.items)
      value.forEach((v, i) =>
        out.push(...openApiErrors(schema.items as OpenApiSchema, v, `${path}[${i}]`)),
      );
    return out;
  }
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? [])
      if (!(r in obj)) out.push(`${path ? `${path}.` : ''}${r}: Required value`);
    if (schema.oneOf) {
      const matching = schema.oneOf.filter((b) => (b.required ?? []).every((r) => r in obj)).length;
      if (matching !== 1)
        out.push(`${at}: must match exactly one oneOf branch, matches ${matching}`);
    }
    for (const [k, v] of Object.entries(obj)) {
      const sub = path ? `${path}.${k}` : k;
      const prop = schema.properties?.[k];
      if (prop) out.push(...openApiErrors(prop, v, sub));
      else if (schema.additionalProperties)
        out.push(...openApiErrors(schema.additionalProperties, v, `${path}[${k}]`));
      else if (
        !schema['x-kubernetes-preserve-unknown-fields'] &&
        schema.type === 'object' &&
        schema.properties
      ) {
        out.push(`unknown field "${sub}"`);
      }
    }
  }
  return out;
}
