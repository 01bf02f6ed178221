import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { createHash } from 'node:crypto';

import fc from 'fast-check';

import { IdentityError } from './errors.js';
import { checkLabelSetKey, labelSetHash } from './labels.js';

describe('memos', () => {
  it('remember valid keys and hashes only: a bad key is refused every time', () => {
    const good = 'k8s:app=web;';
    for (let i = 0; i < 3; i++) {
      assert.doesNotThrow(() => checkLabelSetKey(good));
      assert.throws(() => checkLabelSetKey('k8s:b=1;k8s:a=1;'), IdentityError);
    }
  });

  it('property: the memoised hash is the SHA-256 of the key, also past the memo size', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 50 }), (keys) => {
        for (const k of keys) {
          assert.equal(labelSetHash(k), createHash('sha256').update(k, 'utf8').digest('hex'));
        }
      }),
      { numRuns: 200 },
    );
  });
});
