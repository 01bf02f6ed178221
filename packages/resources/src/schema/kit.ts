// Building blocks for the resource schemas: zod types that carry Kubernetes' field rules, and the
// translation of zod issues into kubectl-style field errors.
//
// Conventions the CRD generator relies on (see crd/structural.ts):
// - objects are z.strictObject (unknown fields rejected, like a structural schema with strict
//   field validation) or z.looseObject where unknown fields are kept (status, opaque blocks);
// - semantic checks are refinements: they run at parse time and never reach the OpenAPI schema;
// - OpenAPI-only facts (format, int-or-string, oneOf-required) travel as .meta().

import { z } from 'zod';

import {
  formatBadValue,
  joinPath,
  pathOf,
  type FieldErrorType,
  type FieldIssue,
} from '../errors.js';
import { validateSelector, type SelectorValidationOptions } from '../selector.js';
import {
  cidrError,
  dns1123Label,
  dns1123Subdomain,
  dns1035Label,
  ianaServiceName,
  ipError,
  labelValue,
  qualifiedName,
} from '../validation.js';

// ---------------------------------------------------------------------------------------------
// Reporting

interface CustomParams {
  readonly k8s: FieldErrorType;
  readonly value?: unknown;
  readonly supported?: readonly string[];
  /** Path below the refined value, already in kubectl form (`matchLabels`, `[0].cidr`). */
  readonly sub?: string;
  /** The reason; kept here because zod replaces an empty message with its own default. */
  readonly detail?: string;
}

export type Ctx = z.RefinementCtx;

/** Reports one field issue from a refinement; `sub` is relative to the refined value. */
export function report(
  ctx: Ctx,
  type: FieldErrorType,
  sub: string,
  detail: string,
  value?: unknown,
  supported?: readonly string[],
): void {
  const params: CustomParams = {
    k8s: type,
    value,
    sub,
    detail,
    ...(supported ? { supported } : {}),
  };
  ctx.addIssue({ code: 'custom', message: detail || type, params, input: value });
}

/** Reports issues produced by a plain validator whose paths are relative to the refined value. */
export function reportAll(ctx: Ctx, issues: readonly FieldIssue[]): void {
  for (const i of issues) report(ctx, i.type, i.path, i.detail ?? '', i.value, i.supported);
}

