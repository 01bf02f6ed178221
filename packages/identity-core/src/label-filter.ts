// Which labels are identity-relevant, with Cilium's semantics (pkg/labelsfilter):
//
// * A prefix is `[source:][!]regex`; the regex must match at the start of the label key, and
//   the length of that match is what counts. No source (or `any`) matches every source.
// * Without any user-configured inclusive prefix, every label counts unless an ignore
//   prefix matches it. Once one inclusive prefix is configured, only labels an inclusive
//   prefix matches count.
// * When both kinds match, the label counts if the longest inclusive match is longer than the
//   shortest ignore match: `{!foo, foo.bar}` keeps `foo.bar.baz` and drops `foo.qux`.
//
// Ignored labels are not dropped: they become information labels, kept on the endpoint but not
// part of the identity.
import { type Label } from '@ciliate/contracts';

import { invalid } from './errors.js';

export interface LabelPrefix {
  /** Label source to match, or '' for every source (Cilium's `any`). */
  readonly source: string;
  /** Regular expression matched at the start of the label key. */
  readonly prefix: string;
  /** true: labels matching are not identity-relevant. */
  readonly ignore: boolean;
}

/** Cilium's default list (newest upstream plus the entries the facts sheet records). */
export const DEFAULT_LABEL_PREFIXES: readonly string[] = [
  // Always identity-relevant.
  'reserved:.*',
  'io\\.kubernetes\\.pod\\.namespace',
  'io\\.cilium\\.k8s\\.namespace\\.labels',
  'app\\.kubernetes\\.io',
  'io\\.cilium\\.k8s\\.policy\\.cluster',
  // Noise: hashes, indexes and per-pod names that would give every pod its own identity.
  '!io\\.kubernetes',
  '!kubernetes\\.io',
  '!statefulset\\.kubernetes\\.io/pod-name',
  '!apps\\.kubernetes\\.io/pod-index',
  '!batch\\.kubernetes\\.io/job-completion-index',
  '!batch\\.kubernetes\\.io/controller-uid',
  '!.*beta\\.kubernetes\\.io',
  '!k8s\\.io',
  '!pod-template-generation',
  '!pod-template-hash',
  '!controller-revision-hash',
  '!annotation.*',
  '!controller-uid',
  '!etcd_node',
];

/** Parses one `[source:][!]regex` entry. */
export function parseLabelPrefix(text: string, field = 'labels'): LabelPrefix {
  if (typeof text !== 'string' || text.trim() !== text || text.length === 0) {
    throw invalid(
      'INVALID_LABEL_FILTER',
      field,
      text,
      'must be a non-empty "[source:][!]regex" entry without surrounding spaces',
    );
  }
  const colon = text.indexOf(':');
  let source = colon >= 0 ? text.slice(0, colon) : '';
  let prefix = colon >= 0 ? text.slice(colon + 1) : text;
  if (source === 'any') source = '';
  let ignore = false;
  if (prefix.startsWith('!')) {
    ignore = true;
    prefix = prefix.slice(1);
  }
  if (prefix.length === 0) {
    throw invalid('INVALID_LABEL_FILTER', field, text, 'the prefix after the source is empty');
  }
  compilePrefix(prefix, field, text);
  return { source, prefix, ignore };
}

function compilePrefix(prefix: string, field: string, shown: unknown): RegExp {
  try {
    return new RegExp(`^(?:${prefix})`);
  } catch (err) {
    throw invalid(
      'INVALID_LABEL_FILTER',
      field,
      shown,
      `not a valid regular expression (${(err as Error).message})`,
    );
  }
}

/** Cilium's label prefix file (`--label-prefix-file`). */
export interface LabelPrefixFile {
  readonly version: 1;
  readonly 'valid-prefixes': readonly {
    readonly prefix: string;
    readonly source: string;
    /** Cilium's JSON name for ignore. */
    readonly invert?: boolean;
    readonly ignore?: boolean;
  }[];
}

export interface LabelFilterConfig {
  /**
   * Cilium's `labels` setting: entries appended to the base list, as a space-separated string or
   * a list. One inclusive entry switches the filter to "only what is included counts".
   */
  readonly prefixes?: string | readonly string[];
  /** Replaces the default base list, as Cilium's label prefix file does. */
  readonly prefixFile?: LabelPrefixFile;
}

interface CompiledPrefix extends LabelPrefix {
  readonly re: RegExp;
}

