// Labels as Cilium writes them (`source:key=value`) and the canonical encoding of a label set
// that names an identity in the KV store.
//
// Cilium keys a label set by label key (one label per key) and renders it sorted by key, each
// label as `source:key=value;`. The same rule is kept here so that identity keys are
// byte-identical to what a Cilium kvstore holds. Characters that would make that encoding
// ambiguous are refused up front, which is what makes "distinct sets never share a key" hold by
// construction rather than by luck.
import { createHash } from 'node:crypto';

import { invalid } from './errors.js';

export interface Label {
  readonly source: string;
  readonly key: string;
  readonly value: string;
}

export const LABEL_SOURCES = {
  unspec: 'unspec',
  any: 'any',
  k8s: 'k8s',
  reserved: 'reserved',
  cidr: 'cidr',
  fqdn: 'fqdn',
  cidrgroup: 'cidrgroup',
  container: 'container',
  cni: 'cni',
  node: 'node',
  generated: 'gen',
  directory: 'directory',
} as const;

// A source ends at the first ':' and feeds a KV key, so it is kept to a plain token.
const SOURCE_RE = /^[a-z0-9][a-z0-9_.-]*$/i;

/** Builds a label after checking that it can be encoded unambiguously. */
export function label(source: string, key: string, value = '', field = 'label'): Label {
  checkLabel(source, key, value, field);
  return { source, key, value };
}

interface LabelProblem {
  part: 'source' | 'key' | 'value';
  reason: string;
}

function labelProblem(source: unknown, key: unknown, value: unknown): LabelProblem | undefined {
  if (typeof source !== 'string' || !SOURCE_RE.test(source)) {
    return {
      part: 'source',
      reason: 'must be a non-empty token of letters, digits, "-", "_" and "."',
    };
  }
  if (typeof key !== 'string' || key.length === 0)
    return { part: 'key', reason: 'must not be empty' };
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
  throw invalid('INVALID_LABEL', `${field}.${p.part}`, bad, p.reason);
}

/**
 * Parses `source:key=value`, `source:key`, `key=value` (source `unspec`) and the short form
 * `$host` (= `reserved:host`), as Cilium's ParseLabel does.
 */
export function parseLabel(text: string, field = 'label'): Label {
  if (typeof text !== 'string' || text.length === 0) {
    throw invalid('INVALID_LABEL', field, text, 'must be a non-empty "source:key=value" string');
  }
  let source: string;
  let rest: string;
  if (text.startsWith('$')) {
    source = LABEL_SOURCES.reserved;
    rest = text.slice(1);
  } else {
    const colon = text.indexOf(':');
    if (colon < 0) {
      source = LABEL_SOURCES.unspec;
      rest = text;
    } else {
      source = text.slice(0, colon);
      rest = text.slice(colon + 1);
    }
  }
  const eq = rest.indexOf('=');
  let key: string;
  let value: string;
  if (eq < 0) {
    key = rest;
    value = '';
  } else if (eq === 0 && source === LABEL_SOURCES.reserved) {
    // `reserved:=host` is how Cilium writes reserved labels in some older dumps.
    key = rest.slice(1);
    value = '';
  } else {
    key = rest.slice(0, eq);
    value = rest.slice(eq + 1);
  }
  const p = labelProblem(source, key, value);
  if (p !== undefined) throw invalid('INVALID_LABEL', field, text, `${p.part} ${p.reason}`);
  return { source, key, value };
}

/** `source:key=value`, or `source:key` when the value is empty (Cilium's String()). */
export function formatLabel(l: Label): string {
  return l.value.length === 0 ? `${l.source}:${l.key}` : `${l.source}:${l.key}=${l.value}`;
}

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
      throw invalid(
        'INVALID_LABEL_SET',
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
  const key = normalizeLabelSet(labels, field).map(formatLabelForKv).join('');
  // Valid by construction: the allocation that follows need not parse it again.
  remember(recentValid, key, true);
  return key;
}

/** Inverse of labelSetKey; refuses anything labelSetKey could not have produced. */
export function parseLabelSetKey(key: string, field = 'labels'): Label[] {
  if (typeof key !== 'string') {
    throw invalid('INVALID_LABEL_SET', field, key, 'must be a string');
  }
  if (key.length === 0) return [];
  if (!key.endsWith(';')) {
    throw invalid('INVALID_LABEL_SET', field, key, 'every label must end with ";"');
  }
  const parts = key.slice(0, -1).split(';');
  const labels: Label[] = new Array<Label>(parts.length);
  let prevKey: string | undefined;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const colon = p.indexOf(':');
    const eq = p.indexOf('=', colon + 1);
    if (colon <= 0 || eq < 0) {
      throw invalid('INVALID_LABEL_SET', `${field}[${i}]`, p, 'must be "source:key=value"');
    }
    const l = label(p.slice(0, colon), p.slice(colon + 1, eq), p.slice(eq + 1), `${field}[${i}]`);
    // Split at the first ':' and the first '=' after it, with those characters refused where
    // they would be ambiguous, a part re-renders to itself; so sorted unique keys are all it
    // takes for the text to be exactly what labelSetKey gives.
    if (prevKey !== undefined && !(prevKey < l.key)) {
      throw invalid('INVALID_LABEL_SET', field, key, 'labels must be sorted by key, one per key');
    }
    prevKey = l.key;
    labels[i] = l;
  }
  return labels;
}

/**
 * SHA-256 (hex) of a label-set key. KV keys cannot hold the label text (':' and ';' are not
 * allowed in NATS KV keys, and values are unbounded), so label sets are addressed by this hash.
 */
export function labelSetHash(setKey: string): string {
  let hash = recentHashes.get(setKey);
  if (hash === undefined) {
    hash = createHash('sha256').update(setKey, 'utf8').digest('hex');
    remember(recentHashes, setKey, hash);
  }
  return hash;
}

/**
 * Checks that `key` is a label-set key exactly as labelSetKey() writes it (parseLabelSetKey()
 * without building the labels). One label set passes through here several times in a row (the
 * request, the allocation, the mirror's two records), so recent valid keys are remembered.
 */
export function checkLabelSetKey(key: string, field = 'labels'): void {
  if (recentValid.has(key)) return;
  parseLabelSetKey(key, field);
  remember(recentValid, key, true);
}

// Small memos of pure functions: a label set is seen a few times within moments, rarely later.
const MEMO_SIZE = 4096;
const recentHashes = new Map<string, string>();
const recentValid = new Map<string, true>();
function remember<V>(memo: Map<string, V>, key: string, value: V): void {
  if (memo.size >= MEMO_SIZE) memo.clear();
  memo.set(key, value);
}

/** Label sets from `source:key=value` strings, as a CLI or a test writes them. */
export function labelsFromStrings(texts: Iterable<string>, field = 'labels'): Label[] {
  let i = 0;
  const out: Label[] = [];
  for (const t of texts) out.push(parseLabel(t, `${field}[${i++}]`));
  return normalizeLabelSet(out, field);
}