function appendPath(base: string, sub: string): string {
  if (sub === '') return base;
  if (base === '') return sub;
  return sub.startsWith('[') ? `${base}${sub}` : `${base}.${sub}`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

const EXPECTED_NAMES: Record<string, string> = {
  int: 'integer',
  number: 'number',
  string: 'string',
  boolean: 'boolean',
  object: 'object',
  record: 'object',
  array: 'array',
};

/** Translates zod issues (with the input they came from) into field issues. */
export function fieldIssuesFromZod(
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
): FieldIssue[] {
  const out: FieldIssue[] = [];
  // A value of the wrong type is reported once: semantic checks that stumbled over it are dropped.
  const badTypes = issues
    .filter((i) => i.code === 'invalid_type')
    .map((i) => pathOf(i.path.filter((s): s is string | number => typeof s !== 'symbol')));
  const underBadType = (p: string): boolean =>
    badTypes.some((b) => p === b || p.startsWith(`${b}.`) || p.startsWith(`${b}[`));
  for (const issue of issues) {
    const segs = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
    const path = pathOf(segs);
    if (issue.code === 'custom') {
      const p = issue.params as CustomParams | undefined;
      if (underBadType(appendPath(path, p?.sub ?? ''))) continue;
    }
    switch (issue.code) {
      case 'custom': {
        const p = issue.params as CustomParams | undefined;
        if (p?.k8s) {
          out.push({
            path: appendPath(path, p.sub ?? ''),
            type: p.k8s,
            value: p.value,
            ...(p.detail ? { detail: p.detail } : {}),
            ...(p.supported ? { supported: p.supported } : {}),
          });
        } else {
          out.push({
            path,
            type: 'Invalid value',
            value: valueAt(input, issue.path),
            detail: issue.message,
          });
        }
        break;
      }
      case 'unrecognized_keys':
        for (const k of issue.keys) out.push({ path: joinPath(path, k), type: 'Unknown field' });
        break;
      case 'invalid_type': {
        const actual = valueAt(input, issue.path);
        if (actual === undefined) {
          out.push({ path, type: 'Required value' });
        } else {
          const expected = EXPECTED_NAMES[issue.expected] ?? issue.expected;
          const hint =
            expected === 'string' && ['integer', 'number', 'boolean'].includes(typeName(actual))
              ? ' (quote the value in YAML)'
              : '';
          out.push({
            path,
            type: 'Invalid value',
            value: actual,
            detail: `must be of type ${expected}, not ${typeName(actual)}${hint}`,
          });
        }
        break;
      }
      case 'invalid_value': {
        const actual = valueAt(input, issue.path);
        out.push({
          path,
          type: 'Unsupported value',
          value: actual,
          supported: issue.values.map((v) => String(v)),
        });
        break;
      }
      case 'too_small':
      case 'too_big': {
        const actual = valueAt(input, issue.path);
        const small = issue.code === 'too_small';
        const bound = small ? issue.minimum : issue.maximum;
        if (issue.origin === 'array' || issue.origin === 'set') {
          const n = Array.isArray(actual) ? actual.length : 0;
          out.push(
            small
              ? {
                  path,
                  type: 'Invalid value',
                  value: n,
                  detail: `must have at least ${bound} items`,
                }
              : { path, type: 'Too many', value: n, detail: `must have at most ${bound} items` },
          );
        } else if (issue.origin === 'string') {
          out.push(
            small
              ? {
                  path,
                  type: 'Invalid value',
                  value: actual,
                  detail: `must be at least ${bound} characters long`,
                }
              : {
                  path,
                  type: 'Too long',
                  value: actual,
                  detail: `may not be more than ${bound} characters`,
                },
          );
        } else {
          out.push({
            path,
            type: 'Invalid value',
            value: actual,
            detail: small
              ? `must be greater than or equal to ${bound}`
              : `must be less than or equal to ${bound}`,
          });
        }
        break;
      }
      default: {
        const actual = valueAt(input, issue.path);
        const generic = issue.message.startsWith('Invalid input');
        out.push({
          path,
          type: 'Invalid value',
          value: actual,
          detail: generic ? `is not valid (${issue.message})` : issue.message,
        });
      }
    }
  }
  return out;
}

// Makes formatBadValue reachable for callers of this module that build messages by hand.
export { formatBadValue };

// ---------------------------------------------------------------------------------------------
// Scalars

/** Cross-field checks that run even when some fields already failed, so all errors come at once. */
export function crossCheck<T extends z.ZodType>(
  schema: T,
  fn: (value: z.output<T>, ctx: Ctx) => void,
): T {
  return schema.check(
    z.superRefine(
      (value: z.output<T>, ctx) => {
        // When the value is not even an object, its type error has been reported already.
        if (value === null || typeof value !== 'object') return;
        // Checks run even when fields failed (to report everything at once), so they may meet
        // values of the wrong shape. A check tripping over one is moot: the shape error is
        // reported. On a value without issues an exception is a bug and must surface.
        const hadIssues = ctx.issues.length > 0;
        try {
          fn(value, ctx);
        } catch (e) {
          if (!hadIssues) throw e;
        }
      },
      { when: () => true },
    ),
  );
}

export function int32(min?: number, max?: number): z.ZodInt {
  let s = z.int();
  s = s.min(min ?? -2147483648).max(max ?? 2147483647);
  return s.meta({ format: 'int32' });
}

export function int64(min?: number, max?: number): z.ZodInt {
  let s = z.int();
  if (min !== undefined) s = s.min(min);
  if (max !== undefined) s = s.max(max);
  return s.meta({ format: 'int64' });
}

/** A TCP/UDP/SCTP port number, 1-65535, with apimachinery's message. */
export function portNumber() {
  return z
    .int()
    .meta({ format: 'int32', minimum: 1, maximum: 65535 })
    .superRefine((v, ctx) => {
      if (v < 1 || v > 65535)
        report(ctx, 'Invalid value', '', 'must be between 1 and 65535, inclusive', v);
    });
}

/** IntOrString: an integer or a string (x-kubernetes-int-or-string in OpenAPI). */
export function intOrString() {
  return z
    .union([z.int(), z.string()], { error: 'must be an integer or a string' })
    .meta({ 'x-kubernetes-int-or-string': true });
}

function checkedString(check: (v: string) => string[]) {
  return z.string().superRefine((v, ctx) => {
    for (const d of check(v)) report(ctx, 'Invalid value', '', d, v);
  });
}

export const ipString = () => checkedString(ipError);
export const cidrString = () => checkedString(cidrError);
export const dnsLabelString = () => checkedString(dns1123Label);
export const dnsSubdomainString = () => checkedString(dns1123Subdomain);
export const dns1035String = () => checkedString(dns1035Label);
export const qualifiedNameString = () => checkedString(qualifiedName);
export const labelValueString = () => checkedString(labelValue);
export const ianaServiceNameString = () => checkedString(ianaServiceName);

/** A valid named port, or the decimal form of a port, as used by IntOrString ports. */
export function checkIntOrStringPort(ctx: Ctx, v: unknown, sub = '', allowZero = false): void {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65535) {
      report(
        ctx,
        'Invalid value',
        sub,
        `must be between ${allowZero ? 0 : 1} and 65535, inclusive`,
        v,
      );
    }
  } else if (typeof v === 'string') {
    for (const d of ianaServiceName(v)) report(ctx, 'Invalid value', sub, d, v);
  }
}

