// Cilium's label model, shared by every side that reads or writes labels: the identity service
// derives a pod's label set and keys identities by it, the resource side reads selectors out of
// CiliumNetworkPolicy and friends, and policy matches the one against the other. One model on
// both sides is what makes a selector written by a user select the identity the service made.
//
// A label is `source:key=value` (Cilium's pkg/labels): the source is whatever precedes the first
// ':', `$x` is shorthand for `reserved:x`, and a label without a source is `unspec`. A label set
// holds one label per key and is keyed in the KV store by Cilium's sorted form
// `source:key=value;...`. Characters that would make that form ambiguous are refused when a label
// is built or parsed, so "distinct sets never share a key" holds by construction.
import { CiliateError } from './errors.js';

export const LabelSource = {
  /** Selector-only: matches a label of any source. */
  any: 'any',
  /** A label whose source was not given. */
  unspec: 'unspec',
  k8s: 'k8s',
  reserved: 'reserved',
  cidr: 'cidr',
  fqdn: 'fqdn',
  cidrgroup: 'cidrgroup',
  container: 'container',
  cni: 'cni',
  node: 'node',
  /** Labels the agent generates. */
  gen: 'gen',
  directory: 'directory',
  kvstore: 'kvstore',
} as const;
export type LabelSource = (typeof LabelSource)[keyof typeof LabelSource];

/** One label with its source made explicit. */
export interface Label {
  readonly source: string;
  readonly key: string;
  readonly value: string;
}

/** A key as written in a selector or a label map, split into source and key. */
export interface SourcedKey {
  readonly source: string;
  readonly key: string;
}

/**
 * Splits `source:key` (or `$key` for reserved). `defaultSource` applies when no source is written:
 * `unspec` for labels, `any` for selector keys.
 */
export function parseSourcedKey(text: string, defaultSource: string): SourcedKey {
  if (text.startsWith('$')) return { source: LabelSource.reserved, key: text.slice(1) };
  const i = text.indexOf(':');
  if (i < 0) return { source: defaultSource, key: text };
  return { source: text.slice(0, i), key: text.slice(i + 1) };
}

