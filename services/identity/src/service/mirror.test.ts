// The mirror's count of identities per node, kept change by change, against a count made from
// scratch: what the cap on identities per node is decided on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  bindingKeyForLabels,
  bindingRecord,
  encodeRecord,
  referenceKey,
  referenceRecord,
} from '@ciliate/identity-core';
import { IdentityMirror } from './mirror.js';

const IDS = [300, 301, 302];
const NODES = ['a', 'b', 'c'];
const labelsOf = (id: number): string => `k8s:app=a${id};`;

describe('IdentityMirror hold counts', () => {
  it('property: equal to the identities each node references or holds a binding of', () => {
    const op = fc.record({
      kind: fc.constantFrom('ref', 'unref', 'bind', 'unbind'),
      id: fc.constantFrom(...IDS),
      node: fc.constantFrom(...NODES),
      holder: fc.option(fc.constantFrom(...NODES), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const mirror = new IdentityMirror();
        const refs = new Set<string>();
        const holders = new Map<number, string | undefined>();
        ops.forEach((o, i) => {
          const revision = i + 1;
          switch (o.kind) {
            case 'ref':
              mirror.apply(
                referenceKey(o.id, o.node),
                encodeRecord(referenceRecord(o.id, o.node)),
                revision,
                false,
              );
              refs.add(`${o.id}/${o.node}`);
              break;
            case 'unref':
              mirror.apply(referenceKey(o.id, o.node), undefined, revision, false);
              refs.delete(`${o.id}/${o.node}`);
              break;
            case 'bind':
              mirror.apply(
                bindingKeyForLabels(labelsOf(o.id)),
                encodeRecord(bindingRecord(o.id, labelsOf(o.id), false, o.holder)),
                revision,
                false,
              );
              holders.set(o.id, o.holder);
              break;
            case 'unbind':
              mirror.apply(bindingKeyForLabels(labelsOf(o.id)), undefined, revision, false);
              holders.delete(o.id);
              break;
          }
          for (const node of NODES) {
            const held = IDS.filter((id) => refs.has(`${id}/${node}`) || holders.get(id) === node);
            assert.equal(mirror.holdCount(node), held.length, `${node} after op ${i}`);
            for (const id of IDS) assert.equal(mirror.holds(id, node), held.includes(id));
          }
        });
      }),
    );
  });
});