// ---------------------------------------------------------------------------------------------
// Maps

/** metadata.labels and similar: qualified-name keys, label-syntax values. */
export function labelMap() {
  return z.record(z.string(), z.string()).superRefine((m, ctx) => {
    for (const [k, v] of Object.entries(m)) {
      for (const d of qualifiedName(k)) report(ctx, 'Invalid value', '', d, k);
      for (const d of labelValue(v)) report(ctx, 'Invalid value', '', d, v);
    }
  });
}

const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;

export function annotationMap() {
  return z.record(z.string(), z.string()).superRefine((m, ctx) => {
    let size = 0;
    for (const [k, v] of Object.entries(m)) {
      for (const d of qualifiedName(k.toLowerCase())) report(ctx, 'Invalid value', '', d, k);
      size += k.length + v.length;
    }
    if (size > TOTAL_ANNOTATION_SIZE_LIMIT) {
      report(ctx, 'Too long', '', `must have at most ${TOTAL_ANNOTATION_SIZE_LIMIT} bytes`);
    }
  });
}

export function stringMap() {
  return z.record(z.string(), z.string());
}

// ---------------------------------------------------------------------------------------------
// Selectors

const selectorRequirement = z.strictObject({
  key: z.string(),
  operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
  values: z.array(z.string()).optional(),
});

/**
 * metav1.LabelSelector. With `sources`, keys may carry Cilium label sources (`k8s:app`,
 * `reserved:host`), as in CiliumNetworkPolicy endpoint and node selectors.
 */
export function labelSelector(options: SelectorValidationOptions) {
  return z
    .strictObject({
      matchLabels: stringMap().optional(),
      matchExpressions: z.array(selectorRequirement).optional(),
    })
    .meta({ 'x-kubernetes-map-type': 'atomic' })
    .superRefine((sel, ctx) => reportAll(ctx, validateSelector(sel, '', options)));
}

