// From zod's JSON Schema (draft 2020-12, z.toJSONSchema) to the OpenAPI v3 subset that
// apiextensions.k8s.io/v1 accepts as a *structural* schema. The rules it has to satisfy (from the
// Kubernetes docs on structural schemas and apiextensions validation):
//
//  1. every node has a non-empty `type` (a single string, not a list), unless it is
//     `x-kubernetes-int-or-string` or `x-kubernetes-preserve-unknown-fields`;
//  2. inside allOf/anyOf/oneOf/not there are only value validations: no type, description,
//     default, additionalProperties, nullable; and no field that is not also specified outside;
//  3. `properties` and `additionalProperties` are mutually exclusive, and `additionalProperties:
//     false` is not allowed at all (unknown fields are pruned instead);
//  4. no `$ref`, `$schema`, `const`, `propertyNames`, `prefixItems`, and `uniqueItems: true` is
//     forbidden; nullability is `nullable: true`, and exclusive bounds are booleans (OpenAPI 3.0);
//  5. `metadata` at the root may only restrict name and generateName (we leave it `type: object`);
//  6. list-map keys must be required (or defaulted) in the item schema.
//
// Anything the converter cannot express faithfully is an error at generation time rather than a
// CRD that kube-apiserver rejects at install time.

/** The JSONSchemaProps fields we emit (apiextensions.k8s.io/v1). */
export interface OpenApiSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  title?: string;
  description?: string;
  default?: unknown;
  nullable?: boolean;
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  multipleOf?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  required?: string[];
  items?: OpenApiSchema;
  properties?: Record<string, OpenApiSchema>;
  additionalProperties?: OpenApiSchema;
  oneOf?: OpenApiSchema[];
  anyOf?: OpenApiSchema[];
  allOf?: OpenApiSchema[];
  not?: OpenApiSchema;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-embedded-resource'?: boolean;
}

type Json = Record<string, unknown>;

export class CrdSchemaError extends Error {
  readonly code = 'CRD_SCHEMA_UNSUPPORTED';
  constructor(path: string, message: string) {
    super(`${path || '<root>'}: ${message}`);
    this.name = 'CrdSchemaError';
  }
}

const SAFE_INT = 9007199254740991;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** Formats kube-apiserver knows; anything else would be ignored there, so we do not emit it. */
const KNOWN_FORMATS = new Set([
  'int32',
  'int64',
  'float',
  'double',
  'byte',
  'date',
  'date-time',
  'duration',
  'password',
  'ipv4',
  'ipv6',
  'cidr',
  'mac',
  'uuid',
  'hostname',
  'uri',
  'email',
]);

const CARRIED_EXTENSIONS = [
  'x-kubernetes-map-type',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-embedded-resource',
] as const;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isEmptySchema(s: Json): boolean {
  return (
    Object.keys(s).filter(
      (k) => k !== 'description' && k !== 'x-kubernetes-preserve-unknown-fields',
    ).length === 0
  );
}

function copyCommon(s: Json, out: OpenApiSchema): void {
  if (typeof s.description === 'string') out.description = s.description;
  if (typeof s.title === 'string') out.title = s.title;
  if ('default' in s) out.default = s.default;
  for (const ext of CARRIED_EXTENSIONS) {
    if (ext in s) (out as Record<string, unknown>)[ext] = s[ext];
  }
}

/** A junctor branch may only carry `required` (the oneOf-required pattern our schemas use). */
function convertJunctorBranch(b: unknown, path: string): OpenApiSchema {
  if (!isObject(b)) throw new CrdSchemaError(path, 'junctor branch must be an object');
  const out: OpenApiSchema = {};
  for (const [k, v] of Object.entries(b)) {
    if (k === 'required' && Array.isArray(v)) out.required = v.map(String);
    else throw new CrdSchemaError(path, `junctor branches may only use "required", found "${k}"`);
  }
  return out;
}

