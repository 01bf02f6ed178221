import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { countTestDeclarations } from './count-tests.js';

describe('countTestDeclarations', () => {
  it('counts it/test calls and their modifiers, not suites, hooks or look-alikes', () => {
    const src = `
      import { describe, it, test, before } from 'node:test';
      describe('suite', () => {
        before(() => {});
        it('a', () => {});
        it.skip('b', () => {});
        test('c', async () => {});
        test.todo('d');
        describe('nested', () => { it.only('e', () => {}); });
        // it('in a comment') does not count
        const s = "it('in a string')";
        obj.it('a method named it');
        split('x');
      });
    `;
    assert.deepEqual(countTestDeclarations(src), { tests: 5, inLoops: 0 });
  });

  it('reports declarations inside loops and iteration callbacks, counting each once', () => {
    const src = `
      describe('table', () => {
        for (const r of rows) it(r.name, () => {});
        cases.forEach((c) => { test(c, () => {}); });
        while (more()) { it('w', () => {}); }
        it('plain', () => {});
      });
    `;
    assert.deepEqual(countTestDeclarations(src), { tests: 4, inLoops: 3 });
  });

  it('parses TypeScript too', () => {
    const src = `it('typed', (): void => { const x: number = 1; void x; });`;
    assert.deepEqual(countTestDeclarations(src, 'x.test.ts'), { tests: 1, inLoops: 0 });
  });
});