export const k8sSelector = () => labelSelector({ sources: false });
export const ciliumSelector = () => labelSelector({ sources: true });

// ---------------------------------------------------------------------------------------------
// Object metadata

export type NameRule = 'subdomain' | 'label' | 'dns1035' | 'numeric-identity';

function nameErrors(rule: NameRule, name: string): string[] {
  switch (rule) {
    case 'subdomain':
      return dns1123Subdomain(name);
    case 'label':
      return dns1123Label(name);
    case 'dns1035':
      return dns1035Label(name);
    case 'numeric-identity':
      return /^(0|[1-9][0-9]{0,9})$/.test(name) && Number(name) <= 0xffffffff
        ? []
        : ['must be the numeric security identity (a decimal number)'];
  }
}

const ownerReference = z.strictObject({
  apiVersion: z.string(),
  kind: z.string(),
  name: z.string(),
  uid: z.string(),
  controller: z.boolean().optional(),
  blockOwnerDeletion: z.boolean().optional(),
});

/**
 * ObjectMeta, its fields fixed like the API server's: a field it does not define is an error.
 * Server-populated fields (uid, resourceVersion, managedFields...) are accepted so that objects
 * read back from a cluster (`kubectl get -o yaml`) load unchanged.
 */
export function objectMeta(rule: NameRule) {
  return crossCheck(
    z.strictObject({
      name: z.string().optional(),
      generateName: z.string().optional(),
      namespace: z.string().optional(),
      selfLink: z.string().optional(),
      uid: z.string().optional(),
      resourceVersion: z.string().optional(),
      generation: z.int().optional(),
      creationTimestamp: z.string().nullable().optional(),
      deletionTimestamp: z.string().nullable().optional(),
      deletionGracePeriodSeconds: z.int().optional(),
      labels: labelMap().optional(),
      annotations: annotationMap().optional(),
      ownerReferences: z.array(ownerReference).optional(),
      finalizers: z.array(z.string()).optional(),
      managedFields: z.array(z.looseObject({})).optional(),
    }),
    (m, ctx) => {
      if (m.name === undefined || m.name === '') {
        report(
          ctx,
          'Required value',
          'name',
          m.generateName
            ? 'name is required (generateName needs an API server to pick a name)'
            : 'name is required',
        );
      } else if (typeof m.name === 'string') {
        for (const d of nameErrors(rule, m.name)) report(ctx, 'Invalid value', 'name', d, m.name);
      }
      if (typeof m.namespace === 'string' && m.namespace !== '') {
        for (const d of dns1123Label(m.namespace))
          report(ctx, 'Invalid value', 'namespace', d, m.namespace);
      }
    },
  );
}

export type ObjectMeta = z.output<ReturnType<typeof objectMeta>>;

// ---------------------------------------------------------------------------------------------
// Status pieces

/** metav1.Condition, as Cilium's CRDs and Service status use it. */
export const condition = z.looseObject({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: int64(0).optional(),
  lastTransitionTime: z.string(),
  reason: z.string(),
  message: z.string(),
});

export const conditions = () =>
  z
    .array(condition)
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });

/** A subtree whose content Ciliate keeps but does not interpret. */
export function opaque() {
  return z.unknown().meta({ 'x-kubernetes-preserve-unknown-fields': true });
}

/** Fails for duplicate values of `key` among list items (a list-map key, like `name`). */
export function uniqueBy<T>(
  items: readonly T[] | null | undefined,
  key: (item: T) => unknown,
  ctx: Ctx,
  sub: (index: number) => string,
): void {
  const seen = new Set<unknown>();
  (items ?? []).forEach((item, i) => {
    if (item === null || typeof item !== 'object') return;
    const k = key(item);
    if (k === undefined) return;
    if (seen.has(k)) report(ctx, 'Duplicate value', sub(i), '', k);
    seen.add(k);
  });
}
