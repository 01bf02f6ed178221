import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { contextAfterDown, type LabSummary } from './context.js';

const lab = (name: string, up: boolean, createdAt = '2026-01-01T00:00:00.000Z'): LabSummary => ({
  name,
  up,
  createdAt,
});

describe('the context after `lab down`', () => {
  const cases: [
    string,
    string | undefined,
    string,
    LabSummary[],
    ReturnType<typeof contextAfterDown>,
  ][] = [
    [
      'another lab is current and up: stays',
      'b',
      'a',
      [lab('a', true), lab('b', true)],
      { action: 'keep' },
    ],
    [
      'the current lab goes, another is up: moves to it',
      'b',
      'b',
      [lab('a', true), lab('b', true)],
      { action: 'switch', lab: 'a' },
    ],
    [
      'the current lab goes, none is left: removed',
      'a',
      'a',
      [lab('a', true)],
      { action: 'remove' },
    ],
    [
      'the current lab goes, the other is half-made: removed',
      'a',
      'a',
      [lab('a', true), lab('b', false)],
      { action: 'remove' },
    ],
    [
      'current is a lab already gone: moves to one up',
      'gone',
      'a',
      [lab('a', true), lab('c', true)],
      { action: 'switch', lab: 'c' },
    ],
    [
      "no context, or not a lab's: untouched",
      undefined,
      'a',
      [lab('a', true), lab('b', true)],
      { action: 'keep' },
    ],
    [
      'several left: the newest',
      'x',
      'x',
      [
        lab('x', true),
        lab('old', true, '2026-01-01T00:00:00.000Z'),
        lab('new', true, '2026-02-01T00:00:00.000Z'),
      ],
      { action: 'switch', lab: 'new' },
    ],
  ];
  for (const [what, current, removed, labs, want] of cases) {
    it(what, () => assert.deepEqual(contextAfterDown(current, removed, labs), want));
  }
});