export class LabelFilter {
  readonly prefixes: readonly LabelPrefix[];
  /** An inclusive prefix was configured: only included labels count. */
  readonly inclusive: boolean;
  readonly #compiled: readonly CompiledPrefix[];
  // Label keys repeat across pods (app, tier, version...): remember verdicts, boundedly.
  readonly #memo = new Map<string, boolean>();

  constructor(prefixes: readonly LabelPrefix[], inclusive: boolean) {
    this.prefixes = prefixes.map((p) => ({ source: p.source, prefix: p.prefix, ignore: p.ignore }));
    this.inclusive = inclusive;
    this.#compiled = this.prefixes.map((p, i) => ({
      ...p,
      re: compilePrefix(p.prefix, `prefixes[${i}]`, p.prefix),
    }));
  }

  isIdentityRelevant(l: Label): boolean {
    const memoKey = `${l.source}:${l.key}`;
    const known = this.#memo.get(memoKey);
    if (known !== undefined) return known;
    const verdict = this.#decide(l);
    if (this.#memo.size >= 10_000) this.#memo.clear();
    this.#memo.set(memoKey, verdict);
    return verdict;
  }

  #decide(l: Label): boolean {
    let included = 0;
    let ignored = 0;
    for (const p of this.#compiled) {
      if (p.source !== '' && p.source !== l.source) continue;
      const m = p.re.exec(l.key);
      if (m === null) continue;
      const len = m[0].length;
      if (p.ignore) {
        if (ignored === 0 || len < ignored) ignored = len;
      } else if (len > included) {
        included = len;
      }
    }
    return (!this.inclusive && ignored === 0) || included > ignored;
  }

  /** Splits labels into identity-relevant ones and information labels, keeping input order. */
  filter(labels: Iterable<Label>): { identity: Label[]; information: Label[] } {
    const identity: Label[] = [];
    const information: Label[] = [];
    for (const l of labels) (this.isIdentityRelevant(l) ? identity : information).push(l);
    return { identity, information };
  }

  toJSON(): { prefixes: readonly LabelPrefix[]; inclusive: boolean } {
    return { prefixes: this.prefixes, inclusive: this.inclusive };
  }
}

/** Builds a filter from Cilium-style settings; with no settings, Cilium's defaults. */
export function createLabelFilter(config: LabelFilterConfig = {}, field = 'labels'): LabelFilter {
  let base: LabelPrefix[];
  let inclusive = false;
  if (config.prefixFile !== undefined) {
    const file = config.prefixFile;
    const fileField = `${field}.prefixFile`;
    if (file.version !== 1) {
      throw invalid(
        'INVALID_LABEL_FILTER',
        `${fileField}.version`,
        file.version,
        'only version 1 is supported',
      );
    }
    const list: unknown = file['valid-prefixes'];
    if (!Array.isArray(list)) {
      throw invalid('INVALID_LABEL_FILTER', `${fileField}.valid-prefixes`, list, 'must be a list');
    }
    base = (list as unknown[]).map((raw, i) => {
      const f = `${fileField}.valid-prefixes[${i}]`;
      const entry = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
      const { prefix, source } = entry;
      if (typeof prefix !== 'string' || prefix.length === 0) {
        throw invalid('INVALID_LABEL_FILTER', `${f}.prefix`, prefix, 'must not be empty');
      }
      if (typeof source !== 'string' || source.length === 0) {
        throw invalid(
          'INVALID_LABEL_FILTER',
          `${f}.source`,
          source,
          'must not be empty (use "any" for every source)',
        );
      }
      compilePrefix(prefix, `${f}.prefix`, prefix);
      const ignore = entry.invert === true || entry.ignore === true;
      if (!ignore) inclusive = true;
      return { source: source === 'any' ? '' : source, prefix, ignore };
    });
  } else {
    base = DEFAULT_LABEL_PREFIXES.map((p, i) => parseLabelPrefix(p, `defaults[${i}]`));
  }
  const extra =
    typeof config.prefixes === 'string'
      ? config.prefixes.split(/\s+/).filter((s) => s.length > 0)
      : (config.prefixes ?? []);
  const user = extra.map((p, i) => parseLabelPrefix(p, `${field}.prefixes[${i}]`));
  if (user.some((p) => !p.ignore)) inclusive = true;
  return new LabelFilter([...base, ...user], inclusive);
}

const DEFAULT_FILTER = createLabelFilter();

/** Cilium's default filter. */
export function defaultLabelFilter(): LabelFilter {
  return DEFAULT_FILTER;
}
