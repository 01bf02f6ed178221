import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { prefixContainsIp } from '@ciliate/netaddr';
import fc from 'fast-check';

import { IpamError } from './errors.js';
import { parseCidr, parseIp } from './ip.js';
import {
  LB_CONDITIONS,
  type LbCondition,
  type LbIpamOptions,
  type LbIpamState,
  type LbPool,
  type LbPoolBlock,
  type LbReconcileResult,
  type LbService,
  type LbServiceResult,
  emptyLbIpamState,
  lbAddressesOf,
  lbSharingObstacle,
  reconcileLb,
} from './lb-ipam.js';

const NOW = '2025-06-01T12:00:00Z';
const LATER = '2025-06-01T12:05:00Z';

function lbPool(
  name: string,
  blocks: LbPoolBlock[],
  spec: Partial<LbPool['spec']> = {},
  creationTimestamp = '2025-01-01T00:00:00Z',
): LbPool {
  return { metadata: { name, creationTimestamp }, spec: { blocks, ...spec } };
}

interface SvcOpts {
  ips?: string;
  loadBalancerIP?: string;
  sharingKey?: string;
  crossNamespace?: string;
  ports?: number[];
  type?: string;
  loadBalancerClass?: string;
  ipFamilies?: string[];
  ipFamilyPolicy?: string;
  labels?: Record<string, string>;
  externalTrafficPolicy?: string;
  selector?: Record<string, string>;
  creationTimestamp?: string;
  status?: LbService['status'];
}

function lbService(namespace: string, name: string, o: SvcOpts = {}): LbService {
  const annotations: Record<string, string> = {};
  if (o.ips !== undefined) annotations['lbipam.cilium.io/ips'] = o.ips;
  if (o.sharingKey !== undefined) annotations['lbipam.cilium.io/sharing-key'] = o.sharingKey;
  if (o.crossNamespace !== undefined) {
    annotations['lbipam.cilium.io/sharing-cross-namespace'] = o.crossNamespace;
  }
  return {
    metadata: {
      name,
      namespace,
      annotations,
      ...(o.labels ? { labels: o.labels } : {}),
      creationTimestamp: o.creationTimestamp ?? '2025-02-01T00:00:00Z',
    },
    spec: {
      type: o.type ?? 'LoadBalancer',
      ports: (o.ports ?? [80]).map((port) => ({ port, protocol: 'TCP' })),
      selector: o.selector ?? { app: name },
      ...(o.loadBalancerIP ? { loadBalancerIP: o.loadBalancerIP } : {}),
      ...(o.loadBalancerClass ? { loadBalancerClass: o.loadBalancerClass } : {}),
      ...(o.ipFamilies ? { ipFamilies: o.ipFamilies } : {}),
      ...(o.ipFamilyPolicy ? { ipFamilyPolicy: o.ipFamilyPolicy } : {}),
      ...(o.externalTrafficPolicy ? { externalTrafficPolicy: o.externalTrafficPolicy } : {}),
    },
    ...(o.status ? { status: o.status } : {}),
  };
}

function svcResult(r: LbReconcileResult, key: string): LbServiceResult {
  const s = r.services.find((x) => x.key === key);
  assert.ok(s, `no result for ${key}`);
  return s;
}

function condition(r: LbServiceResult): LbCondition | undefined {
  return r.status?.conditions.find((c) => c.type === LB_CONDITIONS.requestSatisfied);
}

/** The Services as the API server holds them after the status write-back. */
function writeBack(services: LbService[], r: LbReconcileResult): LbService[] {
  return services.map((s) => {
    const res = r.services.find((x) => x.key === `${s.metadata.namespace}/${s.metadata.name}`);
    return res?.status ? { ...s, status: res.status } : s;
  });
}

function writeBackPools(pools: LbPool[], r: LbReconcileResult): LbPool[] {
  return pools.map((p) => {
    const res = r.pools.find((x) => x.name === p.metadata.name);
    return res ? { ...p, status: { conditions: res.conditions } } : p;
  });
}

function run(
  pools: LbPool[],
  services: LbService[],
  prev: LbIpamState = emptyLbIpamState(),
  opts: Partial<LbIpamOptions> = {},
): LbReconcileResult {
  return reconcileLb(pools, services, prev, { now: NOW, ...opts });
}

// The seed manifests, built by hand: 05-lb-ippool.yaml and 07-lb-services.yaml.
const seedPool = lbPool('default-pool', [{ cidr: '10.0.6.0/24' }]);
const plex = lbService('media', 'plex', { ips: '10.0.6.14', ports: [32400] });
const smtp = lbService('mail', 'smtp-relay', { ips: '10.0.6.15', ports: [25] });