function convertNode(input: unknown, path: string): OpenApiSchema {
  if (!isObject(input)) throw new CrdSchemaError(path, 'schema node must be an object');
  const s = input;
  if ('$ref' in s) throw new CrdSchemaError(path, '$ref is not allowed in a structural schema');

  if (s['x-kubernetes-int-or-string'] === true) {
    const out: OpenApiSchema = { 'x-kubernetes-int-or-string': true };
    copyCommon(s, out);
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
    return out;
  }
  if (s['x-kubernetes-preserve-unknown-fields'] === true && isEmptySchema(s)) {
    const out: OpenApiSchema = { 'x-kubernetes-preserve-unknown-fields': true };
    copyCommon(s, out);
    return out;
  }
  if (isEmptySchema(s)) {
    // z.unknown(): any JSON value, kept as is.
    const out: OpenApiSchema = { 'x-kubernetes-preserve-unknown-fields': true };
    copyCommon(s, out);
    return out;
  }

  // Nullability: `type: [T, "null"]` or `anyOf: [X, {type: null}]`.
  if (Array.isArray(s.type)) {
    const all = (s.type as unknown[]).map(String);
    const types = all.filter((t) => t !== 'null');
    if (types.length !== 1 || types.length === all.length) {
      throw new CrdSchemaError(path, `a union of types (${all.join(', ')}) has no structural form`);
    }
    const out = convertNode({ ...s, type: types[0] }, path);
    out.nullable = true;
    return out;
  }
  if (Array.isArray(s.anyOf)) {
    const branches = s.anyOf.filter(isObject);
    const nonNull = branches.filter((b) => b.type !== 'null');
    if (nonNull.length < branches.length && nonNull.length === 1) {
      const rest = { ...s };
      delete rest.anyOf;
      const out = convertNode({ ...nonNull[0], ...rest }, path);
      out.nullable = true;
      return out;
    }
    if (nonNull.every((b) => 'const' in b) && new Set(nonNull.map((b) => b.type)).size === 1) {
      const rest = { ...s };
      delete rest.anyOf;
      const out = convertNode(
        { ...rest, type: nonNull[0]?.type, enum: nonNull.map((b) => b.const) },
        path,
      );
      if (nonNull.length < branches.length) out.nullable = true;
      return out;
    }
    throw new CrdSchemaError(
      path,
      'unions other than int-or-string, enums and nullable have no structural form',
    );
  }

  const type = s.type;
  const out: OpenApiSchema = {};
  copyCommon(s, out);

  for (const key of Object.keys(s)) {
    const handled = [
      'type',
      'description',
      'title',
      'default',
      'properties',
      'required',
      'additionalProperties',
      'propertyNames',
      'items',
      'enum',
      'const',
      'format',
      'pattern',
      'minLength',
      'maxLength',
      'minimum',
      'maximum',
      'exclusiveMinimum',
      'exclusiveMaximum',
      'multipleOf',
      'minItems',
      'maxItems',
      'uniqueItems',
      'minProperties',
      'maxProperties',
      'oneOf',
      '$schema',
      'x-kubernetes-preserve-unknown-fields',
      ...CARRIED_EXTENSIONS,
    ];
    if (!handled.includes(key))
      throw new CrdSchemaError(path, `JSON Schema keyword "${key}" is not supported`);
  }

  switch (type) {
    case 'object': {
      out.type = 'object';
      const props = isObject(s.properties) ? s.properties : undefined;
      const addl = s.additionalProperties;
      if (props && Object.keys(props).length > 0) {
        out.properties = {};
        for (const [k, v] of Object.entries(props))
          out.properties[k] = convertNode(v, `${path}.${k}`);
        if (Array.isArray(s.required) && s.required.length > 0)
          out.required = s.required.map(String);
        if (isObject(addl)) {
          // A loose object: known fields typed, unknown ones kept.
          out['x-kubernetes-preserve-unknown-fields'] = true;
        }
      } else if (isObject(addl)) {
        if (isEmptySchema(addl)) out['x-kubernetes-preserve-unknown-fields'] = true;
        else out.additionalProperties = convertNode(addl, `${path}.*`);
      }
      // No additionalProperties at all (zod's stripping object) means pruning: the structural default.
      if (s['x-kubernetes-preserve-unknown-fields'] === true)
        out['x-kubernetes-preserve-unknown-fields'] = true;
      if (Array.isArray(s.oneOf))
        out.oneOf = s.oneOf.map((b, i) => convertJunctorBranch(b, `${path}.oneOf[${i}]`));
      if (typeof s.minProperties === 'number') out.minProperties = s.minProperties;
      if (typeof s.maxProperties === 'number') out.maxProperties = s.maxProperties;
      return out;
    }
    case 'array': {
      out.type = 'array';
      if (!isObject(s.items)) throw new CrdSchemaError(path, 'arrays need a single `items` schema');
      out.items = convertNode(s.items, `${path}[*]`);
      if (typeof s.minItems === 'number' && s.minItems > 0) out.minItems = s.minItems;
      if (typeof s.maxItems === 'number') out.maxItems = s.maxItems;
      return out;
    }
    case 'string': {
      out.type = 'string';
      if ('const' in s) out.enum = [s.const];
      if (Array.isArray(s.enum)) out.enum = [...(s.enum as unknown[])];
      if (typeof s.format === 'string' && KNOWN_FORMATS.has(s.format)) out.format = s.format;
      if (typeof s.pattern === 'string') out.pattern = s.pattern;
      if (typeof s.minLength === 'number' && s.minLength > 0) out.minLength = s.minLength;
      if (typeof s.maxLength === 'number') out.maxLength = s.maxLength;
      return out;
    }
    case 'integer':
    case 'number': {
      out.type = type;
      if (typeof s.format === 'string' && KNOWN_FORMATS.has(s.format)) out.format = s.format;
      const int32 = out.format === 'int32';
      const min = typeof s.minimum === 'number' ? s.minimum : undefined;
      const max = typeof s.maximum === 'number' ? s.maximum : undefined;
      // zod states the safe-integer (or int32) range explicitly; the format already implies it.
      if (min !== undefined && min !== -SAFE_INT && !(int32 && min === INT32_MIN))
        out.minimum = min;
      if (max !== undefined && max !== SAFE_INT && !(int32 && max === INT32_MAX)) out.maximum = max;
      if (typeof s.exclusiveMinimum === 'number') {
        out.minimum = s.exclusiveMinimum;
        out.exclusiveMinimum = true;
      }
      if (typeof s.exclusiveMaximum === 'number') {
        out.maximum = s.exclusiveMaximum;
        out.exclusiveMaximum = true;
      }
      if (typeof s.multipleOf === 'number') out.multipleOf = s.multipleOf;
      if (Array.isArray(s.enum)) out.enum = [...(s.enum as unknown[])];
      if ('const' in s) out.enum = [s.const];
      return out;
    }
    case 'boolean': {
      out.type = 'boolean';
      if ('const' in s) out.enum = [s.const];
      return out;
    }
    default:
      throw new CrdSchemaError(path, `type ${JSON.stringify(type)} has no structural form`);
  }
}

