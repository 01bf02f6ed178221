import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { prefixContainsPrefix, type IpPrefix } from '@ciliate/netaddr';

import { IpamError } from './errors.js';
import { cidrsOverlap, familyOf, parseCidr } from './ip.js';
import {
  CLUSTER_POOL_DEFAULTS,
  type ClusterPoolConfig,
  type NodeCidrState,
  allocateNodeCidrs,
  carveNodeCidrs,
  checkNodeCidrState,
  clusterPoolConfig,
  emptyNodeCidrState,
  lookupNodeCidrs,
  nodeCidrUsage,
  occupyNodeCidrs,
  podCidrList,
  releaseNodeCidrs,
  restoreNodeCidrs,
  setKubernetesNodeCidrs,
  validateNodePodCidrs,
} from './node-cidrs.js';

function fail(fn: () => unknown): IpamError {
  try {
    fn();
  } catch (err) {
    if (err instanceof IpamError) return err;
    throw err;
  }
  assert.fail('expected an IpamError');
}

function viaJson<T>(state: T): T {
  return JSON.parse(JSON.stringify(state)) as T;
}

describe('cluster-pool configuration', () => {
  it("defaults to Cilium's Helm values", () => {
    assert.deepEqual(clusterPoolConfig(), { ipv4: { cidrs: ['10.0.0.0/8'], maskSize: 24 } });
    assert.deepEqual(clusterPoolConfig({ enableIPv6: true }), {
      ipv4: { cidrs: ['10.0.0.0/8'], maskSize: 24 },
      ipv6: { cidrs: ['fd00::/104'], maskSize: 120 },
    });
    assert.deepEqual(CLUSTER_POOL_DEFAULTS.clusterPoolIPv6PodCIDRList, ['fd00::/104']);
  });

  const bad: Array<[string, Parameters<typeof clusterPoolConfig>[0], string, string]> = [
    [
      'mask too long',
      { clusterPoolIPv4MaskSize: 33 },
      'ipam.operator.clusterPoolIPv4MaskSize: Invalid value: 33',
      'INVALID_ARGUMENT',
    ],
    [
      'mask leaves no pod',
      { clusterPoolIPv4MaskSize: 31 },
      'must be at most 30',
      'INVALID_ARGUMENT',
    ],
    [
      'bad cidr',
      { clusterPoolIPv4PodCIDRList: ['10.0.0.0/33'] },
      'ipam.operator.clusterPoolIPv4PodCIDRList[0]: Invalid value: "10.0.0.0/33": prefix length must be 0-32',
      'INVALID_CIDR',
    ],
    [
      'host bits',
      { clusterPoolIPv4PodCIDRList: ['10.0.0.1/8'] },
      'host bits are set',
      'INVALID_CIDR',
    ],
    [
      'wrong family',
      { clusterPoolIPv4PodCIDRList: ['fd00::/104'] },
      'must be an IPv4 CIDR',
      'FAMILY_MISMATCH',
    ],
    [
      'cidr smaller than mask',
      { clusterPoolIPv4PodCIDRList: ['10.0.0.0/26'] },
      'smaller than one per-node CIDR',
      'INVALID_ARGUMENT',
    ],
    [
      'too many slots',
      { clusterPoolIPv4PodCIDRList: ['0.0.0.0/4'], clusterPoolIPv4MaskSize: 30 },
      'at most 2^24',
      'INVALID_ARGUMENT',
    ],
    [
      'overlapping list',
      { clusterPoolIPv4PodCIDRList: ['10.0.0.0/8', '10.1.0.0/16'] },
      'overlaps ipam.operator.clusterPoolIPv4PodCIDRList[0] (10.0.0.0/8)',
      'CIDR_CONFLICT',
    ],
    ['empty list', { clusterPoolIPv4PodCIDRList: [] }, 'Required value', 'INVALID_ARGUMENT'],
    ['nothing enabled', { enableIPv4: false }, 'at least one of IPv4 and IPv6', 'INVALID_ARGUMENT'],
  ];
  for (const [what, settings, message, code] of bad) {
    it(`refuses ${what}`, () => {
      const err = fail(() => clusterPoolConfig(settings));
      assert.equal(err.code, code);
      assert.ok(err.message.includes(message), err.message);
    });
  }
});

