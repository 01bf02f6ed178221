import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { labelSetKey, labelsFromStrings } from '@ciliate/contracts';

import { IdentityError } from './errors.js';
import { cidrLabels } from './identity-labels.js';
import { identityScopeForLabels, LocalIdentityAllocator } from './local-allocator.js';

describe('identity scope of a label set', () => {
  const spec: [string[], string][] = [
    [['cidr:10.0.0.0/8', 'reserved:world'], 'local'],
    [['fqdn:matchName: example.com'], 'local'],
    [['cidrgroup:io.cilium.policy.cidrgroupname/corp'], 'local'],
    [['k8s:app=web'], 'global'],
    [['cidr:10.0.0.0/8', 'k8s:app=web'], 'global'],
    [['reserved:remote-node', 'node:zone=a'], 'remote-node'],
    [[], 'global'],
  ];
  for (const [labels, want] of spec) {
    it(`${labels.join(', ') || '(empty)'} -> ${want}`, () => {
      assert.equal(identityScopeForLabels(labelsFromStrings(labels)), want);
    });
  }
});

describe('node-local identity allocator', () => {
  it('hands out 1<<24 | n, reference-counted, reserved sets passing through', () => {
    const a = new LocalIdentityAllocator();
    const ten = cidrLabels('10.0.0.0/8');
    assert.deepEqual(a.acquire(ten), { id: 16777217, created: true, reserved: false });
    assert.deepEqual(a.acquire(ten), { id: 16777217, created: false, reserved: false });
    assert.deepEqual(a.acquire(cidrLabels('192.168.0.0/16')), {
      id: 16777218,
      created: true,
      reserved: false,
    });
    assert.deepEqual(a.acquire(cidrLabels('0.0.0.0/0')), { id: 2, created: false, reserved: true });
    assert.equal(a.references(16777217), 2);
    assert.deepEqual(a.release(16777217), { freed: false, known: true, labels: labelSetKey(ten) });
    assert.deepEqual(a.release(16777217), { freed: true, known: true, labels: labelSetKey(ten) });
    assert.deepEqual(a.release(16777217), { freed: false, known: false });
    assert.equal(a.lookup(ten), undefined);
    // Next-fit: the freed number is not reused at once.
    assert.equal(a.acquire(cidrLabels('172.16.0.0/12')).id, 16777219);
  });

  it('refuses label sets of another scope', () => {
    assert.throws(
      () => new LocalIdentityAllocator().acquire(labelsFromStrings(['k8s:app=web'])),
      /labels: Invalid value: \["k8s:app"\]: this set needs a global identity, not a local one/,
    );
  });

  it('remote-node scope uses 2<<24', () => {
    const a = new LocalIdentityAllocator({ scope: 'remote-node' });
    assert.equal(
      a.acquire(labelsFromStrings(['reserved:remote-node', 'node:zone=a'])).id,
      33554433,
    );
  });

  it('reports exhaustion with a coded error and recovers after a release', () => {
    const a = new LocalIdentityAllocator({ limit: 2 });
    const x = a.acquire(cidrLabels('10.0.0.1')).id;
    a.acquire(cidrLabels('10.0.0.2'));
    assert.throws(
      () => a.acquire(cidrLabels('10.0.0.3')),
      (err: unknown) => err instanceof IdentityError && err.code === 'IDENTITY_EXHAUSTED',
    );
    a.release(x);
    assert.equal(a.acquire(cidrLabels('10.0.0.3')).id, x);
  });

  it('survives a restart through its snapshot', () => {
    const a = new LocalIdentityAllocator();
    a.acquire(cidrLabels('10.0.0.0/8'));
    a.acquire(cidrLabels('10.0.0.0/8'));
    a.acquire(cidrLabels('2001:db8::/32'));
    const json = JSON.parse(JSON.stringify(a.snapshot())) as ReturnType<typeof a.snapshot>;
    const b = LocalIdentityAllocator.restore(json);
    assert.deepEqual(b.snapshot(), a.snapshot());
    assert.equal(b.lookup(cidrLabels('10.0.0.0/8')), 16777217);
    assert.equal(b.acquire(cidrLabels('10.9.0.0/16')).id, 16777219);
    assert.throws(
      () => LocalIdentityAllocator.restore({ ...json, entries: [{ id: 5, labels: '', refs: 1 }] }),
      /snapshot\.entries\[0\]\.id: Invalid value: 5: not a local identity/,
    );
  });

  it('property: a number is never held by two label sets, and equal sets share one', () => {
    const ops = fc.array(
      fc.record({ release: fc.boolean(), octet: fc.integer({ min: 0, max: 20 }) }),
      { maxLength: 200 },
    );
    fc.assert(
      fc.property(ops, (list) => {
        const a = new LocalIdentityAllocator({ limit: 16 });
        const model = new Map<number, { id: number; refs: number }>();
        for (const { release, octet } of list) {
          const labels = cidrLabels(`10.0.0.${octet}`);
          const held = model.get(octet);
          if (release) {
            if (held === undefined) continue;
            const r = a.release(held.id);
            held.refs--;
            assert.equal(r.freed, held.refs === 0);
            if (held.refs === 0) model.delete(octet);
            continue;
          }
          if (held === undefined && model.size >= 16) {
            assert.throws(() => a.acquire(labels), /exhausted/);
            continue;
          }
          const { id } = a.acquire(labels);
          if (held !== undefined) {
            assert.equal(id, held.id);
            held.refs++;
          } else {
            for (const other of model.values()) assert.notEqual(other.id, id);
            model.set(octet, { id, refs: 1 });
          }
        }
        assert.equal(a.size, model.size);
      }),
    );
  });
});