describe('LB-IPAM: the seed manifests', () => {
  it('plex gets 10.0.6.14 and smtp-relay 10.0.6.15; a third Service gets another address', () => {
    const third = lbService('default', 'web', { ports: [443] });
    const r = run([seedPool], [third, plex, smtp]);
    assert.deepEqual(svcResult(r, 'media/plex').ips, ['10.0.6.14']);
    assert.deepEqual(svcResult(r, 'mail/smtp-relay').ips, ['10.0.6.15']);
    const web = svcResult(r, 'default/web');
    assert.equal(web.ips.length, 1);
    const ip = web.ips[0] as string;
    assert.ok(prefixContainsIp(parseCidr('10.0.6.0/24'), parseIp(ip)), ip);
    assert.ok(!['10.0.6.14', '10.0.6.15'].includes(ip));
    for (const key of ['media/plex', 'mail/smtp-relay', 'default/web']) {
      const res = svcResult(r, key);
      assert.equal(res.statusChanged, true);
      assert.deepEqual(
        res.status?.loadBalancer.ingress,
        res.ips.map((i) => ({ ip: i })),
      );
      assert.deepEqual(condition(res), {
        type: 'cilium.io/IPAMRequestSatisfied',
        status: 'True',
        reason: 'satisfied',
        message: '',
        lastTransitionTime: NOW,
      });
    }
    assert.deepEqual(r.state.ips['10.0.6.14'], { pool: 'default-pool', services: ['media/plex'] });
    const pool = r.pools[0];
    assert.equal(pool?.counts.total, 256n);
    assert.equal(pool?.counts.used, 3n);
    assert.equal(pool?.counts.available, 253n);
    assert.deepEqual(
      pool?.conditions.map((c) => [c.type, c.status, c.reason, c.message]),
      [
        ['cilium.io/IPsTotal', 'Unknown', 'noreason', '256'],
        ['cilium.io/IPsAvailable', 'Unknown', 'noreason', '253'],
        ['cilium.io/IPsUsed', 'Unknown', 'noreason', '3'],
        ['cilium.io/PoolConflict', 'False', 'resolved', ''],
      ],
    );
  });

  it('a request outside every pool, or already taken, gets a clear condition', () => {
    const outside = lbService('media', 'outside', { ips: '10.0.7.5' });
    const taken = lbService('media', 'copycat', {
      ips: '10.0.6.14',
      creationTimestamp: '2025-05-01T00:00:00Z',
    });
    const takenOtherNs = lbService('other', 'copycat', { loadBalancerIP: '10.0.6.15' });
    const r = run([seedPool], [plex, smtp, outside, taken, takenOtherNs]);
    const o = svcResult(r, 'media/outside');
    assert.deepEqual(o.ips, []);
    assert.deepEqual(o.status?.loadBalancer.ingress, []);
    assert.equal(condition(o)?.status, 'False');
    assert.equal(condition(o)?.reason, 'no_pool');
    assert.equal(condition(o)?.message, "No pool exists with a CIDR containing '10.0.7.5'");
    const t = svcResult(r, 'media/copycat');
    assert.equal(condition(t)?.reason, 'already_allocated');
    assert.equal(
      condition(t)?.message,
      "The IP '10.0.6.14' is already allocated to service media/plex",
    );
    const t2 = svcResult(r, 'other/copycat');
    assert.equal(
      condition(t2)?.message,
      "The IP '10.0.6.15' is already allocated to a service in another namespace",
      'names of Services in other namespaces are not disclosed',
    );
    assert.equal(r.summary.servicesUnsatisfied, 3);
    assert.deepEqual(svcResult(r, 'media/plex').ips, ['10.0.6.14'], 'the holder keeps it');
  });

  it('is stable: a second pass with the written-back statuses changes nothing', () => {
    const third = lbService('default', 'web');
    let services = [plex, smtp, third];
    let pools = [seedPool];
    const first = run(pools, services);
    services = writeBack(services, first);
    pools = writeBackPools(pools, first);
    const second = reconcileLb(
      pools,
      services,
      JSON.parse(JSON.stringify(first.state)) as LbIpamState,
      { now: LATER },
    );
    assert.equal(second.changed, false);
    assert.deepEqual(second.state, first.state);
    assert.deepEqual(second.events, []);
    assert.ok(second.services.every((s) => !s.statusChanged));
    assert.ok(second.pools.every((p) => !p.statusChanged));
    // lastTransitionTime stays while the status stays.
    assert.equal(condition(svcResult(second, 'default/web'))?.lastTransitionTime, NOW);
    // A new Service does not move anyone.
    const fourth = lbService('default', 'api');
    const third2 = reconcileLb(pools, [...services, fourth], second.state, { now: LATER });
    for (const key of ['media/plex', 'mail/smtp-relay', 'default/web']) {
      assert.deepEqual(svcResult(third2, key).ips, svcResult(first, key).ips);
    }
    assert.equal(svcResult(third2, 'default/api').ips.length, 1);
  });
});

