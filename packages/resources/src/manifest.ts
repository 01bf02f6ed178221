// Reading manifests: multi-document YAML or JSON (a JSON document is read as YAML, which it is),
// `kind: List` and typed lists (`ServiceList`) expanded into their items, every object validated
// against its kind's schema, and every problem reported, not just the first.
//
// Error format, one line per problem (kubectl's `error: error validating "file"` prefix, then a
// parenthesis that locates the object, then kube-apiserver's field error):
//
//   error: error validating "pool.yaml" (document 1, line 2, CiliumLoadBalancerIPPool "default-pool"): spec.blocks[0].cidr: Invalid value: "10.0.6.0/33": prefix length must be 0-32
//   error: error validating "svc.yaml" (document 2, line 18, Service "media/plex"): unknown field "spec.prots"
//   error: error validating "mesh.yaml" (document 1, line 2, CiliumEnvoyConfig "rate-limit-api"): kind "CiliumEnvoyConfig" (cilium.io/v2) is not supported by Ciliate: ...
//   error: error parsing "bad.yaml" (document 3, line 7, column 5): Map keys must be unique
//
// Documents are counted from 1, skipping empty ones (only comments or `---`), like kubectl does;
// items of a List are addressed as `items[i]` after the document number.
//
// YAML is read as YAML 1.2 (core schema): only true/false are booleans, so `allowFirstLastIPs: Yes`
// stays the string it is meant to be. kubectl reads YAML 1.1, so what we write is quoted for both
// (see toYaml): a file written by Ciliate means the same to kubectl.

import YAML, { LineCounter } from 'yaml';
import type { z } from 'zod';

import {
  formatFieldIssue,
  ManifestError,
  ManifestErrorCode,
  type FieldIssue,
  type ManifestProblem,
} from './errors.js';
import { type KubeObject, type ResourceObject } from './objects.js';
import { apiVersionOf, lookupKind, type KindDescriptor } from './registry.js';
import { fieldIssuesFromZod } from './schema/kit.js';

/** kubectl's `--validate`: Strict rejects unknown fields, Warn drops them with a warning, Ignore drops them. */
export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface ParseOptions {
  /** Namespace given to namespaced objects that name none (kubectl's context namespace). Default `default`. */
  readonly defaultNamespace?: string;
  /** Default `Strict`, as kubectl's default `--validate=strict`. */
  readonly fieldValidation?: FieldValidation;
}

/** Where a document came from, for messages. */
export interface ManifestLocation {
  readonly source: string;
  /** 1-based, empty documents not counted. */
  readonly document: number;
  readonly line?: number;
  readonly item?: number;
}

export type ParseResult =
  | { readonly ok: true; readonly objects: ResourceObject[]; readonly warnings: string[] }
  | {
      readonly ok: false;
      /** The documents that were valid; an all-or-nothing caller ignores them. */
      readonly objects: ResourceObject[];
      readonly errors: ManifestProblem[];
      readonly warnings: string[];
    };

export type ValidateResult =
  | { readonly ok: true; readonly object: ResourceObject; readonly warnings: string[] }
  | { readonly ok: false; readonly problem: ManifestProblem };

const DEFAULT_SOURCE = 'STDIN';
const MAX_ALIAS_COUNT = 100;

// ---------------------------------------------------------------------------------------------
// Messages

interface Identity {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name?: string;
}

function locate(where: ManifestLocation, id: Identity, column?: number): string {
  const parts = [
    `document ${where.document}${where.item !== undefined ? ` items[${where.item}]` : ''}`,
  ];
  if (where.line !== undefined) parts.push(`line ${where.line}`);
  if (column !== undefined) parts.push(`column ${column}`);
  if (id.kind !== undefined) {
    const name =
      id.name === undefined ? '' : id.namespace ? ` "${id.namespace}/${id.name}"` : ` "${id.name}"`;
    parts.push(`${id.kind}${name}`);
  }
  return parts.join(', ');
}

