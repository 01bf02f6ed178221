// LB-IPAM's serviceSelector as a pool in the store carries it. The pool may have been written by
// anything, so its shape is checked here and its Kubernetes syntax by @ciliate/resources; the
// selector model and its matching are the vocabulary's (@ciliate/contracts), the same that policy
// uses, so a Service is selected here exactly as everywhere else.
import { compileSelector, type LabelMatcher, type LabelSelector } from '@ciliate/contracts';
import { formatFieldIssue, validateSelector } from '@ciliate/resources';

import { IpamError, invalidValue, requiredValue } from './errors.js';

const OPERATORS: readonly string[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

function checkShape(selector: object, path: string): void {
  const ml: unknown = (selector as { matchLabels?: unknown }).matchLabels;
  if (ml !== undefined && ml !== null) {
    if (typeof ml !== 'object' || Array.isArray(ml)) {
      throw invalidValue('INVALID_ARGUMENT', `${path}.matchLabels`, ml, 'must be a map');
    }
    for (const [key, value] of Object.entries(ml as Record<string, unknown>)) {
      const p = `${path}.matchLabels[${JSON.stringify(key)}]`;
      if (key === '') throw requiredValue(p, 'label key must not be empty');
      if (typeof value !== 'string') {
        throw invalidValue('INVALID_ARGUMENT', p, value, 'must be a string');
      }
    }
  }
  const me: unknown = (selector as { matchExpressions?: unknown }).matchExpressions;
  if (me === undefined || me === null) return;
  if (!Array.isArray(me)) {
    throw invalidValue('INVALID_ARGUMENT', `${path}.matchExpressions`, me, 'must be a list');
  }
  me.forEach((req: unknown, i: number) => {
    const p = `${path}.matchExpressions[${i}]`;
    if (req === null || typeof req !== 'object') {
      throw invalidValue('INVALID_ARGUMENT', p, req, 'must be an object');
    }
    const { key, operator, values } = req as Record<string, unknown>;
    if (typeof key !== 'string' || key === '') {
      throw requiredValue(`${p}.key`, 'must be a non-empty string');
    }
    if (typeof operator !== 'string' || !OPERATORS.includes(operator)) {
      throw invalidValue(
        'INVALID_ARGUMENT',
        `${p}.operator`,
        operator,
        `must be one of ${OPERATORS.join(', ')}`,
      );
    }
    if (
      values !== undefined &&
      values !== null &&
      (!Array.isArray(values) || values.some((v) => typeof v !== 'string'))
    ) {
      throw invalidValue('INVALID_ARGUMENT', `${p}.values`, values, 'must be a list of strings');
    }
  });
}

/**
 * Compiles a Service selector. An absent or empty selector matches everything (as Kubernetes'
 * LabelSelectorAsSelector does). Throws INVALID_ARGUMENT naming the bad field.
 */
export function compileServiceSelector(
  selector: LabelSelector | null | undefined,
  path = 'selector',
): LabelMatcher {
  if (selector === null || selector === undefined) return () => true;
  if (typeof selector !== 'object') {
    throw invalidValue('INVALID_ARGUMENT', path, selector, 'must be an object');
  }
  checkShape(selector, path);
  const issue = validateSelector(selector, path, { sources: false })[0];
  if (issue !== undefined) {
    throw new IpamError('INVALID_ARGUMENT', formatFieldIssue(issue), {
      path: issue.path,
      ...(issue.value === undefined ? {} : { value: issue.value }),
    });
  }
  return compileSelector(selector);
}
