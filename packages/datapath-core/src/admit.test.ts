// admitPeers: which CiliumNode pod CIDRs and next hops become routes. Every hostile case a
// writer of the resource store could try, and that what is refused never takes good routes of
// the same or another node with it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { admitPeers, type AdmitPeersInput, type RouteRefusalReason } from './admit.js';
import type { CiliumNodeLike } from './routes.js';
import { planNodeRoutes } from './routes.js';

const SELF = {
  name: 'a',
  ip: '192.168.0.1',
  podCIDRs: ['10.0.1.0/24'],
  networks: ['192.168.0.1/24'],
};
const ASSIGNED = new Map<string, readonly string[]>([
  ['a', ['10.0.1.0/24']],
  ['b', ['10.0.2.0/24', 'fd00::200/120']],
  ['c', ['10.0.3.0/24']],
]);

function node(name: string, podCIDRs: unknown, ip: string | undefined = '192.168.0.2') {
  return {
    metadata: { name },
    spec: {
      ...(ip === undefined ? {} : { addresses: [{ type: 'InternalIP', ip }] }),
      ipam: { podCIDRs },
    },
  } as CiliumNodeLike;
}

function admit(nodes: CiliumNodeLike[], over: Partial<AdmitPeersInput> = {}) {
  return admitPeers({ nodes, self: SELF, assigned: ASSIGNED, nextHopOnLink: true, ...over });
}