function invalidLabel(field: string, value: unknown, reason: string): CiliateError {
  return new CiliateError('bad_request', `${field}: Invalid value: ${show(value)}: ${reason}`, {
    field,
  });
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

// A source ends at the first ':' and feeds a KV key, so it is kept to a plain token.
const SOURCE_RE = /^[a-z0-9][a-z0-9_.-]*$/i;

interface LabelProblem {
  readonly part: 'source' | 'key' | 'value';
  readonly reason: string;
}

function labelProblem(source: unknown, key: unknown, value: unknown): LabelProblem | undefined {
  if (typeof source !== 'string' || !SOURCE_RE.test(source)) {
    return {
      part: 'source',
      reason: 'must be a non-empty token of letters, digits, "-", "_" and "."',
    };
  }
  if (typeof key !== 'string' || key.length === 0) {
    return { part: 'key', reason: 'must not be empty' };
  }
  // '=' ends the key and ';' ends the label in the KV encoding.
  if (key.includes('=') || key.includes(';')) {
    return { part: 'key', reason: 'must not contain "=" or ";"' };
  }
  if (typeof value !== 'string' || value.includes(';')) {
    return { part: 'value', reason: 'must be a string without ";"' };
  }
  return undefined;
}

function checkLabel(source: string, key: string, value: string, field: string): void {
  const p = labelProblem(source, key, value);
  if (p === undefined) return;
  const bad = p.part === 'source' ? source : p.part === 'key' ? key : value;
  throw invalidLabel(`${field}.${p.part}`, bad, p.reason);
}

/** Builds a label after checking that it can be encoded unambiguously. */
export function label(source: string, key: string, value = '', field = 'label'): Label {
  checkLabel(source, key, value, field);
  return { source, key, value };
}

/**
 * Parses `source:key=value`, `source:key`, `key=value` (source `unspec`) and the short form
 * `$host` (= `reserved:host`), as Cilium's ParseLabel does; `reserved:=host`, how some older
 * Cilium dumps write reserved labels, is read as `reserved:host`. Throws (bad_request, naming
 * `field`) on a label the KV encoding could not hold.
 */
export function parseLabel(text: string, field = 'label'): Label {
  if (typeof text !== 'string' || text.length === 0) {
    throw invalidLabel(field, text, 'must be a non-empty "source:key=value" string');
  }
  const { source, key: rest } = parseSourcedKey(text, LabelSource.unspec);
  const eq = rest.indexOf('=');
  let key: string;
  let value: string;
  if (eq < 0) {
    key = rest;
    value = '';
  } else if (eq === 0 && source === LabelSource.reserved) {
    key = rest.slice(1);
    value = '';
  } else {
    key = rest.slice(0, eq);
    value = rest.slice(eq + 1);
  }
  const p = labelProblem(source, key, value);
  if (p !== undefined) throw invalidLabel(field, text, `${p.part} ${p.reason}`);
  return { source, key, value };
}

/** `source:key=value`, or `source:key` when the value is empty (Cilium's String()). */
export function formatLabel(l: Label): string {
  return l.value.length === 0 ? `${l.source}:${l.key}` : `${l.source}:${l.key}=${l.value}`;
}

/** Labels from `source:key=value` strings, as a CLI or a test writes them; a normalized set. */
export function labelsFromStrings(texts: Iterable<string>, field = 'labels'): Label[] {
  let i = 0;
  const out: Label[] = [];
  for (const t of texts) out.push(parseLabel(t, `${field}[${i++}]`));
  return normalizeLabelSet(out, field);
}

/**
 * Turns a label map into labels. Keys may carry a source (`k8s:app`); keys without one get
 * `defaultSource` (`unspec` unless the caller knows better, e.g. `k8s` for pod labels).
 */
export function labelsFromMap(
  map: Readonly<Record<string, string>>,
  defaultSource: string = LabelSource.unspec,
): Label[] {
  const out: Label[] = [];
  for (const [k, value] of Object.entries(map)) {
    const { source, key } = parseSourcedKey(k, defaultSource);
    out.push({ source, key, value });
  }
  return out;
}

/** The reverse of labelsFromMap: keys rendered `source:key` (CiliumIdentity's security-labels). */
export function labelsToMap(labels: readonly Label[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels) out[`${l.source}:${l.key}`] = l.value;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Label sets and their KV form

/** One label as it appears inside a KV label-set key: always `source:key=value;`. */
export function formatLabelForKv(l: Label): string {
  return `${l.source}:${l.key}=${l.value};`;
}

function compareByKey(a: Label, b: Label): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/**
 * Canonical label set: sorted by key, one label per key. Exact duplicates are merged; two
 * different labels with the same key are refused, since Cilium keeps one label per key and the
 * winner would otherwise depend on input order.
 */
export function normalizeLabelSet(labels: Iterable<Label>, field = 'labels'): Label[] {
  const byKey = new Map<string, Label>();
  let i = 0;
  for (const l of labels) {
    checkLabel(l.source, l.key, l.value, `${field}[${i}]`);
    const prev = byKey.get(l.key);
    if (prev === undefined) {
      byKey.set(l.key, { source: l.source, key: l.key, value: l.value });
    } else if (prev.source !== l.source || prev.value !== l.value) {
      throw invalidLabel(
        `${field}[${i}]`,
        formatLabel(l),
        `conflicts with ${JSON.stringify(formatLabel(prev))}: a label set holds one label per key`,
      );
    }
    i++;
  }
  return [...byKey.values()].sort(compareByKey);
}

/**
 * The KV encoding of a label set (Cilium's SortedList): e.g.
 * `k8s:app=web;k8s:io.kubernetes.pod.namespace=default;`. Equal sets give equal keys whatever
 * the input order; unequal sets never share a key.
 */
export function labelSetKey(labels: Iterable<Label>, field = 'labels'): string {
  // join() gives a flat string; `+=` would leave a rope that costs several times the memory
  // for as long as the key is kept (and every identity keeps one).
  return normalizeLabelSet(labels, field).map(formatLabelForKv).join('');
}

/** Inverse of labelSetKey; refuses anything labelSetKey could not have produced. */
export function parseLabelSetKey(key: string, field = 'labels'): Label[] {
  if (typeof key !== 'string') throw invalidLabel(field, key, 'must be a string');
  if (key.length === 0) return [];
  if (!key.endsWith(';')) throw invalidLabel(field, key, 'every label must end with ";"');
  const parts = key.slice(0, -1).split(';');
  const labels: Label[] = new Array<Label>(parts.length);
  let prevKey: string | undefined;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const colon = p.indexOf(':');
    const eq = p.indexOf('=', colon + 1);
    if (colon <= 0 || eq < 0) throw invalidLabel(`${field}[${i}]`, p, 'must be "source:key=value"');
    const l = label(p.slice(0, colon), p.slice(colon + 1, eq), p.slice(eq + 1), `${field}[${i}]`);
    // Split at the first ':' and the first '=' after it, with those characters refused where
    // they would be ambiguous, a part re-renders to itself; so sorted unique keys are all it
    // takes for the text to be exactly what labelSetKey gives.
    if (prevKey !== undefined && !(prevKey < l.key)) {
      throw invalidLabel(field, key, 'labels must be sorted by key, one per key');
    }
    prevKey = l.key;
    labels[i] = l;
  }
  return labels;
}