function problem(
  code: ManifestErrorCode,
  where: ManifestLocation,
  id: Identity,
  issues: readonly FieldIssue[],
  lines: readonly string[],
  verb: 'validating' | 'parsing' = 'validating',
  column?: number,
): ManifestProblem {
  const prefix = `error: error ${verb} "${where.source}" (${locate(where, id, column)}): `;
  return {
    code,
    source: where.source,
    document: where.document,
    ...(where.line !== undefined ? { line: where.line } : {}),
    ...(where.item !== undefined ? { item: where.item } : {}),
    ...definedOnly(id),
    issues,
    message: lines.map((l) => prefix + l).join('\n'),
  };
}

function definedOnly(id: Identity): Identity {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(id)) if (typeof v === 'string') out[k] = v;
  return out;
}

function warningLine(where: ManifestLocation, id: Identity, text: string): string {
  return `Warning: "${where.source}" (${locate(where, id)}): ${text}`;
}

// ---------------------------------------------------------------------------------------------
// One object

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return `a ${typeof v}`;
}

function identityOf(value: Record<string, unknown>): Identity {
  const md = isPlainObject(value.metadata) ? value.metadata : {};
  return definedOnly({
    apiVersion: typeof value.apiVersion === 'string' ? value.apiVersion : undefined,
    kind: typeof value.kind === 'string' ? value.kind : undefined,
    namespace: typeof md.namespace === 'string' ? md.namespace : undefined,
    name: typeof md.name === 'string' ? md.name : undefined,
  });
}

/** Deletes the keys zod reported as unrecognized, in place. */
function stripUnknown(root: unknown, issues: readonly z.core.$ZodIssue[]): void {
  for (const issue of issues) {
    if (issue.code !== 'unrecognized_keys') continue;
    let cur: unknown = root;
    for (const seg of issue.path) {
      if (!isPlainObject(cur) && !Array.isArray(cur)) break;
      cur = (cur as Record<PropertyKey, unknown>)[seg];
    }
    if (isPlainObject(cur)) for (const k of issue.keys) delete cur[k];
  }
}

function placeNamespace(obj: KubeObject, kind: KindDescriptor, defaultNs: string): void {
  const md = obj.metadata as Record<string, unknown>;
  const { name, namespace, ...rest } = md;
  // Kept in the order people write them: name, namespace, then everything else.
  for (const k of Object.keys(md)) delete md[k];
  if (name !== undefined) md.name = name;
  // The API server clears the namespace of cluster-scoped objects; namespaced ones get the default.
  if (kind.namespaced)
    md.namespace = typeof namespace === 'string' && namespace !== '' ? namespace : defaultNs;
  Object.assign(md, rest);
}

/**
 * Validates one decoded object (from YAML, JSON, the API server or the store) and applies the
 * defaults the API server would. Never throws: anything wrong comes back as a problem.
 */
export function validateObject(
  value: unknown,
  options: ParseOptions & { readonly where?: Partial<ManifestLocation> } = {},
): ValidateResult {
  const where: ManifestLocation = {
    source: options.where?.source ?? DEFAULT_SOURCE,
    document: options.where?.document ?? 1,
    ...(options.where?.line !== undefined ? { line: options.where.line } : {}),
    ...(options.where?.item !== undefined ? { item: options.where.item } : {}),
  };
  try {
    return validateUnsafe(value, where, options);
  } catch (e) {
    // A bug in a validator must not take a service down; it surfaces as an error on the input.
    const detail = `internal error while validating: ${e instanceof Error ? e.message : String(e)}`;
    const id = isPlainObject(value) ? identityOf(value) : {};
    const issue: FieldIssue = { path: '', type: 'Invalid value', value, detail };
    return { ok: false, problem: problem(ManifestErrorCode.invalid, where, id, [issue], [detail]) };
  }
}

