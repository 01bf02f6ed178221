// Cilium labels carry a source: `k8s:app=web`, `reserved:host`, `cidr:10.0.0.0/8`. A key in a
// selector may name a source too; `any:` (or no source at all) matches a label of every source.
// Written after pkg/labels in Cilium: the source is whatever precedes the first ':', and `$x` is
// shorthand for `reserved:x`.

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

/** A key as written in a selector or label map, split into source and key. */
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

/** Parses `source:key=value`, `source:key`, `key=value`, `$host`; no source means `unspec`. */
export function parseLabel(text: string): Label {
  const { source, key: rest } = parseSourcedKey(text, LabelSource.unspec);
  const eq = rest.indexOf('=');
  if (eq < 0) return { source, key: rest, value: '' };
  if (eq === 0 && source === LabelSource.reserved) return { source, key: rest.slice(1), value: '' };
  return { source, key: rest.slice(0, eq), value: rest.slice(eq + 1) };
}

/** Renders `source:key=value` (or `source:key` when the value is empty), Cilium's string form. */
export function formatLabel(label: Label): string {
  const base = `${label.source}:${label.key}`;
  return label.value === '' ? base : `${base}=${label.value}`;
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

/** The reverse of labelsFromMap: keys rendered `source:key`. */
export function labelsToMap(labels: readonly Label[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels) out[`${l.source}:${l.key}`] = l.value;
  return out;
}
