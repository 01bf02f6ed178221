// Label selectors with Kubernetes' semantics (metav1.LabelSelector) extended by Cilium's label
// sources. A selector key may name a source (`k8s:app`, `reserved:host`); without one, or with
// `any:`, it matches a label of that key from any source. A label map's keys may carry sources
// too; a key without one is of source `unspec`.
//
// Semantics, per requirement (all requirements are ANDed; an empty selector matches everything):
//   In(S)         some label with a matching key has a value in S
//   NotIn(S)      no label with a matching key has a value in S (true when the key is absent)
//   Exists        some label with a matching key exists
//   DoesNotExist  no label with a matching key exists
//   matchLabels   k: v is In(k, [v])
// With one label per key this is exactly Kubernetes; the "some/no" wording only decides what a key
// present under several sources means, and keeps NotIn the negation of In. A plain Kubernetes
// selector over a plain label map (LB-IPAM's serviceSelector, a nodeSelector) is the special case
// where no key names a source. Syntax checks (qualified names, label values) are the resource
// side's: they need Kubernetes' validation rules, not the vocabulary.

import { LabelSource, parseSourcedKey, type Label, type SourcedKey } from './labels.js';

export const SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
export type SelectorOperator = (typeof SELECTOR_OPERATORS)[number];

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  readonly values?: readonly string[] | undefined;
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>> | undefined;
  readonly matchExpressions?: readonly LabelSelectorRequirement[] | undefined;
}

/** Labels to match against: a map (keys optionally `source:key`) or explicit labels. */
export type LabelsInput = Readonly<Record<string, string>> | readonly Label[];

export type LabelMatcher = (labels: LabelsInput) => boolean;

/** Groups labels by bare key for matching: key -> [source, value][]. */
type LabelIndex = Map<string, [string, string][]>;

function indexLabels(labels: LabelsInput): LabelIndex {
  const idx: LabelIndex = new Map();
  const add = (source: string, key: string, value: string): void => {
    const list = idx.get(key);
    if (list) list.push([source, value]);
    else idx.set(key, [[source, value]]);
  };
  if (Array.isArray(labels)) {
    for (const l of labels as readonly Label[]) add(l.source, l.key, l.value);
  } else {
    for (const [k, v] of Object.entries(labels as Readonly<Record<string, string>>)) {
      const { source, key } = parseSourcedKey(k, LabelSource.unspec);
      add(source, key, v);
    }
  }
  return idx;
}

function valuesFor(idx: LabelIndex, sel: SourcedKey): string[] {
  const entries = idx.get(sel.key);
  if (!entries) return [];
  const out: string[] = [];
  for (const [source, value] of entries) {
    if (sel.source === LabelSource.any || sel.source === source) out.push(value);
  }
  return out;
}

type CompiledRequirement = (idx: LabelIndex) => boolean;

function compileRequirement(
  key: string,
  operator: SelectorOperator,
  values: readonly string[],
): CompiledRequirement {
  const sel = parseSourcedKey(key, LabelSource.any);
  const set = new Set(values);
  switch (operator) {
    case 'In':
      return (idx) => valuesFor(idx, sel).some((v) => set.has(v));
    case 'NotIn':
      return (idx) => !valuesFor(idx, sel).some((v) => set.has(v));
    case 'Exists':
      return (idx) => valuesFor(idx, sel).length > 0;
    case 'DoesNotExist':
      return (idx) => valuesFor(idx, sel).length === 0;
  }
}

/**
 * Compiles a selector once for matching many label sets. Throws on an operator outside the four
 * Kubernetes defines (a validated selector never has one).
 */
export function compileSelector(selector: LabelSelector): LabelMatcher {
  const reqs: CompiledRequirement[] = [];
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    reqs.push(compileRequirement(k, 'In', [v]));
  }
  for (const e of selector.matchExpressions ?? []) {
    if (!(SELECTOR_OPERATORS as readonly string[]).includes(e.operator)) {
      throw new TypeError(
        `label selector operator "${String(e.operator)}" is not one of ${SELECTOR_OPERATORS.join(', ')}`,
      );
    }
    reqs.push(compileRequirement(e.key, e.operator, e.values ?? []));
  }
  if (reqs.length === 0) return () => true;
  return (labels) => {
    const idx = indexLabels(labels);
    return reqs.every((r) => r(idx));
  };
}

/** Whether `labels` satisfy `selector` (see the semantics at the top of this file). */
export function selectorMatches(selector: LabelSelector, labels: LabelsInput): boolean {
  return compileSelector(selector)(labels);
}

/** Whether the selector selects everything (no requirements at all). */
export function selectorIsEmpty(selector: LabelSelector): boolean {
  return (
    Object.keys(selector.matchLabels ?? {}).length === 0 &&
    (selector.matchExpressions ?? []).length === 0
  );
}

/** Kubernetes' string form (`app=web,tier in (a,b),!legacy`), requirements sorted by key, then text. */
export function selectorToString(selector: LabelSelector): string {
  const parts: [string, string][] = [];
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) parts.push([k, `${k}=${v}`]);
  for (const e of selector.matchExpressions ?? []) {
    const vals = [...(e.values ?? [])].sort().join(',');
    switch (e.operator) {
      case 'In':
        parts.push([e.key, `${e.key} in (${vals})`]);
        break;
      case 'NotIn':
        parts.push([e.key, `${e.key} notin (${vals})`]);
        break;
      case 'Exists':
        parts.push([e.key, e.key]);
        break;
      case 'DoesNotExist':
        parts.push([e.key, `!${e.key}`]);
        break;
    }
  }
  const cmp = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);
  parts.sort((a, b) => cmp(a[0], b[0]) || cmp(a[1], b[1]));
  return parts.map((p) => p[1]).join(',');
}