/**
 * Converts the JSON Schema of a whole object (apiVersion, kind, metadata, spec, status) into the
 * CRD's openAPIV3Schema: metadata becomes `type: object` (the API server validates it), apiVersion
 * and kind plain strings.
 */
export function toStructuralSchema(jsonSchema: unknown): OpenApiSchema {
  const root = convertNode(jsonSchema, '');
  if (root.type !== 'object' || !root.properties) {
    throw new CrdSchemaError('', 'the root of a CRD schema must be an object with properties');
  }
  root.properties.apiVersion = {
    type: 'string',
    description:
      'APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values.',
  };
  root.properties.kind = {
    type: 'string',
    description:
      'Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. In CamelCase.',
  };
  root.properties.metadata = { type: 'object' };
  root.required = (root.required ?? []).filter((r) => r !== 'apiVersion' && r !== 'kind');
  if (root.required.length === 0) delete root.required;
  return root;
}

// ---------------------------------------------------------------------------------------------
// A checker for the rules above, used by the tests and by the generator as a last guard.

const JUNCTOR_FORBIDDEN = [
  'type',
  'description',
  'default',
  'additionalProperties',
  'nullable',
  'x-kubernetes-preserve-unknown-fields',
];
const ALLOWED_KEYS = new Set<string>([
  'type',
  'format',
  'title',
  'description',
  'default',
  'nullable',
  'enum',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'required',
  'items',
  'properties',
  'additionalProperties',
  'oneOf',
  'anyOf',
  'allOf',
  'not',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-int-or-string',
  'x-kubernetes-map-type',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-embedded-resource',
]);