describe('cluster-pool carving: scenarios', () => {
  const v4 = clusterPoolConfig();
  const dual = clusterPoolConfig({ enableIPv6: true });

  it('carves /24s in order, idempotent per node', () => {
    let s = emptyNodeCidrState();
    const a = allocateNodeCidrs(s, v4, 'node-a');
    assert.deepEqual(a.cidrs, { ipv4: '10.0.0.0/24' });
    s = a.state;
    const again = allocateNodeCidrs(s, v4, 'node-a');
    assert.equal(again.created, false);
    assert.equal(again.state, s);
    s = allocateNodeCidrs(s, v4, 'node-b').state;
    assert.deepEqual(lookupNodeCidrs(s, 'node-b'), { ipv4: '10.0.1.0/24' });
    assert.deepEqual(s, {
      v: 1,
      nodes: [
        { node: 'node-a', ipv4: '10.0.0.0/24' },
        { node: 'node-b', ipv4: '10.0.1.0/24' },
      ],
      last: { ipv4: '10.0.1.0/24' },
    });
  });

  it('dual stack gives one CIDR per family', () => {
    let s = emptyNodeCidrState();
    s = allocateNodeCidrs(s, dual, 'a').state;
    const b = allocateNodeCidrs(s, dual, 'b');
    assert.deepEqual(b.cidrs, { ipv4: '10.0.1.0/24', ipv6: 'fd00::100/120' });
    assert.deepEqual(podCidrList(b.cidrs), ['10.0.1.0/24', 'fd00::100/120']);
    // Enabling IPv6 later adds only the missing family.
    let t = allocateNodeCidrs(emptyNodeCidrState(), v4, 'a').state;
    t = allocateNodeCidrs(t, dual, 'a').state;
    assert.deepEqual(lookupNodeCidrs(t, 'a'), { ipv4: '10.0.0.0/24', ipv6: 'fd00::/120' });
  });

  it('does not reuse a released CIDR at once, and wraps around when the end is reached', () => {
    const cfg = clusterPoolConfig({ clusterPoolIPv4PodCIDRList: ['10.0.0.0/22'] });
    let s = emptyNodeCidrState();
    for (const n of ['a', 'b', 'c']) s = allocateNodeCidrs(s, cfg, n).state;
    const r = releaseNodeCidrs(s, 'a', cfg);
    assert.deepEqual(r.released, { ipv4: '10.0.0.0/24' });
    s = r.state;
    s = allocateNodeCidrs(s, cfg, 'd').state;
    assert.equal(lookupNodeCidrs(s, 'd')?.ipv4, '10.0.3.0/24');
    s = allocateNodeCidrs(s, cfg, 'e').state;
    assert.equal(lookupNodeCidrs(s, 'e')?.ipv4, '10.0.0.0/24');
    assert.equal(releaseNodeCidrs(s, 'zzz', cfg).released, null);
  });

  it('reports exhaustion as POOL_EXHAUSTED and changes nothing (all families or none)', () => {
    const cfg = clusterPoolConfig({
      enableIPv6: true,
      clusterPoolIPv4PodCIDRList: ['10.0.0.0/23'],
      clusterPoolIPv6PodCIDRList: ['fd00::/118'],
    });
    let s = emptyNodeCidrState();
    s = allocateNodeCidrs(s, cfg, 'a').state;
    s = allocateNodeCidrs(s, cfg, 'b').state;
    const err = fail(() => allocateNodeCidrs(s, cfg, 'c'));
    assert.equal(err.code, 'POOL_EXHAUSTED');
    assert.ok(err.message.includes('all 2 IPv4 /24 CIDRs of 10.0.0.0/23 are in use'), err.message);
    assert.equal(lookupNodeCidrs(s, 'c'), undefined);
    assert.equal(nodeCidrUsage(s, cfg).families.ipv6?.used, 2, 'no IPv6 CIDR was carved for c');
    s = releaseNodeCidrs(s, 'a', cfg).state;
    // IPv4 wraps around to the freed CIDR; IPv6 still has never-used CIDRs after the last one.
    assert.deepEqual(allocateNodeCidrs(s, cfg, 'c').cidrs, {
      ipv4: '10.0.0.0/24',
      ipv6: 'fd00::200/120',
    });
  });

  it('moves on to the next cluster CIDR of the list', () => {
    const cfg = clusterPoolConfig({
      clusterPoolIPv4PodCIDRList: ['10.0.0.0/24', '192.168.0.0/23'],
    });
    const r = carveNodeCidrs(emptyNodeCidrState(), cfg, ['a', 'b', 'c', 'd']);
    assert.deepEqual(
      ['a', 'b', 'c', 'd'].map((n) => r.cidrs[n]?.ipv4),
      ['10.0.0.0/24', '192.168.0.0/24', '192.168.1.0/24', undefined],
    );
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]?.node, 'd');
    assert.equal(r.errors[0]?.error.code, 'POOL_EXHAUSTED');
  });

  it('restores CiliumNode CIDRs and refuses conflicts', () => {
    let s = emptyNodeCidrState();
    s = occupyNodeCidrs(s, dual, 'old-1', ['10.0.5.0/24', 'fd00::500/120']).state;
    s = occupyNodeCidrs(s, dual, 'old-1', ['10.0.5.0/24']).state; // idempotent
    let e = fail(() => occupyNodeCidrs(s, dual, 'old-2', ['10.0.5.0/24']));
    assert.equal(e.code, 'CIDR_CONFLICT');
    assert.ok(
      e.message.includes(
        'spec.ipam.podCIDRs[0]: Invalid value: "10.0.5.0/24": overlaps the pod CIDR of node old-1',
      ),
      e.message,
    );
    e = fail(() => occupyNodeCidrs(s, dual, 'old-2', ['10.0.4.0/23']));
    assert.equal(e.code, 'CIDR_CONFLICT', 'a larger CIDR covering old-1 conflicts too');
    e = fail(() => occupyNodeCidrs(s, dual, 'old-1', ['10.0.6.0/24']));
    assert.equal(e.code, 'CIDR_CONFLICT');
    assert.ok(e.message.includes('already holds 10.0.5.0/24'));
    e = fail(() => occupyNodeCidrs(s, dual, 'x', ['172.16.0.0/24']));
    assert.equal(e.code, 'CIDR_OUTSIDE_POOL');
    e = fail(() => occupyNodeCidrs(s, v4, 'x', ['fd00::900/120']));
    assert.equal(e.code, 'FAMILY_DISABLED');
    e = fail(() => occupyNodeCidrs(s, dual, 'x', ['10.0.7.0/24', '10.0.8.0/24']));
    assert.equal(e.code, 'INVALID_ARGUMENT');
    // A /23 blocks two /24 slots; new carving skips everything restored.
    s = occupyNodeCidrs(s, dual, 'big', ['10.0.0.0/23']).state;
    const fresh = carveNodeCidrs(s, dual, ['n1', 'n2', 'n3', 'n4']);
    assert.deepEqual(
      ['n1', 'n2', 'n3', 'n4'].map((n) => fresh.cidrs[n]?.ipv4),
      ['10.0.2.0/24', '10.0.3.0/24', '10.0.4.0/24', '10.0.6.0/24'],
      'carving skips every restored CIDR',
    );
  });

  it('restoreNodeCidrs applies many at once and reports the rejects', () => {
    const r = restoreNodeCidrs(emptyNodeCidrState(), v4, [
      { node: 'a', podCIDRs: ['10.0.0.0/24'] },
      { node: 'b', podCIDRs: ['10.0.0.0/24'] },
      { node: 'c', podCIDRs: ['10.0.2.0/24'] },
      { node: 'd', podCIDRs: ['bogus'] },
    ]);
    assert.deepEqual(
      r.state.nodes.map((e) => e.node),
      ['a', 'c'],
    );
    assert.deepEqual(
      r.rejected.map((x) => [x.node, x.error.code]),
      [
        ['b', 'CIDR_CONFLICT'],
        ['d', 'INVALID_CIDR'],
      ],
    );
    assert.ok(
      r.rejected[1]?.error.message.startsWith('entries[3].podCIDRs[0]: Invalid value: "bogus"'),
    );
  });

  it('reports stored CIDRs the configuration no longer accounts for, and never carves over them', () => {
    let s = carveNodeCidrs(emptyNodeCidrState(), v4, ['a', 'b']).state;
    const narrower = clusterPoolConfig({
      clusterPoolIPv4PodCIDRList: ['10.0.1.0/24', '10.0.2.0/23'],
    });
    const checked = checkNodeCidrState(viaJson(s), narrower);
    assert.deepEqual(
      checked.issues.map((i) => [i.node, i.problem]),
      [['a', 'outside_pool']],
    );
    s = checked.state;
    const r = allocateNodeCidrs(s, narrower, 'c');
    assert.equal(r.cidrs.ipv4, '10.0.2.0/24', 'b still holds 10.0.1.0/24');
    // Overlapping stored CIDRs (a corrupt document) are reported, not fatal.
    const corrupt = {
      v: 1,
      nodes: [
        { node: 'x', ipv4: '10.0.0.0/24' },
        { node: 'y', ipv4: '10.0.0.0/23' },
      ],
    } as NodeCidrState;
    const c2 = checkNodeCidrState(corrupt, v4);
    assert.deepEqual(
      c2.issues.map((i) => [i.node, i.problem]),
      [['y', 'overlap']],
    );
    const after = releaseNodeCidrs(c2.state, 'x', v4).state;
    assert.equal(
      allocateNodeCidrs(after, v4, 'z').cidrs.ipv4,
      '10.0.2.0/24',
      'y still blocks 10.0.0.0/23',
    );
    assert.equal(
      fail(() => checkNodeCidrState({ v: 1, nodes: [{ node: 'x', ipv4: 'nope' }] }, v4)).code,
      'INVALID_STATE',
    );
    assert.equal(fail(() => checkNodeCidrState({ v: 9, nodes: [] }, v4)).code, 'INVALID_STATE');
    const twice = { v: 1, nodes: [{ node: 'x', ipv4: '10.0.0.0/24' }, { node: 'x' }] };
    assert.ok(
      fail(() => checkNodeCidrState(twice, v4)).message.includes(
        'state.nodes[1].node: Invalid value: "x": is listed twice',
      ),
    );
    const sloppy = { v: 1, nodes: [{ node: 'x', ipv4: '10.0.0.000/24' }] };
    assert.equal(fail(() => checkNodeCidrState(sloppy, v4)).code, 'INVALID_STATE');
    assert.equal(fail(() => checkNodeCidrState({ v: 1, nodes: {} }, v4)).code, 'INVALID_STATE');
  });

  it('never changes a state it was given, and freezes what it returns', () => {
    const parsed = viaJson(carveNodeCidrs(emptyNodeCidrState(), dual, ['a', 'b']).state);
    const before = JSON.stringify(parsed);
    const next = allocateNodeCidrs(releaseNodeCidrs(parsed, 'a', dual).state, dual, 'c').state;
    assert.equal(JSON.stringify(parsed), before);
    assert.ok(!Object.isFrozen(parsed.nodes[0]));
    assert.ok(Object.isFrozen(next) && Object.isFrozen(next.nodes));
    assert.ok(next.nodes.every((e) => Object.isFrozen(e)));
    assert.deepEqual(
      next.nodes.map((e) => e.node),
      ['b', 'c'],
    );
  });

  it('refuses bad node names', () => {
    assert.equal(
      fail(() => allocateNodeCidrs(emptyNodeCidrState(), v4, '')).code,
      'INVALID_ARGUMENT',
    );
    assert.equal(
      fail(() => allocateNodeCidrs(emptyNodeCidrState(), v4, 'a/b')).code,
      'INVALID_ARGUMENT',
    );
    // The one node-name rule (contracts): Kubernetes' DNS-1123 subdomain, nothing looser.
    for (const bad of ['Node1', 'n_1', 'n1.', 'a'.repeat(254)]) {
      assert.match(
        fail(() => allocateNodeCidrs(emptyNodeCidrState(), v4, bad)).message,
        /must be a lower-case DNS-1123 subdomain/,
        bad,
      );
    }
  });

  it('takes node names with dots, as Kubernetes names nodes', () => {
    const r = allocateNodeCidrs(emptyNodeCidrState(), v4, 'n1.example');
    assert.deepEqual(
      r.state.nodes.map((e) => e.node),
      ['n1.example'],
    );
  });

  it('carves 5,000 nodes fast (in one transition, and node by node on a full state)', () => {
    const names = Array.from({ length: 5000 }, (_, i) => `node-${i}`);
    let t0 = performance.now();
    const batch = carveNodeCidrs(emptyNodeCidrState(), dual, names);
    const batchMs = performance.now() - t0;
    assert.equal(batch.errors.length, 0);
    // 4999 = 19 * 256 + 135
    assert.deepEqual(lookupNodeCidrs(batch.state, 'node-4999'), {
      ipv4: '10.19.135.0/24',
      ipv6: 'fd00::13:8700/120',
    });
    assert.ok(batchMs < 1000, `batch carving took ${batchMs} ms`);
    // Node by node, each a separate state transition on a state of 4,500+ nodes.
    let s = carveNodeCidrs(emptyNodeCidrState(), dual, names.slice(0, 4500)).state;
    t0 = performance.now();
    for (const n of names.slice(4500)) s = allocateNodeCidrs(s, dual, n).state;
    const perNodeMs = (performance.now() - t0) / 500;
    assert.deepEqual(s.nodes, batch.state.nodes);
    assert.ok(perNodeMs < 10, `one node took ${perNodeMs} ms`);
  });
});