describe('admitPeers', () => {
  it("admits a node's IPAM-given CIDRs via its own InternalIP", () => {
    const r = admit([node('b', ['10.0.2.0/24', 'fd00::200/120'])]);
    assert.deepEqual(r.refused, []);
    assert.deepEqual(r.peers, [
      { name: 'b', ip: '192.168.0.2', podCIDRs: ['10.0.2.0/24', 'fd00::200/120'] },
    ]);
  });

  it('passes this node through untouched, never judged against itself', () => {
    const r = admit([node('a', ['10.0.1.0/24'], '192.168.0.1')]);
    assert.deepEqual(r.refused, []);
    assert.deepEqual(r.peers, [{ name: 'a', ip: '192.168.0.1', podCIDRs: ['10.0.1.0/24'] }]);
  });

  // [case, podCIDRs of node b, refused field, reason]
  const hostileCidrs: [string, unknown[], string, RouteRefusalReason][] = [
    ['IPv4 default route', ['0.0.0.0/0'], 'spec.ipam.podCIDRs[0]', 'default_route'],
    ['IPv6 default route', ['::/0'], 'spec.ipam.podCIDRs[0]', 'default_route'],
    ['half of IPv4 (default by halves)', ['0.0.0.0/1'], 'spec.ipam.podCIDRs[0]', 'too_short'],
    ['the other half', ['128.0.0.0/1'], 'spec.ipam.podCIDRs[0]', 'too_short'],
    ['a /7', ['10.0.0.0/7'], 'spec.ipam.podCIDRs[0]', 'too_short'],
    ['half of IPv6', ['8000::/1'], 'spec.ipam.podCIDRs[0]', 'too_short'],
    ['an IPv6 /31', ['fd00::/31'], 'spec.ipam.podCIDRs[0]', 'too_short'],
    ["this node's pod CIDR", ['10.0.1.0/24'], 'spec.ipam.podCIDRs[0]', 'overlaps_local'],
    ["a part of this node's", ['10.0.1.128/25'], 'spec.ipam.podCIDRs[0]', 'overlaps_local'],
    ["a CIDR around this node's", ['10.0.0.0/16'], 'spec.ipam.podCIDRs[0]', 'overlaps_local'],
    ['the underlay subnet', ['192.168.0.0/24'], 'spec.ipam.podCIDRs[0]', 'covers_node_network'],
    ['half the underlay', ['192.168.0.128/25'], 'spec.ipam.podCIDRs[0]', 'covers_node_network'],
    ['a node address as /32', ['192.168.0.1/32'], 'spec.ipam.podCIDRs[0]', 'covers_node_network'],
    ['a foreign CIDR', ['10.99.0.0/24'], 'spec.ipam.podCIDRs[0]', 'not_assigned'],
    ["another node's CIDR", ['10.0.3.0/24'], 'spec.ipam.podCIDRs[0]', 'not_assigned'],
    ['a part of its own CIDR', ['10.0.2.0/25'], 'spec.ipam.podCIDRs[0]', 'not_assigned'],
    ['a wider CIDR around its own', ['10.0.2.0/23'], 'spec.ipam.podCIDRs[0]', 'not_assigned'],
    ['a bare address', ['10.0.2.5'], 'spec.ipam.podCIDRs[0]', 'invalid_cidr'],
    ['host bits set', ['10.0.2.1/24'], 'spec.ipam.podCIDRs[0]', 'invalid_cidr'],
    ['leading zeros', ['010.0.2.0/24'], 'spec.ipam.podCIDRs[0]', 'invalid_cidr'],
    ['a length past 32', ['10.0.2.0/33'], 'spec.ipam.podCIDRs[0]', 'invalid_cidr'],
    ['not a string', [42], 'spec.ipam.podCIDRs[0]', 'invalid_cidr'],
    ['an object', [{ cidr: '10.0.2.0/24' }], 'spec.ipam.podCIDRs[0]', 'invalid_cidr'],
    [
      'route options smuggled',
      ['10.0.2.0/24 via 1.2.3.4'],
      'spec.ipam.podCIDRs[0]',
      'invalid_cidr',
    ],
    ['a newline', ['10.0.2.0/24\nroute add default'], 'spec.ipam.podCIDRs[0]', 'invalid_cidr'],
    ['empty', [''], 'spec.ipam.podCIDRs[0]', 'invalid_cidr'],
    ['good then default', ['10.0.2.0/24', '0.0.0.0/0'], 'spec.ipam.podCIDRs[1]', 'default_route'],
  ];
  for (const [what, cidrs, field, reason] of hostileCidrs) {
    it(`refuses ${what} (${reason}) and keeps the rest`, () => {
      const r = admit([node('b', cidrs), node('c', ['10.0.3.0/24'], '192.168.0.3')]);
      assert.equal(r.refused.length, 1, JSON.stringify(r.refused));
      const [refusal] = r.refused;
      assert.equal(refusal?.node, 'b');
      assert.equal(refusal?.field, field);
      assert.equal(refusal?.reason, reason);
      assert.match(
        refusal?.message ?? '',
        new RegExp(`^CiliumNode b: ${field.replace(/[[\].]/g, '\\$&')}: `),
      );
      const b = r.peers.find((p) => p.name === 'b');
      assert.deepEqual(b?.podCIDRs, cidrs[0] === '10.0.2.0/24' ? ['10.0.2.0/24'] : []);
      assert.equal(b?.ip, '192.168.0.2', 'the next hop stands on its own');
      assert.deepEqual(r.peers.find((p) => p.name === 'c')?.podCIDRs, ['10.0.3.0/24']);
    });
  }

  // [case, InternalIP of node b, reason]
  const hostileHops: [string, string, RouteRefusalReason][] = [
    ['the unspecified address', '0.0.0.0', 'invalid_next_hop'],
    ['loopback', '127.0.0.1', 'invalid_next_hop'],
    ['multicast', '224.0.0.1', 'invalid_next_hop'],
    ['broadcast', '255.255.255.255', 'invalid_next_hop'],
    ['reserved', '240.0.0.1', 'invalid_next_hop'],
    ["this node's address", '192.168.0.1', 'next_hop_is_local'],
    ['a pod of this node', '10.0.1.7', 'next_hop_in_pod_cidr'],
    ['a pod of another node', '10.0.3.7', 'next_hop_in_pod_cidr'],
    ['an address off the underlay', '8.8.8.8', 'next_hop_not_on_link'],
  ];
  for (const [what, ip, reason] of hostileHops) {
    it(`refuses a next hop that is ${what} (${reason}): no route, CIDRs kept for later`, () => {
      const r = admit([node('b', ['10.0.2.0/24'], ip)]);
      assert.deepEqual(
        r.refused.map((x) => [x.field, x.reason]),
        [['spec.addresses[0].ip', reason]],
      );
      assert.equal(r.peers[0]?.ip, undefined);
      assert.deepEqual(planNodeRoutes(r.peers, SELF, 'native'), []);
      assert.deepEqual(planNodeRoutes(r.peers, SELF, 'vxlan'), []);
    });
  }

  it('names the index of the InternalIP that was used', () => {
    const r = admit([
      {
        metadata: { name: 'b' },
        spec: {
          addresses: [
            { type: 'ExternalIP', ip: '203.0.113.9' },
            { type: 'InternalIP', ip: '127.0.0.1' },
          ],
          ipam: { podCIDRs: ['10.0.2.0/24'] },
        },
      },
    ]);
    assert.equal(r.refused[0]?.field, 'spec.addresses[1].ip');
  });

  it('vxlan: the next hop is a tunnel endpoint and need not be a neighbour', () => {
    const r = admit([node('b', ['10.0.2.0/24'], '172.16.9.9')], { nextHopOnLink: false });
    assert.deepEqual(r.refused, []);
    assert.equal(r.peers[0]?.ip, '172.16.9.9');
  });

  it('a node IPAM does not know gets no route at all', () => {
    const r = admit([node('ghost', ['10.0.9.0/24'], '192.168.0.9')]);
    assert.deepEqual(
      r.refused.map((x) => x.reason),
      ['not_assigned'],
    );
    assert.match(r.refused[0]!.message, /IPAM's: none/);
  });

  it('odd shapes (no spec, podCIDRs not a list, addresses not a list) refuse nothing and route nothing', () => {
    const odd = [
      { metadata: { name: 'b' } },
      {
        metadata: { name: 'c' },
        spec: { ipam: { podCIDRs: '10.0.3.0/24' as unknown as string[] } },
      },
      { metadata: { name: 'd' }, spec: { addresses: 'x' as never } },
    ] as CiliumNodeLike[];
    const r = admit(odd);
    assert.deepEqual(r.refused, []);
    assert.deepEqual(planNodeRoutes(r.peers, SELF, 'native'), []);
  });

  it('a CIDR listed twice is admitted once', () => {
    const r = admit([node('b', ['10.0.2.0/24', '10.0.2.0/24'])]);
    assert.deepEqual(r.peers[0]?.podCIDRs, ['10.0.2.0/24']);
  });

  it('property: every planned route is a CIDR IPAM gave that node, via its own address, never a default nor local', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    const cidr = fc.oneof(
      fc.constantFrom(
        '0.0.0.0/0',
        '::/0',
        '10.0.1.0/24',
        '10.0.2.0/24',
        '10.0.3.0/24',
        '192.168.0.0/24',
      ),
      fc
        .tuple(octet, octet, fc.integer({ min: 0, max: 32 }))
        .map(([x, y, len]) => `10.${x}.${y}.0/${len}`),
      fc.string(),
    );
    const hop = fc.oneof(
      fc.constantFrom('192.168.0.1', '192.168.0.2', '127.0.0.1', '10.0.1.9', '8.8.8.8'),
      fc.tuple(octet, octet, octet, octet).map((o) => o.join('.')),
    );
    const peerNode = fc.record({
      name: fc.constantFrom('a', 'b', 'c', 'x'),
      ip: hop,
      cidrs: fc.array(cidr, { maxLength: 4 }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(peerNode, { maxLength: 4, selector: (p) => p.name }),
        fc.boolean(),
        (spec, native) => {
          const nodes = spec.map((p) => node(p.name, p.cidrs, p.ip));
          const r = admit(nodes, { nextHopOnLink: native });
          const routes = planNodeRoutes(r.peers, SELF, native ? 'native' : 'vxlan');
          for (const route of routes) {
            assert.notEqual(route.dst, '0.0.0.0/0');
            assert.notEqual(route.dst, '10.0.1.0/24');
            const owner = r.peers.find(
              (p) => p.name !== 'a' && p.podCIDRs.includes(route.dst) && p.ip !== undefined,
            );
            assert.ok(owner, `${route.dst} belongs to an admitted peer`);
            assert.ok(ASSIGNED.get(owner.name)?.includes(route.dst), `${route.dst} is IPAM's`);
            if (native) {
              assert.ok(
                nodes.some(
                  (n) => n.metadata.name === owner.name && n.spec?.addresses?.[0]?.ip === route.via,
                ),
                "via the node's own InternalIP",
              );
              assert.match(route.via ?? '', /^192\.168\.0\.(?!1$)\d+$/);
            }
          }
          // every field that is not admitted is refused by name, once
          const fields = r.refused.map((x) => `${x.node} ${x.field}`);
          assert.equal(new Set(fields).size, fields.length);
        },
      ),
      { numRuns: 500 },
    );
  });
});