describe('LB-IPAM: pools', () => {
  it('hands out the first and last address by default, not with allowFirstLastIPs: No', () => {
    const yes = run(
      [lbPool('p', [{ cidr: '10.1.0.0/30' }])],
      [lbService('a', 's1'), lbService('a', 's2'), lbService('a', 's3'), lbService('a', 's4')],
    );
    assert.deepEqual(
      yes.services.map((s) => s.ips[0]),
      ['10.1.0.0', '10.1.0.1', '10.1.0.2', '10.1.0.3'],
    );
    const no = run(
      [
        lbPool(
          'p',
          [
            { cidr: '10.1.0.0/30' },
            { cidr: '10.2.0.0/31' },
            { start: '10.3.0.0', stop: '10.3.0.3' },
          ],
          { allowFirstLastIPs: 'No' },
        ),
      ],
      Array.from({ length: 9 }, (_, i) =>
        lbService('a', `s${i}`, { creationTimestamp: `2025-02-01T00:00:0${i}Z` }),
      ),
    );
    assert.deepEqual(
      no.services.map((s) => s.ips[0]),
      // /30: .1 and .2 only; /31: both; a start/stop range: all four.
      [
        '10.1.0.1',
        '10.1.0.2',
        '10.2.0.0',
        '10.2.0.1',
        '10.3.0.0',
        '10.3.0.1',
        '10.3.0.2',
        '10.3.0.3',
        undefined,
      ],
    );
    const last = svcResult(no, 'a/s8');
    assert.equal(condition(last)?.reason, 'out_of_ips');
    assert.equal(no.pools[0]?.counts.total, 8n);
    assert.equal(no.pools[0]?.counts.available, 0n);
    const reserved = run(
      [lbPool('p', [{ cidr: '10.1.0.0/24' }], { allowFirstLastIPs: 'No' })],
      [lbService('a', 'x', { ips: '10.1.0.255' })],
    );
    assert.equal(condition(svcResult(reserved, 'a/x'))?.reason, 'already_allocated');
    assert.ok(condition(svcResult(reserved, 'a/x'))?.message.includes('allowFirstLastIPs: No'));
  });

  it('serves start/stop ranges and single addresses', () => {
    const r = run(
      [lbPool('p', [{ start: '20.0.20.100', stop: '20.0.20.101' }, { start: '1.2.3.4' }])],
      [lbService('a', 's1'), lbService('a', 's2'), lbService('a', 's3', { ips: '1.2.3.4' })],
    );
    assert.deepEqual(
      r.services.map((s) => s.ips),
      [['20.0.20.100'], ['20.0.20.101'], ['1.2.3.4']],
    );
    assert.equal(r.pools[0]?.counts.total, 3n);
  });

  it('selects Services by labels and by the special namespace/name keys', () => {
    const pools = [
      lbPool('media-pool', [{ cidr: '10.5.0.0/24' }], {
        serviceSelector: { matchLabels: { 'io.kubernetes.service.namespace': 'media' } },
      }),
      lbPool('blue', [{ cidr: '10.6.0.0/24' }], {
        serviceSelector: { matchExpressions: [{ key: 'color', operator: 'In', values: ['blue'] }] },
      }),
    ];
    const r = run(pools, [
      lbService('media', 'plex'),
      lbService('web', 'site', { labels: { color: 'blue' } }),
      lbService('web', 'other'),
      lbService('web', 'wrong', { ips: '10.5.0.9' }),
    ]);
    assert.deepEqual(svcResult(r, 'media/plex').ips, ['10.5.0.0']);
    assert.deepEqual(svcResult(r, 'web/site').ips, ['10.6.0.0']);
    assert.equal(condition(svcResult(r, 'web/other'))?.reason, 'no_pool');
    assert.equal(condition(svcResult(r, 'web/wrong'))?.reason, 'pool_selector_mismatch');
    // A label change that leaves the selector releases the address.
    const again = run(pools, [lbService('web', 'site', { labels: { color: 'red' } })], r.state);
    assert.deepEqual(svcResult(again, 'web/site').ips, []);
    assert.ok(
      again.events.some(
        (e) =>
          e.kind === 'released' &&
          e.ip === '10.6.0.0' &&
          e.reason === 'pool blue no longer selects the service',
      ),
    );
  });

  it('disabled pools keep what they gave and give nothing new', () => {
    const on = lbPool('p', [{ cidr: '10.1.0.0/24' }]);
    const first = run([on], [lbService('a', 'old')]);
    const off = lbPool('p', [{ cidr: '10.1.0.0/24' }], { disabled: true });
    const second = run(
      [off],
      [lbService('a', 'old'), lbService('a', 'new'), lbService('a', 'asks', { ips: '10.1.0.9' })],
      first.state,
    );
    assert.deepEqual(svcResult(second, 'a/old').ips, ['10.1.0.0']);
    assert.equal(condition(svcResult(second, 'a/new'))?.reason, 'no_pool');
    assert.ok(
      condition(svcResult(second, 'a/asks'))?.message.includes("'p'") &&
        condition(svcResult(second, 'a/asks'))?.message.includes('is disabled'),
    );
    assert.equal(second.pools[0]?.disabled, true);
  });

  it('marks the newer of two overlapping pools as conflicting (then by name); it allocates nothing', () => {
    const older = lbPool('older', [{ cidr: '10.1.0.0/24' }], {}, '2025-01-01T00:00:00Z');
    const newer = lbPool(
      'newer',
      [{ start: '10.1.0.200', stop: '10.1.1.10' }, { cidr: '10.9.0.0/24' }],
      {},
      '2025-03-01T00:00:00Z',
    );
    const r = run([newer, older], [lbService('a', 's', { ips: '10.9.0.5' })]);
    const n = r.pools.find((p) => p.name === 'newer');
    assert.equal(n?.conflicting, true);
    const c = n?.conditions.find((x) => x.type === LB_CONDITIONS.poolConflict);
    assert.equal(c?.status, 'True');
    assert.equal(c?.reason, 'cidr_overlap');
    assert.equal(
      c?.message,
      "Pool conflicts since range '10.1.0.200-10.1.1.10' overlaps range '10.1.0.0/24' from IP Pool 'older'",
    );
    assert.equal(r.pools.find((p) => p.name === 'older')?.conflicting, false);
    assert.equal(r.summary.conflictingPools, 1);
    const s = svcResult(r, 'a/s');
    assert.equal(condition(s)?.reason, 'no_pool');
    assert.ok(condition(s)?.message.includes('is conflicting'));
    // Same creation time: the name decides.
    const t = '2025-01-01T00:00:00Z';
    const tie = run(
      [
        lbPool('b', [{ cidr: '10.1.0.0/24' }], {}, t),
        lbPool('a', [{ cidr: '10.1.0.0/25' }], {}, t),
      ],
      [],
    );
    assert.deepEqual(
      tie.pools.map((p) => [p.name, p.conflicting]),
      [
        ['a', false],
        ['b', true],
      ],
    );
    // Overlap inside one pool.
    const self = run([lbPool('self', [{ cidr: '10.1.0.0/24' }, { cidr: '10.1.0.128/25' }])], []);
    assert.equal(self.pools[0]?.conflicting, true);
  });

  it('reports an invalid pool spec and keeps existing allocations', () => {
    const good = lbPool('p', [{ cidr: '10.1.0.0/24' }]);
    const first = run([good], [lbService('a', 's')]);
    const bad = lbPool('p', [{ cidr: '10.1.0.0/33' }]);
    const r = run([bad], [lbService('a', 's'), lbService('a', 't')], first.state);
    const p = r.pools[0];
    assert.equal(
      p?.invalid,
      'spec.blocks[0].cidr: Invalid value: "10.1.0.0/33": prefix length must be 0-32',
    );
    assert.deepEqual(
      p?.conditions.find((c) => c.type === LB_CONDITIONS.invalidSpec),
      {
        type: 'ciliate.io/InvalidSpec',
        status: 'True',
        reason: 'invalid_spec',
        message: p?.invalid,
        lastTransitionTime: NOW,
      },
    );
    assert.deepEqual(svcResult(r, 'a/s').ips, ['10.1.0.0']);
    assert.equal(condition(svcResult(r, 'a/t'))?.reason, 'no_pool');
    for (const [block, msg] of [
      [{ cidr: '10.0.0.0/24', start: '10.0.0.1' }, 'mutually exclusive'],
      [{}, 'needs either cidr or start'],
      [{ start: '10.0.0.9', stop: '10.0.0.1' }, 'must not be before start'],
      [{ start: '10.0.0.1', stop: 'fd00::1' }, 'same family'],
    ] as const) {
      assert.ok(run([lbPool('x', [block])], []).pools[0]?.invalid?.includes(msg), msg);
    }
    assert.ok(
      run(
        [lbPool('x', [], { allowFirstLastIPs: 'Maybe' as 'Yes' })],
        [],
      ).pools[0]?.invalid?.includes('must be Yes or No'),
    );
    assert.ok(
      run(
        [
          lbPool('x', [], {
            serviceSelector: { matchExpressions: [{ key: 'a', operator: 'Nope' as 'In' }] },
          }),
        ],
        [],
      ).pools[0]?.invalid?.includes('spec.serviceSelector.matchExpressions[0].operator'),
    );
  });

  it('releases when the pool is deleted or shrinks', () => {
    const first = run(
      [lbPool('p', [{ cidr: '10.1.0.0/24' }])],
      [lbService('a', 's', { ips: '10.1.0.200' })],
    );
    const shrunk = run(
      [lbPool('p', [{ cidr: '10.1.0.0/25' }])],
      [lbService('a', 's', { ips: '10.1.0.200' })],
      first.state,
    );
    assert.deepEqual(svcResult(shrunk, 'a/s').ips, []);
    assert.equal(condition(svcResult(shrunk, 'a/s'))?.reason, 'no_pool');
    const gone = run([], [lbService('a', 's')], first.state);
    assert.deepEqual(gone.state.ips, {});
    assert.ok(gone.events.some((e) => e.kind === 'released' && e.reason === 'pool deleted'));
  });
});

