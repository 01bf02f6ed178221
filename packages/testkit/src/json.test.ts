import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { duplicateJsonKeys } from './json.js';

describe('duplicateJsonKeys', () => {
  it('finds top-level repeats that JSON.parse hides, and only those', () => {
    assert.deepEqual(duplicateJsonKeys('{"a":1,"b":2}'), []);
    assert.deepEqual(
      duplicateJsonKeys('{"a":1,"b":{"a":[1,{"a":2}]},"s":"x,\\"a\\":{","a":2,"b":3,"a":4}'),
      ['a', 'b', 'a'],
    );
  });
});