function isIntOrStringAnyOf(branches: readonly OpenApiSchema[] | undefined): boolean {
  return (
    branches?.length === 2 &&
    branches.some((b) => b.type === 'integer' && Object.keys(b).length === 1) &&
    branches.some((b) => b.type === 'string' && Object.keys(b).length === 1)
  );
}

/** Lists every violation of the structural-schema rules; empty when the schema is structural. */
export function structuralViolations(schema: OpenApiSchema, path = ''): string[] {
  const out: string[] = [];
  const at = path || '<root>';
  for (const k of Object.keys(schema))
    if (!ALLOWED_KEYS.has(k)) out.push(`${at}: keyword "${k}" is not allowed`);
  const special =
    schema['x-kubernetes-int-or-string'] === true ||
    schema['x-kubernetes-preserve-unknown-fields'] === true;
  if (!schema.type && !special) out.push(`${at}: type must not be empty`);
  if (schema.properties && schema.additionalProperties) {
    out.push(`${at}: properties and additionalProperties are mutually exclusive`);
  }
  if (schema['x-kubernetes-int-or-string'] === true && schema.type)
    out.push(`${at}: int-or-string must not have a type`);
  for (const j of ['oneOf', 'anyOf', 'allOf'] as const) {
    // The one exception Kubernetes makes: int-or-string may spell out anyOf integer|string.
    if (
      j === 'anyOf' &&
      schema['x-kubernetes-int-or-string'] === true &&
      isIntOrStringAnyOf(schema.anyOf)
    )
      continue;
    (schema[j] ?? []).forEach((b, i) => {
      for (const f of JUNCTOR_FORBIDDEN)
        if (f in b) out.push(`${at}.${j}[${i}]: "${f}" is not allowed inside ${j}`);
      if (b.properties) out.push(`${at}.${j}[${i}]: junctors may not specify properties`);
      for (const r of b.required ?? []) {
        if (!schema.properties?.[r])
          out.push(`${at}.${j}[${i}]: required field "${r}" is not specified outside the junctor`);
      }
    });
  }
  for (const r of schema.required ?? []) {
    if (!schema.properties?.[r]) out.push(`${at}: required field "${r}" has no schema`);
  }
  if (schema['x-kubernetes-list-type'] === 'map') {
    const keys = schema['x-kubernetes-list-map-keys'] ?? [];
    if (keys.length === 0) out.push(`${at}: a list-type map needs x-kubernetes-list-map-keys`);
    for (const k of keys) {
      const item = schema.items;
      if (!item?.properties?.[k])
        out.push(`${at}: list-map key "${k}" is not a property of the items`);
      else if (!(item.required ?? []).includes(k) && item.properties[k]?.default === undefined) {
        out.push(`${at}: list-map key "${k}" must be required or have a default`);
      }
    }
  }
  if (schema['x-kubernetes-map-type'] !== undefined && schema.type !== 'object') {
    out.push(`${at}: x-kubernetes-map-type applies to objects only`);
  }
  for (const [k, v] of Object.entries(schema.properties ?? {}))
    out.push(...structuralViolations(v, `${path}.${k}`));
  if (schema.additionalProperties)
    out.push(...structuralViolations(schema.additionalProperties, `${path}.*`));
  if (schema.items) out.push(...structuralViolations(schema.items, `${path}[*]`));
  if (path === '' && schema.properties?.metadata) {
    const md = schema.properties.metadata;
    if (Object.keys(md).some((k) => k !== 'type' && k !== 'properties') || md.type !== 'object') {
      out.push('.metadata: may only be `type: object` (restricting name and generateName at most)');
    }
  }
  return out;
}