const MAX_DEPTH = 64;
const MAX_NODES = 1_000_000;

/**
 * Objects must be finite trees of plain JSON: YAML anchors can build cycles (`&a [*a]`), which no
 * JSON encoder or store survives. Iterative, so absurd nesting cannot overflow the stack.
 */
function treeProblem(value: unknown): string | undefined {
  const stack: [unknown, number][] = [[value, 0]];
  let nodes = 0;
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (++nodes > MAX_NODES) return `has more than ${MAX_NODES} values`;
    if (typeof v === 'number' && !Number.isFinite(v))
      return 'contains a number JSON cannot represent (.inf or .nan)';
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= MAX_DEPTH)
      return `is nested more than ${MAX_DEPTH} levels deep (or contains itself through a YAML alias)`;
    if (Array.isArray(v)) for (const x of v) stack.push([x, depth + 1]);
    else if (isPlainObject(v) && Object.getPrototypeOf(v) === Object.prototype) {
      for (const x of Object.values(v)) stack.push([x, depth + 1]);
    } else if (!(v instanceof Uint8Array) && !(v instanceof Date)) {
      // Maps, Sets and other non-JSON values from YAML tags (!!set, !!omap) are refused here;
      // binary and timestamps are left for the schema to reject by type.
      return `contains a ${Object.prototype.toString.call(v).slice(8, -1)}, which JSON cannot represent`;
    }
  }
  return undefined;
}

function validateUnsafe(
  value: unknown,
  where: ManifestLocation,
  options: ParseOptions,
): ValidateResult {
  if (!isPlainObject(value)) {
    const detail = `a manifest must be an object with apiVersion and kind, not ${typeName(value)}`;
    const issue: FieldIssue = { path: '', type: 'Invalid value', value, detail };
    return {
      ok: false,
      problem: problem(ManifestErrorCode.notAnObject, where, {}, [issue], [detail]),
    };
  }
  const shape = treeProblem(value);
  if (shape !== undefined) {
    const detail = `the document ${shape}`;
    const issue: FieldIssue = { path: '', type: 'Invalid value', value, detail };
    return {
      ok: false,
      problem: problem(ManifestErrorCode.notAnObject, where, {}, [issue], [detail]),
    };
  }
  const id = identityOf(value);
  const typeIssues: FieldIssue[] = [];
  for (const field of ['apiVersion', 'kind'] as const) {
    const v = value[field];
    if (v === undefined || v === '') typeIssues.push({ path: field, type: 'Required value' });
    else if (typeof v !== 'string') {
      typeIssues.push({
        path: field,
        type: 'Invalid value',
        value: v,
        detail: 'must be of type string',
      });
    }
  }
  if (typeIssues.length > 0) {
    return {
      ok: false,
      problem: problem(
        ManifestErrorCode.missingType,
        where,
        id,
        typeIssues,
        typeIssues.map(formatFieldIssue),
      ),
    };
  }
  const apiVersion = value.apiVersion as string;
  const kindName = value.kind as string;
  const found = lookupKind(apiVersion, kindName);
  if (found.status !== 'supported') {
    let code: ManifestErrorCode = ManifestErrorCode.kindNotSupported;
    let text: string;
    if (found.status === 'unsupported') {
      text = `kind "${kindName}" (${apiVersion}) is not supported by Ciliate: ${found.kind.reason}`;
    } else if (found.status === 'version-not-served') {
      code = ManifestErrorCode.versionNotServed;
      const served = found.kind.versions
        .map((v) => apiVersionOf(found.kind.group, v.name))
        .join(', ');
      text = `no matches for kind "${kindName}" in version "${apiVersion}" (served: ${served})`;
    } else {
      text = `kind "${kindName}" in version "${apiVersion}" is not supported by Ciliate (not a kind it knows)`;
    }
    const issue: FieldIssue = {
      path: 'kind',
      type: 'Unsupported value',
      value: kindName,
      detail: text,
    };
    return { ok: false, problem: problem(code, where, id, [issue], [text]) };
  }

  const { kind, version } = found;
  const fieldValidation = options.fieldValidation ?? 'Strict';
  const warnings: string[] = [];
  if (version.deprecated)
    warnings.push(
      warningLine(
        where,
        id,
        version.deprecationWarning ?? `${apiVersion} ${kindName} is deprecated`,
      ),
    );

  let input: unknown = value;
  let result = version.schema.safeParse(input);
  if (!result.success && fieldValidation !== 'Strict') {
    const unknown = result.error.issues.filter((i) => i.code === 'unrecognized_keys');
    if (unknown.length > 0) {
      if (fieldValidation === 'Warn') {
        for (const i of fieldIssuesFromZod(unknown, input))
          warnings.push(warningLine(where, id, formatFieldIssue(i)));
      }
      input = structuredClone(value);
      stripUnknown(input, unknown);
      result = version.schema.safeParse(input);
    }
  }
  if (!result.success) {
    const issues = fieldIssuesFromZod(result.error.issues, input);
    return {
      ok: false,
      problem: problem(ManifestErrorCode.invalid, where, id, issues, issues.map(formatFieldIssue)),
    };
  }
  const obj = result.data as KubeObject;
  placeNamespace(obj, kind, options.defaultNamespace ?? 'default');
  (kind.applyDefaults as ((o: KubeObject) => void) | undefined)?.(obj);
  return { ok: true, object: obj as ResourceObject, warnings };
}

