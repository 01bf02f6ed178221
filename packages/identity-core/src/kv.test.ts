import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { IdentityError } from './errors.js';
import {
  bindingKey,
  decodeBindingRecord,
  decodeIdentityRecord,
  decodeLeaseRecord,
  decodeReferenceRecord,
  encodeRecord,
  identityKey,
  leaseKey,
  leaseRecord,
  parseKey,
  referenceKey,
  referencesOfIdentityFilter,
  referencesOfNodeFilter,
  nodeKeyToken,
} from './kv.js';
import { labelSetHash } from './labels.js';
import { subjectMatches } from './memory-kv.js';

const HASH = labelSetHash('k8s:app=web;');

describe('KV keys', () => {
  it('spell the layout', () => {
    assert.equal(identityKey(300), 'id.300');
    assert.equal(bindingKey(HASH), `labels.${HASH}`);
    assert.equal(referenceKey(300, 'worker-1.example.com'), 'ref.300.worker-1_example_com');
    assert.equal(leaseKey('worker-1'), 'lease.worker-1');
    assert.equal(referencesOfIdentityFilter(300), 'ref.300.>');
    assert.equal(referencesOfNodeFilter('n1'), 'ref.*.n1');
    assert.ok(subjectMatches(referencesOfIdentityFilter(300), referenceKey(300, 'a.b')));
    assert.ok(subjectMatches(referencesOfNodeFilter('a.b'), referenceKey(300, 'a.b')));
    assert.ok(!subjectMatches(referencesOfNodeFilter('a'), referenceKey(300, 'a.b')));
  });

  it('parse back', () => {
    assert.deepEqual(parseKey('id.300'), { kind: 'identity', id: 300 });
    assert.deepEqual(parseKey(`labels.${HASH}`), { kind: 'binding', hash: HASH });
    assert.deepEqual(parseKey('ref.300.worker-1_example_com'), {
      kind: 'reference',
      id: 300,
      node: 'worker-1.example.com',
    });
    assert.deepEqual(parseKey('lease.worker-1'), { kind: 'lease', node: 'worker-1' });
    for (const k of [
      'id.0',
      'id.12',
      'id.0300',
      'id.300.1',
      'labels.abc',
      'ref.300',
      'x.1',
      'lease.A',
    ]) {
      assert.equal(parseKey(k), undefined, k);
    }
  });

  it('property: node names round-trip through one key token', () => {
    const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?$/);
    fc.assert(
      fc.property(
        fc.array(label, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 256, max: 0xffffff }),
        (parts, id) => {
          const node = parts.join('.');
          assert.ok(!nodeKeyToken(node).includes('.'));
          assert.deepEqual(parseKey(referenceKey(id, node)), { kind: 'reference', id, node });
          assert.deepEqual(parseKey(leaseKey(node)), { kind: 'lease', node });
        },
      ),
    );
  });

  it('refuse bad input naming the field', () => {
    assert.throws(
      () => nodeKeyToken('Node_1'),
      /node: Invalid value: "Node_1": must be a lower-case DNS-1123 subdomain/,
    );
    assert.throws(() => identityKey(255), /id: Invalid value: 255/);
    assert.throws(() => bindingKey('xyz'), /labelsHash: Invalid value: "xyz"/);
  });
});

describe('KV records', () => {
  it('encode in a fixed field order and decode back', () => {
    assert.equal(
      encodeRecord({ labels: 'k8s:a=b;', id: 300, v: 1 } as never),
      '{"v":1,"id":300,"labels":"k8s:a=b;"}',
    );
    assert.equal(
      encodeRecord({ releasing: true, labels: 'k8s:a=b;', id: 300, v: 1 }),
      '{"v":1,"id":300,"labels":"k8s:a=b;","releasing":true}',
    );
    const lease = leaseRecord('n1', 1000);
    assert.deepEqual(decodeLeaseRecord(encodeRecord(lease)), lease);
    assert.deepEqual(decodeReferenceRecord('{"v":1,"id":300,"node":"n1"}'), {
      v: 1,
      id: 300,
      node: 'n1',
    });
    assert.deepEqual(
      decodeBindingRecord('{"v":1,"id":300,"labels":"k8s:a=b;","releasing":false}'),
      {
        v: 1,
        id: 300,
        labels: 'k8s:a=b;',
      },
    );
  });

  it('refuse malformed values with the field path', () => {
    const spec: [() => unknown, string][] = [
      [() => decodeIdentityRecord('nope', 'id.300'), 'id.300: not JSON'],
      [
        () => decodeIdentityRecord('[]', 'id.300'),
        'id.300: Invalid value: []: must be a JSON object',
      ],
      [
        () => decodeIdentityRecord('{"v":2}', 'id.300'),
        'id.300.v: Invalid value: 2: only version 1 is known',
      ],
      [
        () => decodeIdentityRecord('{"v":1,"id":7,"labels":""}', 'id.7'),
        'id.7.id: Invalid value: 7: a global identity',
      ],
      [
        () => decodeIdentityRecord('{"v":1,"id":300,"labels":"k8s:b=1;k8s:a=1;"}', 'id.300'),
        'id.300.labels: Invalid value',
      ],
      [
        () => decodeBindingRecord('{"v":1,"id":300,"labels":"","releasing":"yes"}', 'b'),
        'b.releasing: Invalid value: "yes"',
      ],
      [
        () => decodeLeaseRecord('{"v":1,"node":"n1","expiresAt":"soon"}', 'lease.n1'),
        'lease.n1.expiresAt: Invalid value: "soon"',
      ],
    ];
    for (const [fn, message] of spec) {
      assert.throws(
        fn,
        (err: unknown) =>
          err instanceof IdentityError &&
          err.code === 'INVALID_RECORD' &&
          err.message.startsWith(message),
        message,
      );
    }
  });
});