describe('LB-IPAM: Services', () => {
  const pool = lbPool('p', [{ cidr: '10.1.0.0/24' }, { cidr: 'fd00:1::/120' }]);

  it('only handles LoadBalancer Services without a class or with a Cilium class', () => {
    const r = run(
      [pool],
      [
        lbService('a', 'plain'),
        lbService('a', 'l2', { loadBalancerClass: 'io.cilium/l2-announcer' }),
        lbService('a', 'bgp', { loadBalancerClass: 'io.cilium/bgp-control-plane' }),
        lbService('a', 'metallb', { loadBalancerClass: 'metallb.io/metallb' }),
        lbService('a', 'cip', { type: 'ClusterIP' }),
      ],
    );
    assert.deepEqual(
      r.services.map((s) => [s.key, s.managed, s.ips.length]),
      [
        ['a/plain', true, 1],
        ['a/l2', true, 1],
        ['a/bgp', true, 1],
        ['a/metallb', false, 0],
      ],
    );
    const m = svcResult(r, 'a/metallb');
    assert.equal(m.status, null, "another controller's Service status is not touched");
    assert.ok(m.unmanagedReason?.includes('metallb.io/metallb'));
    assert.equal(r.summary.servicesMatching, 3);
    // Without defaultLBServiceIPAM=lbipam, unclassed Services belong to someone else.
    const classOnly = run(
      [pool],
      [lbService('a', 'plain'), lbService('a', 'mine', { loadBalancerClass: 'example.com/lb' })],
      emptyLbIpamState(),
      {
        handleUnclassed: false,
        lbClasses: ['example.com/lb'],
      },
    );
    assert.deepEqual(
      classOnly.services.map((s) => [s.key, s.managed]),
      [
        ['a/plain', false],
        ['a/mine', true],
      ],
    );
  });

  it('releases when a Service is deleted or stops being a LoadBalancer, and clears its status', () => {
    const services = [lbService('a', 's1'), lbService('a', 's2')];
    const first = run([pool], services);
    const back = writeBack(services, first);
    const changed = [{ ...back[0], spec: { ...back[0]?.spec, type: 'ClusterIP' } } as LbService];
    const r = run([pool], changed, first.state);
    assert.deepEqual(r.state.ips, {});
    const s1 = svcResult(r, 'a/s1');
    assert.equal(s1.managed, false);
    assert.deepEqual(s1.status, { loadBalancer: { ingress: [] }, conditions: [] });
    assert.equal(s1.statusChanged, true);
    assert.deepEqual(
      r.events.map((e) => [e.kind, e.service, e.reason]),
      [
        ['released', 'a/s1', 'spec.type is ClusterIP, not LoadBalancer'],
        ['released', 'a/s2', 'service deleted'],
      ],
    );
    // A class change to another controller clears our status too.
    const toMetal = [
      {
        ...back[0],
        spec: { ...back[0]?.spec, loadBalancerClass: 'metallb.io/metallb' },
      } as LbService,
    ];
    const m = svcResult(run([pool], toMetal, first.state), 'a/s1');
    assert.deepEqual(m.status?.loadBalancer.ingress, []);
  });

  it('follows ipFamilies and ipFamilyPolicy', () => {
    const dual = { ipv6Enabled: true };
    const r = run(
      [pool],
      [
        lbService('a', 'default'),
        lbService('a', 'v6', { ipFamilies: ['IPv6'] }),
        lbService('a', 'prefer', { ipFamilyPolicy: 'PreferDualStack' }),
        lbService('a', 'prefer6', { ipFamilyPolicy: 'PreferDualStack', ipFamilies: ['IPv6'] }),
        lbService('a', 'require', {
          ipFamilyPolicy: 'RequireDualStack',
          ipFamilies: ['IPv4', 'IPv6'],
        }),
      ],
      emptyLbIpamState(),
      dual,
    );
    assert.deepEqual(
      r.services.map((s) => [s.key, s.ips]),
      [
        // Same age: handled in name order, so a/v6 comes last.
        ['a/default', ['10.1.0.0']],
        ['a/v6', ['fd00:1::3']],
        ['a/prefer', ['10.1.0.1', 'fd00:1::']],
        ['a/prefer6', ['fd00:1::1']],
        ['a/require', ['10.1.0.2', 'fd00:1::2']],
      ],
    );
    const single = run([pool], [lbService('a', 'require', { ipFamilyPolicy: 'RequireDualStack' })]);
    const req = svcResult(single, 'a/require');
    assert.deepEqual(req.ips, ['10.1.0.0']);
    assert.equal(condition(req)?.reason, 'family_disabled');
    // IPv6 wanted but no IPv6 block in a matching pool.
    const v4only = run(
      [lbPool('v4', [{ cidr: '10.1.0.0/24' }])],
      [lbService('a', 'v6', { ipFamilies: ['IPv6'] })],
      emptyLbIpamState(),
      dual,
    );
    assert.equal(
      condition(svcResult(v4only, 'a/v6'))?.message,
      'There are no enabled CiliumLoadBalancerIPPools with IPv6 blocks that match this service',
    );
  });

  it('honours several requested addresses, spec.loadBalancerIP and the legacy annotation', () => {
    const legacy: LbService = {
      ...lbService('a', 'legacy'),
      metadata: {
        name: 'legacy',
        namespace: 'a',
        annotations: { 'io.cilium/lb-ipam-ips': '10.1.0.50' },
      },
    };
    const r = run(
      [pool],
      [
        lbService('a', 'multi', { ips: ' 10.1.0.7 , fd00:1:0:0::7,10.1.0.7' }),
        lbService('a', 'field', { loadBalancerIP: '10.1.0.9' }),
        legacy,
      ],
    );
    assert.deepEqual(svcResult(r, 'a/multi').ips, ['10.1.0.7', 'fd00:1::7']);
    assert.deepEqual(svcResult(r, 'a/field').ips, ['10.1.0.9']);
    assert.deepEqual(svcResult(r, 'a/legacy').ips, ['10.1.0.50']);
    // Changing the request moves the Service to the new address.
    const moved = run([pool], [lbService('a', 'field', { loadBalancerIP: '10.1.0.10' })], r.state);
    assert.deepEqual(svcResult(moved, 'a/field').ips, ['10.1.0.10']);
  });

  it('reports an unparseable request and does not pick an address instead', () => {
    const r = run([pool], [lbService('a', 'typo', { ips: '10.1.0.300' })]);
    const t = svcResult(r, 'a/typo');
    assert.deepEqual(t.ips, []);
    assert.equal(condition(t)?.reason, 'invalid_request');
    assert.ok(
      condition(t)?.message.startsWith(
        'metadata.annotations[lbipam.cilium.io/ips]: Invalid value: "10.1.0.300"',
      ),
    );
  });

  it('adopts addresses a Service status already shows (a migration from Cilium)', () => {
    const migrated = lbService('a', 'm', {
      status: { loadBalancer: { ingress: [{ ip: '10.1.0.77' }] } },
    });
    const r = run([pool], [lbService('a', 'x'), migrated]);
    assert.deepEqual(svcResult(r, 'a/m').ips, ['10.1.0.77']);
    assert.ok(r.events.some((e) => e.kind === 'imported' && e.ip === '10.1.0.77'));
    assert.equal(svcResult(r, 'a/m').statusChanged, true, 'the condition is new');
    // Not adopted: outside every pool.
    const stray = lbService('a', 's', {
      status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } },
    });
    assert.deepEqual(svcResult(run([pool], [stray]), 'a/s').ips, ['10.1.0.0']);
  });

  it('refuses bad arguments', () => {
    assert.throws(
      () => reconcileLb([], [], emptyLbIpamState(), { now: '' }),
      (e: unknown) => e instanceof IpamError && e.code === 'INVALID_ARGUMENT',
    );
    assert.throws(
      () => reconcileLb([], [], { v: 2 } as unknown as LbIpamState, { now: NOW }),
      (e: unknown) => e instanceof IpamError && e.code === 'INVALID_STATE',
    );
  });
});