describe('kubernetes mode', () => {
  it('validates Node.spec.podCIDRs', () => {
    assert.deepEqual(validateNodePodCidrs(['10.244.1.0/24', 'fd00:10:244:1::/64']), {
      ipv4: '10.244.1.0/24',
      ipv6: 'fd00:10:244:1::/64',
    });
    assert.deepEqual(validateNodePodCidrs(['10.244.1.7/24']), { ipv4: '10.244.1.0/24' });
    const cases: Array<[unknown, string]> = [
      [
        ['10.0.0.0/24', '10.0.1.0/24'],
        'spec.podCIDRs[1]: Invalid value: "10.0.1.0/24": may specify no more than one CIDR for each IP family',
      ],
      [['a', 'b', 'c'], 'may hold at most two CIDRs'],
      [
        ['10.0.0.0/33'],
        'spec.podCIDRs[0]: Invalid value: "10.0.0.0/33": prefix length must be 0-32',
      ],
      [['10.0.0.0/31'], 'prefix length of at most 30'],
      ['10.0.0.0/24', 'must be a list'],
    ];
    for (const [input, message] of cases) {
      const err = fail(() => validateNodePodCidrs(input));
      assert.ok(err.message.includes(message), err.message);
    }
  });

  it('records CIDRs and refuses overlaps between nodes', () => {
    let s = emptyNodeCidrState();
    s = setKubernetesNodeCidrs(s, 'a', ['10.244.0.0/24']).state;
    s = setKubernetesNodeCidrs(s, 'b', ['10.244.1.0/24', 'fd00:1::/64']).state;
    assert.equal(setKubernetesNodeCidrs(s, 'b', ['10.244.1.0/24', 'fd00:1::/64']).created, false);
    const e = fail(() => setKubernetesNodeCidrs(s, 'c', ['10.244.0.0/16']));
    assert.equal(e.code, 'CIDR_CONFLICT');
    assert.ok(
      e.message.includes('overlaps the pod CIDR of node a, b') || e.message.includes('node b, a'),
      e.message,
    );
    assert.equal(fail(() => setKubernetesNodeCidrs(s, 'c', ['fd00:1::/48'])).code, 'CIDR_CONFLICT');
    // A node may change its own CIDR; then the old one is free for others.
    s = setKubernetesNodeCidrs(s, 'a', ['10.244.9.0/24']).state;
    s = setKubernetesNodeCidrs(s, 'c', ['10.244.0.0/24']).state;
    s = setKubernetesNodeCidrs(s, 'c', []).state;
    assert.equal(lookupNodeCidrs(s, 'c'), undefined);
    s = releaseNodeCidrs(s, 'b').state;
    assert.deepEqual(
      s.nodes.map((e) => e.node),
      ['a'],
    );
    assert.deepEqual(nodeCidrUsage(s), { nodes: 1, families: {}, issues: [] });
  });
});

