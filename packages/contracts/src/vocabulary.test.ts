import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { EndpointInfoSchema } from './datapath.js';
import { IpamNodeCidrsRequestSchema } from './ipam.js';
import {
  NODE_NAME_PATTERN,
  NodeNameSchema,
  isNodeName,
  nodeFromToken,
  nodeNameProblem,
  nodeToken,
} from './nodes.js';
import {
  RESERVED_IDENTITIES,
  isReservedIdentity,
  reservedIdentities,
  reservedIdentityForLabels,
  worldIdentity,
} from './reserved.js';
import { labelsFromStrings } from './labels.js';

const dnsLabel = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
const nodeName = fc.array(dnsLabel, { minLength: 1, maxLength: 5 }).map((p) => p.join('.'));

describe('node names', () => {
  it('follow Kubernetes: DNS-1123 subdomains of at most 253 characters', () => {
    for (const good of ['n1', 'n1.example', 'kind-worker2', '0', 'a'.repeat(63) + '.b']) {
      assert.ok(isNodeName(good), good);
      assert.ok(NODE_NAME_PATTERN.test(good), good);
    }
    for (const bad of ['', 'N1', 'n1.', '.n1', 'n1..x', 'n_1', 'n 1', '-n1', 'a'.repeat(254)]) {
      assert.ok(!isNodeName(bad), bad);
      assert.ok(!NODE_NAME_PATTERN.test(bad), bad);
      assert.match(nodeNameProblem(bad) ?? '', /must be/);
    }
  });

  it('every wire message that names a node takes the same rule (n1.example included)', () => {
    assert.ok(NodeNameSchema.safeParse('n1.example').success);
    assert.ok(IpamNodeCidrsRequestSchema.safeParse({ node: 'n1.example' }).success);
    const ep = EndpointInfoSchema.shape.node;
    assert.ok(ep.safeParse('n1.example').success);
    assert.ok(!ep.safeParse('n1_example').success);
  });

  it('property: a node name round-trips through one dot-free token', () => {
    fc.assert(
      fc.property(nodeName, (node) => {
        const t = nodeToken(node);
        assert.ok(!t.includes('.'));
        assert.equal(nodeFromToken(t), node);
      }),
    );
  });
});

describe('reserved identities', () => {
  it('are numbered as Cilium numbers them', () => {
    assert.deepEqual(RESERVED_IDENTITIES, {
      host: 1,
      world: 2,
      unmanaged: 3,
      health: 4,
      init: 5,
      'remote-node': 6,
      'kube-apiserver': 7,
      ingress: 8,
      'world-ipv4': 9,
      'world-ipv6': 10,
    });
    assert.ok(isReservedIdentity(1) && isReservedIdentity(255));
    assert.ok(!isReservedIdentity(0) && !isReservedIdentity(256));
  });

  it('are found from their labels; kube-apiserver carries remote-node too', () => {
    for (const r of reservedIdentities()) assert.equal(reservedIdentityForLabels(r.labels), r);
    assert.equal(
      reservedIdentityForLabels(
        labelsFromStrings(['reserved:kube-apiserver', 'reserved:remote-node']),
      )?.id,
      7,
    );
    assert.equal(reservedIdentityForLabels(labelsFromStrings(['reserved:host', 'k8s:a=b']))?.id, 1);
    assert.equal(reservedIdentityForLabels(labelsFromStrings(['k8s:a=b'])), undefined);
    assert.equal(worldIdentity(6, true), 10);
    assert.equal(worldIdentity(6, false), 2);
  });
});
