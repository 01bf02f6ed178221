// Syntax checks of label selectors (apimachinery's ValidateLabelSelector), with Cilium's sourced
// keys where a selector allows them. The selector model and its matching are the vocabulary's
// (@ciliate/contracts), shared with the identity side.
import { LabelSource, parseSourcedKey, type LabelSelector } from '@ciliate/contracts';

import { joinPath, type FieldIssue } from './errors.js';
import { labelValue, qualifiedName } from './validation.js';

// ---------------------------------------------------------------------------------------------
// Validation (apimachinery's ValidateLabelSelector, with Cilium's sourced keys where allowed).

export interface SelectorValidationOptions {
  /** Accept `source:key` keys (Cilium endpoint/node selectors); plain Kubernetes selectors do not. */
  readonly sources: boolean;
}

// Sources whose keys are ordinary Kubernetes label keys; other sources (reserved, cidr, fqdn...)
// carry Cilium-internal keys such as IPv6 prefixes that are not qualified names.
const K8S_SHAPED_SOURCES = new Set<string>([
  LabelSource.any,
  LabelSource.k8s,
  LabelSource.unspec,
  LabelSource.container,
  LabelSource.node,
]);

export function validateSelectorKey(
  key: string,
  path: string,
  options: SelectorValidationOptions,
): FieldIssue[] {
  if (!options.sources) {
    return qualifiedName(key).map((detail) => ({
      path,
      type: 'Invalid value',
      value: key,
      detail,
    }));
  }
  const sk = parseSourcedKey(key, LabelSource.any);
  if (sk.source === '') {
    return [
      {
        path,
        type: 'Invalid value',
        value: key,
        detail: 'label source before ":" must not be empty',
      },
    ];
  }
  if (!K8S_SHAPED_SOURCES.has(sk.source)) {
    return sk.key === ''
      ? [
          {
            path,
            type: 'Invalid value',
            value: key,
            detail: 'label key after the source must not be empty',
          },
        ]
      : [];
  }
  return qualifiedName(sk.key).map((detail) => ({
    path,
    type: 'Invalid value',
    value: key,
    detail,
  }));
}

/** Issues for a selector that already has the right shape (strings, known operators). */
export function validateSelector(
  selector: LabelSelector,
  path: string,
  options: SelectorValidationOptions,
): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const mlPath = joinPath(path, 'matchLabels');
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    issues.push(...validateSelectorKey(k, mlPath, options));
    if (typeof v === 'string') {
      for (const detail of labelValue(v))
        issues.push({ path: mlPath, type: 'Invalid value', value: v, detail });
    }
  }
  (selector.matchExpressions ?? []).forEach((e, i) => {
    const ePath = joinPath(joinPath(path, 'matchExpressions'), i);
    if (typeof e.key === 'string')
      issues.push(...validateSelectorKey(e.key, joinPath(ePath, 'key'), options));
    const values = e.values ?? [];
    const vPath = joinPath(ePath, 'values');
    if (e.operator === 'In' || e.operator === 'NotIn') {
      if (values.length === 0) {
        issues.push({
          path: vPath,
          type: 'Required value',
          detail: "must be specified when `operator` is 'In' or 'NotIn'",
        });
      }
    } else if (e.operator === 'Exists' || e.operator === 'DoesNotExist') {
      if (values.length > 0) {
        issues.push({
          path: vPath,
          type: 'Forbidden',
          detail: "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        });
      }
    }
    values.forEach((v, j) => {
      if (typeof v !== 'string') return;
      for (const detail of labelValue(v)) {
        issues.push({ path: joinPath(vPath, j), type: 'Invalid value', value: v, detail });
      }
    });
  });
  return issues;
}
