import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import countingReporter from './reporter.js';

async function countsOf(events: { type: string; data: Record<string, unknown> }[]) {
  let out = '';
  for await (const line of countingReporter(events as never)) out += line;
  return JSON.parse(out) as { passed: number; failed: number; skipped: number };
}

describe('the counting reporter', () => {
  it('counts tests, not suites, and a skipped suite as a skipped test', async () => {
    const counts = await countsOf([
      { type: 'test:pass', data: { name: 'a', nesting: 1 } },
      { type: 'test:pass', data: { name: 'b', nesting: 1, skip: true } },
      { type: 'test:pass', data: { name: 'suite', nesting: 0, details: { type: 'suite' } } },
      {
        type: 'test:pass',
        data: {
          name: 'needs a tool',
          nesting: 0,
          skip: 'tool not found',
          details: { type: 'suite' },
        },
      },
      { type: 'test:fail', data: { name: 'c', nesting: 1, file: 'x.test.js' } },
    ]);
    assert.deepEqual(counts, { passed: 1, failed: 1, skipped: 2, failures: ['x.test.js: c'] });
  });
});
