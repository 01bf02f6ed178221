import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { IpamError } from './errors.js';
import type { LabelSelector } from '@ciliate/contracts';

import { compileServiceSelector as compileSelector } from './selector.js';

describe('label selectors', () => {
  const labels = { app: 'web', tier: 'front', 'io.kubernetes.service.namespace': 'media' };
  const cases: Array<[string, LabelSelector | undefined, boolean]> = [
    ['absent matches all', undefined, true],
    ['empty matches all', {}, true],
    ['matchLabels hit', { matchLabels: { app: 'web' } }, true],
    ['matchLabels miss', { matchLabels: { app: 'db' } }, false],
    ['matchLabels missing key', { matchLabels: { team: 'x' } }, false],
    [
      'In',
      { matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }] },
      true,
    ],
    ['In miss', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['back'] }] }, false],
    ['NotIn', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['back'] }] }, true],
    [
      'NotIn absent key',
      { matchExpressions: [{ key: 'x', operator: 'NotIn', values: ['y'] }] },
      true,
    ],
    ['Exists', { matchExpressions: [{ key: 'app', operator: 'Exists' }] }, true],
    ['DoesNotExist', { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, false],
    [
      'special namespace key',
      { matchLabels: { 'io.kubernetes.service.namespace': 'media' } },
      true,
    ],
    [
      'all terms must hold',
      {
        matchLabels: { app: 'web' },
        matchExpressions: [{ key: 'tier', operator: 'In', values: ['back'] }],
      },
      false,
    ],
  ];
  for (const [name, sel, want] of cases) {
    it(name, () => assert.equal(compileSelector(sel)(labels), want));
  }

  const bad: Array<[unknown, string]> = [
    [
      { matchExpressions: [{ key: 'a', operator: 'Has' }] },
      's.matchExpressions[0].operator: Invalid value: "Has": must be one of In, NotIn, Exists, DoesNotExist',
    ],
    [
      { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] },
      's.matchExpressions[0].values: Required value',
    ],
    [
      { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
      "s.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
    ],
    [{ matchExpressions: [{ operator: 'Exists' }] }, 's.matchExpressions[0].key: Required value'],
    [{ matchLabels: { a: 1 } }, 's.matchLabels["a"]: Invalid value: 1: must be a string'],
    [{ matchLabels: ['a'] }, 'must be a map'],
  ];
  for (const [sel, message] of bad) {
    it(`refuses ${JSON.stringify(sel)}`, () => {
      assert.throws(
        () => compileSelector(sel as LabelSelector, 's'),
        (e: unknown) =>
          e instanceof IpamError && e.code === 'INVALID_ARGUMENT' && e.message.includes(message),
      );
    });
  }
});