type NodeOp =
  | { kind: 'alloc'; node: number }
  | { kind: 'release'; node: number }
  | { kind: 'occupy'; node: number; slot: number; prefix: number }
  | { kind: 'json' };

const nodeOp: fc.Arbitrary<NodeOp> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('alloc' as const), node: fc.nat(30) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), node: fc.nat(30) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('occupy' as const),
      node: fc.nat(30),
      slot: fc.nat(40),
      prefix: fc.integer({ min: 22, max: 26 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'json' as const }) },
);

describe('cluster-pool carving: properties', () => {
  const configs: ClusterPoolConfig[] = [
    clusterPoolConfig({ clusterPoolIPv4PodCIDRList: ['10.0.0.0/21'], clusterPoolIPv4MaskSize: 24 }),
    clusterPoolConfig({
      enableIPv6: true,
      clusterPoolIPv4PodCIDRList: ['10.0.0.0/22', '10.0.8.0/23'],
      clusterPoolIPv6PodCIDRList: ['fd00::/116', 'fd00:1::/118'],
    }),
  ];

  it('never overlaps, stays inside the cluster CIDRs, keeps nodes stable; usage adds up', () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 1), fc.array(nodeOp, { maxLength: 80 }), (ci, ops) => {
        const cfg = configs[ci] as ClusterPoolConfig;
        const clusters = {
          ipv4: (cfg.ipv4?.cidrs ?? []).map((c) => parseCidr(c)),
          ipv6: (cfg.ipv6?.cidrs ?? []).map((c) => parseCidr(c)),
        };
        let s = emptyNodeCidrState();
        for (const op of ops) {
          const before = s;
          if (op.kind === 'json') {
            s = viaJson(s);
          } else if (op.kind === 'alloc') {
            try {
              const r = allocateNodeCidrs(s, cfg, `n${op.node}`);
              const prev = lookupNodeCidrs(before, `n${op.node}`);
              if (prev?.ipv4 !== undefined)
                assert.equal(r.cidrs.ipv4, prev.ipv4, 'stable per node');
              if (prev?.ipv6 !== undefined)
                assert.equal(r.cidrs.ipv6, prev.ipv6, 'stable per node');
              s = r.state;
            } catch (e) {
              assert.ok(e instanceof IpamError && e.code === 'POOL_EXHAUSTED', String(e));
              // Exhaustion must be real: no free slot for some enabled, missing family.
              const usage = nodeCidrUsage(s, cfg);
              const cur = lookupNodeCidrs(s, `n${op.node}`) ?? {};
              assert.ok(
                (['ipv4', 'ipv6'] as const).some(
                  (f) =>
                    usage.families[f] !== undefined &&
                    cur[f] === undefined &&
                    usage.families[f]?.free === 0,
                ),
              );
            }
          } else if (op.kind === 'release') {
            s = releaseNodeCidrs(s, `n${op.node}`, cfg).state;
          } else {
            const base = clusters.ipv4[0] as IpPrefix;
            const size = 1n << BigInt(32 - op.prefix);
            const network = base.network + BigInt(op.slot) * size;
            const text = `${[24, 16, 8, 0].map((sh) => Number((network >> BigInt(sh)) & 255n)).join('.')}/${op.prefix}`;
            try {
              s = occupyNodeCidrs(s, cfg, `n${op.node}`, [text]).state;
            } catch (e) {
              assert.ok(e instanceof IpamError, String(e));
              assert.ok(['CIDR_CONFLICT', 'CIDR_OUTSIDE_POOL'].includes(e.code), e.message);
            }
          }
          // Invariants.
          const all: Array<{ node: string; cidr: IpPrefix }> = [];
          for (const { node, ...c } of s.nodes) {
            for (const f of ['ipv4', 'ipv6'] as const) {
              if (c[f] !== undefined) all.push({ node, cidr: parseCidr(c[f]) });
            }
          }
          for (let i = 0; i < all.length; i++) {
            const a = all[i] as { node: string; cidr: IpPrefix };
            assert.ok(
              clusters[familyOf(a.cidr)].some((cl) => prefixContainsPrefix(cl, a.cidr)),
              `${a.node} is inside a cluster CIDR`,
            );
            for (let j = i + 1; j < all.length; j++) {
              const b = all[j] as { node: string; cidr: IpPrefix };
              assert.ok(!cidrsOverlap(a.cidr, b.cidr), `${a.node} and ${b.node} overlap`);
            }
          }
          const usage = nodeCidrUsage(s, cfg);
          assert.deepEqual(usage.issues, []);
          for (const f of ['ipv4', 'ipv6'] as const) {
            const u = usage.families[f];
            if (u === undefined) continue;
            assert.equal(u.used + u.free, u.capacity);
            const mask = cfg[f]?.maskSize as number;
            const slots = all
              .filter((x) => familyOf(x.cidr) === f)
              .reduce((n, x) => n + 2 ** Math.max(0, mask - x.cidr.length), 0);
            assert.equal(u.used, slots, 'used slots = slots covered by node CIDRs');
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