describe('LB-IPAM: sharing', () => {
  const pool = lbPool('p', [{ cidr: '10.1.0.0/24' }]);

  it('shares one address between Services with the same key and different ports', () => {
    const r = run(
      [pool],
      [
        lbService('a', 'dns-udp', { sharingKey: 'dns', ports: [53] }),
        lbService('a', 'http', { sharingKey: 'dns', ports: [80] }),
        lbService('a', 'https', { sharingKey: 'dns', ports: [443] }),
      ],
    );
    assert.deepEqual(
      r.services.map((s) => s.ips),
      [['10.1.0.0'], ['10.1.0.0'], ['10.1.0.0']],
    );
    assert.deepEqual(r.state.ips['10.1.0.0']?.services, ['a/dns-udp', 'a/http', 'a/https']);
    assert.equal(r.pools[0]?.counts.used, 1n);
    // One of them deleted: the others keep the address.
    const after = run(
      [pool],
      [lbService('a', 'http', { sharingKey: 'dns', ports: [80] })],
      r.state,
    );
    assert.deepEqual(svcResult(after, 'a/http').ips, ['10.1.0.0']);
    assert.deepEqual(
      after.events.map((e) => e.kind),
      ['unshared', 'unshared'],
    );
  });

  it('gives a clashing Service its own address, or refuses a clashing request with a reason', () => {
    const r = run(
      [pool],
      [
        lbService('a', 'one', { sharingKey: 'k', ports: [80] }),
        lbService('a', 'two', { sharingKey: 'k', ports: [80, 8080] }),
        lbService('a', 'asks', { sharingKey: 'k', ports: [8080], ips: '10.1.0.0' }),
      ],
    );
    assert.deepEqual(svcResult(r, 'a/one').ips, ['10.1.0.0']);
    assert.deepEqual(svcResult(r, 'a/two').ips, ['10.1.0.1']);
    assert.equal(condition(svcResult(r, 'a/two'))?.status, 'True');
    const why = r.events.find((e) => e.service === 'a/two' && e.kind === 'allocated')?.reason;
    assert.ok(why?.includes('same port 80'), why);
    // 'asks' is served first (requests go first), so 'one' joins it... unless ports clash:
    assert.deepEqual(svcResult(r, 'a/asks').ips, ['10.1.0.0']);
    const clash = run(
      [pool],
      [
        lbService('a', 'one', { sharingKey: 'k', ports: [53] }),
        lbService('a', 'asks', {
          sharingKey: 'k',
          ports: [53],
          ips: '10.1.0.0',
          creationTimestamp: '2025-09-01T00:00:00Z',
        }),
      ],
      run([pool], [lbService('a', 'one', { sharingKey: 'k', ports: [53] })]).state,
    );
    const asks = svcResult(clash, 'a/asks');
    assert.deepEqual(asks.ips, []);
    assert.equal(condition(asks)?.reason, 'already_allocated_incompatible_service');
    assert.ok(condition(asks)?.message.includes('Reason: same port 53'), condition(asks)?.message);
  });

  it('needs both sides to allow another namespace', () => {
    const a = lbService('ns-a', 'svc', { sharingKey: 'k', ports: [80], crossNamespace: 'ns-b' });
    const bOk = lbService('ns-b', 'svc', { sharingKey: 'k', ports: [81], crossNamespace: '*' });
    const bNo = lbService('ns-b', 'svc', { sharingKey: 'k', ports: [81] });
    assert.deepEqual(
      run([pool], [a, bOk]).services.map((s) => s.ips[0]),
      ['10.1.0.0', '10.1.0.0'],
    );
    assert.deepEqual(
      run([pool], [a, bNo]).services.map((s) => s.ips[0]),
      ['10.1.0.0', '10.1.0.1'],
    );
    assert.equal(lbSharingObstacle(a, bNo), 'different and not permitted namespace');
    assert.equal(lbSharingObstacle(a, bOk), undefined);
  });

  it('needs the same externalTrafficPolicy, and for Local the same pod selector', () => {
    const base = { sharingKey: 'k' };
    const x = lbService('a', 'x', {
      ...base,
      ports: [1],
      externalTrafficPolicy: 'Local',
      selector: { app: 'z' },
    });
    const y = lbService('a', 'y', {
      ...base,
      ports: [2],
      externalTrafficPolicy: 'Local',
      selector: { app: 'z' },
    });
    const z = lbService('a', 'z', {
      ...base,
      ports: [3],
      externalTrafficPolicy: 'Local',
      selector: { app: 'other' },
    });
    const w = lbService('a', 'w', { ...base, ports: [4] });
    assert.equal(lbSharingObstacle(x, y), undefined);
    assert.equal(
      lbSharingObstacle(x, z),
      'externalTrafficPolicy Local with different pod selectors',
    );
    assert.equal(lbSharingObstacle(x, w), 'different externalTrafficPolicy');
    assert.equal(
      lbSharingObstacle(w, lbService('a', 'v', { ports: [5] })),
      'the holder has no sharing key',
    );
  });
});

