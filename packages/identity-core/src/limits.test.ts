import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { IdentityError } from './errors.js';
import { nodeLimitRefusal, type NodeUsage } from './limits.js';

const limits = { maxNodes: 3, maxHoldsPerNode: 2 };

describe('node limits', () => {
  // usage, what the request adds, the error message or '' for none
  const table: [string, NodeUsage, 'lease' | 'hold', string, string?][] = [
    ['a new node under the node cap', { known: false, nodes: 2, holds: 0 }, 'hold', ''],
    [
      'a new node at the node cap',
      { known: false, nodes: 3, holds: 0 },
      'lease',
      'node: Too many nodes: 3 nodes have a lease, the limit is 3; "n9" gets one once an expired node has been collected',
      'maxNodes',
    ],
    ['a known node at the node cap renews', { known: true, nodes: 3, holds: 0 }, 'lease', ''],
    ['a known node over the node cap renews', { known: true, nodes: 7, holds: 2 }, 'lease', ''],
    ['a node under the hold cap', { known: true, nodes: 3, holds: 1 }, 'hold', ''],
    [
      'a node at the hold cap',
      { known: true, nodes: 1, holds: 2 },
      'hold',
      'node: Too many identities: "n9" holds 2, the limit is 2; it may take another once it releases one',
      'maxHoldsPerNode',
    ],
    [
      'a new node at the node cap, the hold cap unreached',
      { known: false, nodes: 3, holds: 0 },
      'hold',
      'node: Too many nodes: 3 nodes have a lease, the limit is 3; "n9" gets one once an expired node has been collected',
      'maxNodes',
    ],
  ];
  for (const [what, usage, adds, message, limit] of table) {
    it(`${message === '' ? 'lets through' : 'refuses'} ${what}`, () => {
      const refusal = nodeLimitRefusal('n9', usage, limits, adds);
      if (message === '') {
        assert.equal(refusal, undefined);
        return;
      }
      assert.equal(refusal?.limit, limit);
      const err = refusal?.error;
      assert.ok(err instanceof IdentityError);
      assert.equal(err.code, 'LIMIT_REACHED');
      assert.equal(err.field, 'node');
      assert.equal(err.message, message);
    });
  }

  it('property: refuses exactly what would grow past a cap', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.nat(6),
        fc.nat(4),
        fc.constantFrom<'lease' | 'hold'>('lease', 'hold'),
        (known, nodes, holds, adds) => {
          const err = nodeLimitRefusal('n', { known, nodes, holds }, limits, adds);
          const grows =
            (!known && nodes >= limits.maxNodes) ||
            (adds === 'hold' && holds >= limits.maxHoldsPerNode);
          assert.equal(err !== undefined, grows);
        },
      ),
    );
  });
});
