import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { LabError, labIndex, netnsPrefix, planLab, podNetns, sandboxId } from './plan.js';

const labName = fc.stringMatching(/^[a-z]([-a-z0-9]{0,18}[a-z0-9])?$/);

describe('lab address plan', () => {
  it('gives a 2-node lab its underlay, pod pool, names and pin dirs', () => {
    const p = planLab({ name: 'demo', nodes: 2, routing: 'native', taken: new Set() });
    const k = p.index;
    assert.ok(k >= 100 && k < 200);
    assert.equal(p.underlayCidr, `192.168.${k}.0/24`);
    assert.equal(p.clusterPoolCidr, `10.${k}.0.0/16`);
    assert.equal(p.clusterPoolMaskSize, 24);
    assert.deepEqual(
      p.nodes.map((n) => [n.name, n.netns, n.ip, n.pinDir]),
      [
        ['node-1', 'cil.demo.node-1', `192.168.${k}.11`, '/sys/fs/bpf/ciliate-lab/demo/node-1'],
        ['node-2', 'cil.demo.node-2', `192.168.${k}.12`, '/sys/fs/bpf/ciliate-lab/demo/node-2'],
      ],
    );
    assert.equal(p.hubNetns, 'cil.demo.hub');
  });

  it('is stable per name and steps past indexes other labs hold', () => {
    const a = labIndex('alpha', new Set());
    assert.equal(labIndex('alpha', new Set()), a);
    const b = labIndex('alpha', new Set([a]));
    assert.notEqual(b, a);
  });

  it('never gives two labs the same index, whatever their names (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(labName, { minLength: 1, maxLength: 40 }), (names) => {
        const taken = new Set<number>();
        for (const n of names) {
          const k = labIndex(n, taken);
          assert.ok(!taken.has(k));
          taken.add(k);
        }
      }),
    );
  });

  it("no lab's namespace prefix is a prefix of another lab's names (property)", () => {
    fc.assert(
      fc.property(labName, labName, (a, b) => {
        fc.pre(a !== b);
        const pb = planLab({ name: b, nodes: 2, routing: 'native', taken: new Set() });
        for (const ns of [pb.hubNetns, ...pb.nodes.map((n) => n.netns), podNetns(b, 'x', 'y')]) {
          assert.ok(!ns.startsWith(netnsPrefix(a)));
        }
      }),
    );
  });

  it('refuses bad input naming the field', () => {
    assert.throws(
      () => planLab({ name: 'Bad_Name', nodes: 2, routing: 'native', taken: new Set() }),
      (e: unknown) => e instanceof LabError && /^name: Invalid value: "Bad_Name"/.test(e.message),
    );
    assert.throws(
      () => planLab({ name: 'x', nodes: 0, routing: 'native', taken: new Set() }),
      /nodes: Invalid value: 0: must be an integer 1-16/,
    );
    assert.throws(
      () => planLab({ name: 'x', nodes: 2, routing: 'bgp' as 'native', taken: new Set() }),
      /routing: Invalid value: "bgp"/,
    );
  });

  it('names pod namespaces readably, hashing long names', () => {
    assert.equal(podNetns('demo', 'app', 'web-api-0'), 'cil.demo.pod.app.web-api-0');
    const long = podNetns('demo', 'n'.repeat(63), 'p'.repeat(200));
    assert.match(long, /^cil\.demo\.pod\.[0-9a-f]{16}$/);
    assert.match(sandboxId('uid-1'), /^[0-9a-f]{64}$/);
    assert.notEqual(sandboxId('uid-1'), sandboxId('uid-2'));
  });
});