describe('LB-IPAM: state helpers', () => {
  it('lbAddressesOf lists what a Service holds', () => {
    const r = run([seedPool], [plex]);
    assert.deepEqual(lbAddressesOf(r.state, 'media/plex'), ['10.0.6.14']);
  });

  it('drops what a broken stored state says, with a reason', () => {
    const prev = {
      v: 1,
      ips: { '10.0.6.014': { pool: 'default-pool', services: ['media/plex'] } },
    } as LbIpamState;
    const r = run([seedPool], [plex], prev);
    assert.deepEqual(svcResult(r, 'media/plex').ips, ['10.0.6.14']);
    assert.ok(
      r.events.some((e) => e.kind === 'released' && e.reason === 'stored address is not canonical'),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

interface GenService {
  ns: string;
  name: string;
  ports: number[];
  key?: string;
  cross?: string;
  request?: string;
  type: string;
  cls?: string;
  team?: string;
  policy?: string;
  families?: string[];
  etp?: string;
  selector: string;
}

const genService: fc.Arbitrary<GenService> = fc.record(
  {
    ns: fc.constantFrom('n1', 'n2'),
    name: fc.constantFrom('s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7'),
    ports: fc.uniqueArray(fc.constantFrom(53, 80, 443), { minLength: 1, maxLength: 2 }),
    key: fc.constantFrom('k1', 'k2'),
    cross: fc.constantFrom('*', 'n1', 'n2', 'n1,n2'),
    request: fc.oneof(
      fc.integer({ min: 0, max: 40 }).map((i) => `10.0.0.${i}`),
      fc.constantFrom('fd00::3', '10.0.9.9', 'bogus'),
    ),
    type: fc.constantFrom('LoadBalancer', 'LoadBalancer', 'LoadBalancer', 'ClusterIP'),
    cls: fc.constantFrom('io.cilium/l2-announcer', 'other/class'),
    team: fc.constantFrom('a', 'b'),
    policy: fc.constantFrom('SingleStack', 'PreferDualStack', 'RequireDualStack'),
    families: fc.constantFrom(['IPv4'], ['IPv6'], ['IPv4', 'IPv6']),
    etp: fc.constantFrom('Cluster', 'Local'),
    selector: fc.constantFrom('x', 'y'),
  },
  { requiredKeys: ['ns', 'name', 'ports', 'type', 'selector'] },
);

function toService(g: GenService): LbService {
  return lbService(g.ns, g.name, {
    ports: g.ports,
    type: g.type,
    selector: { app: g.selector },
    ...(g.key ? { sharingKey: g.key } : {}),
    ...(g.cross ? { crossNamespace: g.cross } : {}),
    ...(g.request ? { ips: g.request } : {}),
    ...(g.cls ? { loadBalancerClass: g.cls } : {}),
    ...(g.team ? { labels: { team: g.team } } : {}),
    ...(g.policy ? { ipFamilyPolicy: g.policy } : {}),
    ...(g.families ? { ipFamilies: g.families } : {}),
    ...(g.etp ? { externalTrafficPolicy: g.etp } : {}),
  });
}

const genBlock: fc.Arbitrary<LbPoolBlock> = fc.oneof(
  fc
    .tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 29, max: 32 }))
    .map(([i, p]) => ({ cidr: `10.0.0.${i * 8}/${p}` })),
  fc
    .tuple(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 4 }))
    .map(([s, n]) => ({ start: `10.0.0.${s}`, stop: `10.0.0.${s + n}` })),
  fc.constant({ cidr: 'fd00::/126' }),
);