// ---------------------------------------------------------------------------------------------
// Streams of documents

function expandList(
  value: unknown,
  where: ManifestLocation,
): { items: { value: unknown; where: ManifestLocation }[]; problem?: ManifestProblem } {
  if (!isPlainObject(value) || typeof value.kind !== 'string' || !value.kind.endsWith('List')) {
    return { items: [{ value, where }] };
  }
  const listKind = value.kind;
  if (
    listKind !== 'List' &&
    lookupKind(String(value.apiVersion), listKind.slice(0, -4)).status === 'unknown'
  ) {
    return { items: [{ value, where }] };
  }
  if (!Array.isArray(value.items)) {
    const issue: FieldIssue = {
      path: 'items',
      type: 'Required value',
      detail: 'a List needs an items array',
    };
    return {
      items: [],
      problem: problem(
        ManifestErrorCode.invalid,
        where,
        { kind: listKind },
        [issue],
        [formatFieldIssue(issue)],
      ),
    };
  }
  const itemKind = listKind === 'List' ? undefined : listKind.slice(0, -4);
  return {
    items: value.items.map((item, i) => {
      // Typed lists from the API server omit apiVersion/kind on their items.
      let v: unknown = item;
      if (itemKind !== undefined && isPlainObject(item)) {
        v = { apiVersion: value.apiVersion, kind: itemKind, ...item };
      }
      return { value: v, where: { ...where, item: i } };
    }),
  };
}

/** JavaScript would turn a `__proto__` key into a prototype change and drop it silently. */
function findProtoKey(doc: YAML.Document.Parsed): number | undefined {
  let at: number | undefined;
  YAML.visit(doc, {
    Pair(_, pair) {
      if (YAML.isScalar(pair.key) && pair.key.value === '__proto__') {
        at = pair.key.range?.[0] ?? 0;
        return YAML.visit.BREAK;
      }
      return undefined;
    },
  });
  return at;
}

/**
 * Parses a stream of YAML/JSON documents into validated objects. Returns every problem (syntax,
 * unsupported kinds, invalid fields) with its document, object and field path; valid documents
 * are returned too, in order. Never throws.
 */
