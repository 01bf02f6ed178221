// Kubernetes label selectors (matchLabels + matchExpressions), compiled once and matched many
// times. Invalid selectors are refused with the field path, as the API server would.
import { invalidValue, requiredValue } from './errors.js';

export type LabelSelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: LabelSelectorOperator;
  readonly values?: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

export type Labels = Readonly<Record<string, string>>;

export type LabelMatcher = (labels: Labels) => boolean;

const OPERATORS: readonly string[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

function has(labels: Labels, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(labels, key);
}

/**
 * Compiles a selector. An absent or empty selector matches everything (as Kubernetes'
 * LabelSelectorAsSelector does). Throws INVALID_ARGUMENT naming the bad field.
 */
export function compileSelector(
  selector: LabelSelector | null | undefined,
  path = 'selector',
): LabelMatcher {
  if (selector === null || selector === undefined) return () => true;
  if (typeof selector !== 'object') {
    throw invalidValue('INVALID_ARGUMENT', path, selector, 'must be an object');
  }
  const tests: LabelMatcher[] = [];
  const ml: unknown = selector.matchLabels;
  if (ml !== undefined && ml !== null) {
    if (typeof ml !== 'object' || Array.isArray(ml)) {
      throw invalidValue('INVALID_ARGUMENT', `${path}.matchLabels`, ml, 'must be a map');
    }
    for (const [key, value] of Object.entries(ml as Record<string, unknown>)) {
      const p = `${path}.matchLabels[${JSON.stringify(key)}]`;
      if (key === '') throw requiredValue(p, 'label key must not be empty');
      if (typeof value !== 'string')
        throw invalidValue('INVALID_ARGUMENT', p, value, 'must be a string');
      tests.push((labels) => has(labels, key) && labels[key] === value);
    }
  }
  const me: unknown = selector.matchExpressions;
  if (me !== undefined && me !== null) {
    if (!Array.isArray(me)) {
      throw invalidValue('INVALID_ARGUMENT', `${path}.matchExpressions`, me, 'must be a list');
    }
    me.forEach((req: unknown, i: number) => {
      tests.push(compileRequirement(req, `${path}.matchExpressions[${i}]`));
    });
  }
  if (tests.length === 0) return () => true;
  return (labels) => tests.every((t) => t(labels));
}

function compileRequirement(req: unknown, path: string): LabelMatcher {
  if (req === null || typeof req !== 'object') {
    throw invalidValue('INVALID_ARGUMENT', path, req, 'must be an object');
  }
  const { key, operator, values } = req as Record<string, unknown>;
  if (typeof key !== 'string' || key === '')
    throw requiredValue(`${path}.key`, 'must be a non-empty string');
  if (typeof operator !== 'string' || !OPERATORS.includes(operator)) {
    throw invalidValue(
      'INVALID_ARGUMENT',
      `${path}.operator`,
      operator,
      `must be one of ${OPERATORS.join(', ')}`,
    );
  }
  const list: unknown[] = values === undefined || values === null ? [] : (values as unknown[]);
  if (!Array.isArray(list) || list.some((v) => typeof v !== 'string')) {
    throw invalidValue('INVALID_ARGUMENT', `${path}.values`, values, 'must be a list of strings');
  }
  const set = new Set(list as string[]);
  switch (operator) {
    case 'In':
    case 'NotIn':
      if (set.size === 0) {
        throw requiredValue(`${path}.values`, `must be specified when operator is ${operator}`);
      }
      return operator === 'In'
        ? (labels) => has(labels, key) && set.has(labels[key] as string)
        : (labels) => !has(labels, key) || !set.has(labels[key] as string);
    default:
      if (set.size > 0) {
        throw invalidValue(
          'INVALID_ARGUMENT',
          `${path}.values`,
          values,
          `may not be specified when operator is ${operator}`,
        );
      }
      return operator === 'Exists' ? (labels) => has(labels, key) : (labels) => !has(labels, key);
  }
}