const genPool = fc.record({
  blocks: fc.array(genBlock, { minLength: 1, maxLength: 2 }),
  allow: fc.constantFrom<'Yes' | 'No' | undefined>(undefined, 'Yes', 'No'),
  disabled: fc.boolean(),
  team: fc.constantFrom(undefined, 'a', 'b'),
  day: fc.integer({ min: 1, max: 3 }),
});

type Gen<T> = T extends fc.Arbitrary<infer U> ? U : never;

function toPools(gs: Array<Gen<typeof genPool>>): LbPool[] {
  return gs.map((g, i) =>
    lbPool(
      `pool-${i}`,
      g.blocks,
      {
        ...(g.allow ? { allowFirstLastIPs: g.allow } : {}),
        disabled: g.disabled && i > 0,
        ...(g.team ? { serviceSelector: { matchLabels: { team: g.team } } } : {}),
      },
      `2025-01-0${g.day}T00:00:00Z`,
    ),
  );
}

/** The sharing rules, written out again independently of the implementation. */
function mayShare(a: GenService, b: GenService): boolean {
  if (!a.key || !b.key || a.key !== b.key) return false;
  if (a.ns !== b.ns) {
    const allows = (x: GenService, ns: string): boolean =>
      (x.cross ?? '').split(',').some((c) => c === '*' || c === ns);
    if (!allows(a, b.ns) || !allows(b, a.ns)) return false;
  }
  if (a.ports.some((p) => b.ports.includes(p))) return false;
  const ea = a.etp ?? 'Cluster';
  const eb = b.etp ?? 'Cluster';
  if (ea !== eb) return false;
  if (ea === 'Local' && a.selector !== b.selector) return false;
  return true;
}