export function parseManifests(
  text: string,
  source: string = DEFAULT_SOURCE,
  options: ParseOptions = {},
): ParseResult {
  const objects: ResourceObject[] = [];
  const errors: ManifestProblem[] = [];
  const warnings: string[] = [];
  const lineCounter = new LineCounter();
  let docs: YAML.Document.Parsed[];
  try {
    docs = YAML.parseAllDocuments(text, {
      lineCounter,
      merge: true,
      uniqueKeys: true,
      prettyErrors: false,
    }) as YAML.Document.Parsed[];
    if (!Array.isArray(docs)) docs = [docs];
  } catch (e) {
    const where = { source, document: 1 };
    const detail = e instanceof Error ? e.message : String(e);
    errors.push(problem(ManifestErrorCode.syntax, where, {}, [], [detail], 'parsing'));
    return { ok: false, objects, errors, warnings };
  }

  let n = 0;
  for (const doc of docs) {
    const startOffset = doc.contents?.range?.[0] ?? doc.range[0];
    const line = lineCounter.linePos(startOffset).line;
    if (doc.errors.length > 0) {
      n++;
      for (const err of doc.errors) {
        const pos = lineCounter.linePos(err.pos[0]);
        errors.push(
          problem(
            ManifestErrorCode.syntax,
            { source, document: n, line: pos.line },
            {},
            [],
            [err.message],
            'parsing',
            pos.col,
          ),
        );
      }
      continue;
    }
    const protoKey = findProtoKey(doc);
    if (protoKey !== undefined) {
      n++;
      const pos = lineCounter.linePos(protoKey);
      errors.push(
        problem(
          ManifestErrorCode.syntax,
          { source, document: n, line: pos.line },
          {},
          [],
          ['the key "__proto__" is not allowed'],
          'parsing',
          pos.col,
        ),
      );
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      n++;
      const detail = e instanceof Error ? e.message : String(e);
      errors.push(
        problem(
          ManifestErrorCode.syntax,
          { source, document: n, line },
          {},
          [],
          [detail],
          'parsing',
        ),
      );
      continue;
    }
    // Empty documents (nothing, a comment, an explicit null) are skipped and not counted, like kubectl.
    if (value === null || value === undefined) continue;
    n++;
    const where: ManifestLocation = { source, document: n, line };
    const expanded = expandList(value, where);
    if (expanded.problem) errors.push(expanded.problem);
    for (const item of expanded.items) {
      const r = validateObject(item.value, { ...options, where: item.where });
      if (r.ok) {
        objects.push(r.object);
        warnings.push(...r.warnings);
      } else {
        errors.push(r.problem);
      }
    }
  }
  return errors.length === 0
    ? { ok: true, objects, warnings }
    : { ok: false, objects, errors, warnings };
}

/** parseManifests for all-or-nothing callers: the objects, or a ManifestError with every problem. */
export function loadManifests(
  text: string,
  source?: string,
  options?: ParseOptions,
): ResourceObject[] {
  const r = parseManifests(text, source, options);
  if (!r.ok) throw new ManifestError(r.errors);
  return r.objects;
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Renders objects as a multi-document YAML stream. Strings that YAML 1.1 (kubectl) would read as
 * something else (`yes`, `on`, `0755`, `1:20`, dates) are quoted, so the file means the same to
 * kubectl and to parseManifests.
 */
export function toYaml(objects: KubeObject | readonly KubeObject[]): string {
  const list = Array.isArray(objects)
    ? (objects as readonly KubeObject[])
    : [objects as KubeObject];
  return list.map((o) => YAML.stringify(o, { version: '1.1', lineWidth: 0 })).join('---\n');
}

/** One object as JSON, several as a `kind: List` (what `kubectl get -o json` prints). */
export function toJson(objects: KubeObject | readonly KubeObject[]): string {
  const value = Array.isArray(objects)
    ? { apiVersion: 'v1', kind: 'List', items: objects, metadata: { resourceVersion: '' } }
    : objects;
  return JSON.stringify(value, null, 2) + '\n';
}