function blockRange(b: LbPoolBlock): [bigint, bigint] {
  if (b.cidr) {
    const c = parseCidr(b.cidr);
    return [c.network, c.network + (1n << BigInt((c.family === 4 ? 32 : 128) - c.length)) - 1n];
  }
  const s = parseIp(b.start).value;
  return [s, b.stop ? parseIp(b.stop).value : s];
}

describe('LB-IPAM: properties', () => {
  it('no address held twice except by Services that may share; all inside their pool; stable', () => {
    fc.assert(
      fc.property(
        fc.array(genPool, { minLength: 1, maxLength: 3 }),
        fc.array(fc.array(genService, { maxLength: 8 }), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (genPools, rounds, v6) => {
          const pools = toPools(genPools);
          const opts = { ipv6Enabled: v6 };
          let state = emptyLbIpamState();
          let prevServices: LbService[] = [];
          let prevGen = new Map<string, GenService>();
          for (const round of rounds) {
            const gens = new Map<string, GenService>();
            for (const g of round) gens.set(`${g.ns}/${g.name}`, g);
            // Services carry the status the previous round wrote.
            const services = [...gens.values()].map((g) => {
              const svc = toService(g);
              const before = prevServices.find(
                (p) => p.metadata.namespace === g.ns && p.metadata.name === g.name,
              );
              return before?.status ? { ...svc, status: before.status } : svc;
            });
            const r = reconcileLb(pools, services, state, { now: NOW, ...opts });
            // 1. Holders of one address may all share with each other.
            for (const [ip, h] of Object.entries(r.state.ips)) {
              assert.ok(h.services.length > 0);
              assert.equal(
                new Set(h.services).size,
                h.services.length,
                `${ip} lists a Service twice`,
              );
              for (let i = 0; i < h.services.length; i++) {
                for (let j = i + 1; j < h.services.length; j++) {
                  const a = gens.get(h.services[i] as string) as GenService;
                  const b = gens.get(h.services[j] as string) as GenService;
                  assert.ok(mayShare(a, b), `${ip} held by ${h.services[i]} and ${h.services[j]}`);
                }
              }
              // 2. Inside a block of the pool it came from, and never a reserved end.
              const pi = Number(h.pool.slice('pool-'.length));
              const gp = genPools[pi] as Gen<typeof genPool>;
              const v = parseIp(ip).value;
              const fam = parseIp(ip).family;
              const inBlock = gp.blocks.some((b) => {
                if ((b.cidr ?? b.start ?? '').includes(':') !== (fam === 6)) return false;
                const [lo, hi] = blockRange(b);
                if (v < lo || v > hi) return false;
                const reservedEnds = gp.allow === 'No' && b.cidr !== undefined && hi - lo >= 2n;
                return !(reservedEnds && (v === lo || v === hi));
              });
              assert.ok(inBlock, `${ip} from ${h.pool}`);
            }
            // 3. Results agree with the state; unmanaged Services hold nothing.
            for (const res of r.services) {
              assert.deepEqual([...res.ips].sort(), lbAddressesOf(r.state, res.key).sort());
              if (!res.managed) assert.deepEqual(res.ips, []);
              else
                assert.deepEqual(
                  res.status?.loadBalancer.ingress.map((x) => x.ip),
                  res.ips,
                );
              const g = gens.get(res.key) as GenService;
              if (res.managed && !g.request) {
                const fams = res.ips.map((ip) => parseIp(ip).family);
                assert.equal(new Set(fams).size, fams.length, 'one address per family');
              }
            }
            // 4. Stable: what a Service held stays while neither it nor its partners changed.
            for (const [key, g] of gens) {
              const before = prevGen.get(key);
              if (before === undefined || JSON.stringify(before) !== JSON.stringify(g)) continue;
              for (const ip of lbAddressesOf(state, key)) {
                const partners = state.ips[ip]?.services ?? [];
                const undisturbed = partners.every(
                  (p) => JSON.stringify(prevGen.get(p)) === JSON.stringify(gens.get(p)),
                );
                if (undisturbed)
                  assert.ok(lbAddressesOf(r.state, key).includes(ip), `${key} lost ${ip}`);
              }
            }
            // 5. A second pass over the written-back result is a fixpoint.
            const written = writeBack(services, r);
            const again = reconcileLb(pools, written, r.state, { now: LATER, ...opts });
            assert.equal(again.changed, false);
            assert.deepEqual(again.state, r.state);
            assert.ok(
              again.services.every((s) => !s.statusChanged),
              'statuses settle',
            );
            // 6. Pool counts add up.
            for (const p of r.pools) {
              const held = Object.values(r.state.ips).filter((h) => h.pool === p.name).length;
              assert.equal(p.counts.used, BigInt(held));
              assert.ok(p.counts.available >= 0n && p.counts.available <= p.counts.total);
              if (!p.conflicting) assert.equal(p.counts.available + p.counts.used, p.counts.total);
            }
            state = JSON.parse(JSON.stringify(r.state)) as LbIpamState;
            prevServices = written;
            prevGen = gens;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
