import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { IpamError } from './errors.js';
import { canonicalIp, parseCidr, parseIp } from './ip.js';
import {
  HEALTH_OWNER,
  ROUTER_OWNER,
  type PodPoolState,
  allocateNodePodIps,
  allocatePodIp,
  checkPodPoolState,
  createNodePodIps,
  createPodPool,
  listPodIps,
  lookupPodIp,
  parsePodOwnerKey,
  podGateway,
  podGateways,
  podOwnerKey,
  podPoolUsage,
  releaseNodePodIps,
  releasePodIp,
  releasePodIpAddress,
} from './pod-ips.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof IpamError) return err.code;
    throw err;
  }
  return 'no error';
}

/** A state that went through the KV bucket: no cached index can be used. */
function viaJson<T>(state: T): T {
  return JSON.parse(JSON.stringify(state)) as T;
}

const pod = (n: number): string =>
  podOwnerKey({ namespace: 'default', pod: `web-${n}`, containerId: `c${n}`, ifname: 'eth0' });

describe('pod IP pool: scenarios', () => {
  it('gives the router the first usable address, never the network or broadcast', () => {
    const s0 = createPodPool('10.1.3.0/24');
    assert.equal(lookupPodIp(s0, ROUTER_OWNER), '10.1.3.1');
    const u = podPoolUsage(s0);
    assert.equal(u.capacity, 254n);
    assert.equal(u.used, 1);
    assert.equal(u.free, 253n);
    assert.deepEqual(u.reserved, ['10.1.3.0', '10.1.3.255']);
  });

  it('names the gateway a pool would reserve, without a pool (what IPAM puts in its replies)', () => {
    for (const cidr of ['10.0.1.0/24', '10.0.1.0/30', 'fd00::/120', 'fd00:1::/64']) {
      assert.equal(podGateway(cidr), lookupPodIp(createPodPool(cidr), ROUTER_OWNER), cidr);
    }
    assert.deepEqual(podGateways({ ipv4: '10.0.1.0/24', ipv6: 'fd00::/120' }), {
      ipv4: '10.0.1.1',
      ipv6: 'fd00::1',
    });
    assert.deepEqual(podGateways({ ipv6: 'fd00::/120' }), { ipv6: 'fd00::1' });
    assert.equal(
      code(() => podGateway('10.0.1.1/24')),
      'INVALID_CIDR',
    );
  });

  it('is idempotent per owner and round robin after a release', () => {
    let s = createPodPool('10.1.3.0/24');
    const a = allocatePodIp(s, pod(1));
    assert.equal(a.ip, '10.1.3.2');
    assert.equal(a.created, true);
    s = a.state;
    const again = allocatePodIp(s, pod(1));
    assert.equal(again.ip, '10.1.3.2');
    assert.equal(again.created, false);
    assert.equal(again.state, s, 'a retried CNI ADD changes nothing');
    s = allocatePodIp(s, pod(2)).state;
    const r = releasePodIp(s, pod(1));
    assert.equal(r.ip, '10.1.3.2');
    s = r.state;
    assert.equal(releasePodIp(s, pod(1)).ip, null, 'a retried CNI DEL is fine');
    const b = allocatePodIp(s, pod(3));
    assert.equal(b.ip, '10.1.3.4', 'the address just released is not reused at once');
  });

  it('fills a /24 completely, then refuses with RANGE_FULL', () => {
    let s = createPodPool('10.1.3.0/24');
    const seen = new Set<string>();
    for (let i = 0; i < 253; i++) {
      const r = allocatePodIp(s, pod(i));
      assert.ok(!seen.has(r.ip));
      seen.add(r.ip);
      s = r.state;
    }
    assert.ok(!seen.has('10.1.3.0') && !seen.has('10.1.3.255') && !seen.has('10.1.3.1'));
    assert.equal(podPoolUsage(s).free, 0n);
    assert.throws(
      () => allocatePodIp(s, pod(999)),
      (e: unknown) =>
        e instanceof IpamError && e.code === 'RANGE_FULL' && e.message.includes('10.1.3.0/24'),
    );
    // Release then allocate succeeds.
    s = releasePodIp(s, pod(100)).state;
    assert.equal(allocatePodIp(s, pod(999)).created, true);
  });

  it('offers 255 addresses in an IPv6 /120 (only the subnet-router anycast address is kept out)', () => {
    let s = createPodPool('fd00::100/120', { reserveRouter: false });
    assert.equal(podPoolUsage(s).capacity, 255n);
    const got: string[] = [];
    for (let i = 0; i < 255; i++) {
      const r = allocatePodIp(s, pod(i));
      got.push(r.ip);
      s = r.state;
    }
    assert.equal(got[0], 'fd00::101');
    assert.ok(got.includes('fd00::1ff'));
    assert.ok(!got.includes('fd00::100'));
    assert.equal(
      code(() => allocatePodIp(s, 'x')),
      'RANGE_FULL',
    );
  });

  it('handles a Kubernetes-style IPv6 /64 node range', () => {
    let s = createPodPool('2001:db8:1:2::/64');
    assert.equal(podPoolUsage(s).capacity, (1n << 64n) - 1n);
    const r = allocatePodIp(s, pod(1));
    assert.equal(r.ip, '2001:db8:1:2::2');
    s = r.state;
    assert.equal(
      allocatePodIp(s, pod(2), { ip: '2001:db8:1:2:ffff:ffff:ffff:ffff' }).ip,
      '2001:db8:1:2:ffff:ffff:ffff:ffff',
    );
  });

  it('serves specific requests with clear codes', () => {
    let s = createPodPool('10.1.3.0/24');
    s = allocatePodIp(s, pod(1), { ip: '10.1.3.77' }).state;
    assert.equal(lookupPodIp(s, pod(1)), '10.1.3.77');
    assert.equal(
      code(() => allocatePodIp(s, pod(2), { ip: '10.1.3.77' })),
      'IP_IN_USE',
    );
    assert.equal(
      code(() => allocatePodIp(s, pod(2), { ip: '10.1.3.0' })),
      'IP_RESERVED',
    );
    assert.equal(
      code(() => allocatePodIp(s, pod(2), { ip: '10.1.3.255' })),
      'IP_RESERVED',
    );
    assert.equal(
      code(() => allocatePodIp(s, pod(2), { ip: '10.1.4.1' })),
      'IP_OUT_OF_RANGE',
    );
    assert.equal(
      code(() => allocatePodIp(s, pod(2), { ip: 'fd00::1' })),
      'FAMILY_MISMATCH',
    );
    assert.equal(
      code(() => allocatePodIp(s, pod(2), { ip: 'nope' })),
      'INVALID_IP',
    );
    assert.equal(
      code(() => allocatePodIp(s, pod(1), { ip: '10.1.3.78' })),
      'OWNER_CONFLICT',
    );
    assert.equal(allocatePodIp(s, pod(1), { ip: '10.1.3.77' }).created, false);
    // A dynamic allocation after a specific one starts from the beginning, skipping holders.
    assert.equal(allocatePodIp(s, pod(3)).ip, '10.1.3.2');
  });

  it('models the health endpoint as an owner too', () => {
    let s = createPodPool('10.1.3.0/24');
    s = allocatePodIp(s, HEALTH_OWNER).state;
    assert.deepEqual(
      listPodIps(s).map((e) => [e.owner, e.ip]),
      [
        [ROUTER_OWNER, '10.1.3.1'],
        [HEALTH_OWNER, '10.1.3.2'],
      ],
    );
  });

  it('frees an address whoever holds it (leak sweep)', () => {
    let s = createPodPool('10.1.3.0/24');
    s = allocatePodIp(s, pod(1)).state;
    const r = releasePodIpAddress(s, '10.1.3.2');
    assert.equal(r.owner, pod(1));
    assert.equal(lookupPodIp(r.state, pod(1)), undefined);
    assert.equal(releasePodIpAddress(r.state, '10.1.3.2').owner, null);
  });

  it('validates owners and CIDRs', () => {
    assert.equal(
      code(() => podOwnerKey({ namespace: 'a/b', pod: 'p', containerId: 'c', ifname: 'eth0' })),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => podOwnerKey({ namespace: '', pod: 'p', containerId: 'c', ifname: 'eth0' })),
      'INVALID_ARGUMENT',
    );
    assert.deepEqual(parsePodOwnerKey(pod(7)), {
      namespace: 'default',
      pod: 'web-7',
      containerId: 'c7',
      ifname: 'eth0',
    });
    assert.equal(parsePodOwnerKey(ROUTER_OWNER), undefined);
    assert.equal(
      code(() => allocatePodIp(createPodPool('10.0.0.0/24'), '')),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => allocatePodIp(createPodPool('10.0.0.0/24'), 'a b')),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => createPodPool('10.0.0.0/31')),
      'INVALID_CIDR',
    );
    assert.equal(
      code(() => createPodPool('10.0.0.1/24')),
      'INVALID_CIDR',
    );
    const fine = createPodPool('10.0.0.0/30', { reserveRouter: false });
    assert.equal(podPoolUsage(fine).capacity, 2n);
  });

  it('caps what one allocation may add to a node document: the owner at 1024 characters', () => {
    const pool = createPodPool('10.0.0.0/24');
    const long = 'o'.repeat(1025);
    assert.throws(
      () => allocatePodIp(pool, long),
      (e: unknown) =>
        e instanceof IpamError &&
        e.code === 'INVALID_ARGUMENT' &&
        /owner must be at most 1024 characters/.test(e.message),
    );
    assert.equal(listPodIps(pool).length, 1, 'only the router: nothing was added');
    // The wire's owner parts (at most 253 characters each) always fit.
    const widest = podOwnerKey({
      namespace: 'n'.repeat(253),
      pod: 'p'.repeat(253),
      containerId: 'c'.repeat(253),
      ifname: 'i'.repeat(253),
    });
    assert.equal(widest.length, 1015);
    assert.notEqual(allocatePodIp(pool, widest).ip, undefined);
  });

  it('refuses broken stored state with INVALID_STATE naming the field', () => {
    const good = viaJson(allocatePodIp(createPodPool('10.1.3.0/24'), pod(1)).state);
    assert.equal(checkPodPoolState(good), good);
    const dup = { ...good, allocations: [...good.allocations, { owner: 'other', ip: '10.1.3.2' }] };
    assert.throws(
      () => checkPodPoolState(dup),
      (e: unknown) =>
        e instanceof IpamError &&
        e.code === 'INVALID_STATE' &&
        e.message.includes('state.allocations[2].ip: Invalid value: "10.1.3.2": is also held by'),
    );
    const twice = {
      ...good,
      allocations: [...good.allocations, { owner: pod(1), ip: '10.1.3.9' }],
    };
    assert.ok(code(() => checkPodPoolState(twice)) === 'INVALID_STATE');
    const broken: unknown[] = [
      { ...good, v: 2 },
      { ...good, cidr: 'bad' },
      { ...good, allocations: [{ owner: 'x', ip: '10.1.3.0' }] },
      { ...good, allocations: [{ owner: 'x', ip: '10.1.3.010' }] },
      { ...good, allocations: {} },
      { ...good, allocations: [null] },
      null,
    ];
    for (const b of broken)
      assert.equal(
        code(() => checkPodPoolState(b)),
        'INVALID_STATE',
      );
    assert.equal(
      code(() => allocatePodIp(dup, pod(9))),
      'INVALID_STATE',
    );
  });

  it('state is frozen plain JSON, and parsed state is never changed', () => {
    const s = allocatePodIp(createPodPool('10.1.3.0/24'), pod(1)).state;
    assert.ok(Object.isFrozen(s) && Object.isFrozen(s.allocations));
    assert.ok(s.allocations.every((a) => Object.isFrozen(a)));
    assert.deepEqual(viaJson(s), s);
    assert.deepEqual(s, {
      v: 1,
      cidr: '10.1.3.0/24',
      last: '10.1.3.2',
      allocations: [
        { owner: 'router', ip: '10.1.3.1' },
        { owner: pod(1), ip: '10.1.3.2' },
      ],
    });
    const parsed = viaJson(s);
    const before = JSON.stringify(parsed);
    const next = allocatePodIp(parsed, pod(2)).state;
    assert.equal(JSON.stringify(parsed), before);
    assert.ok(!Object.isFrozen(parsed.allocations[0]));
    assert.ok(next.allocations.every((a) => Object.isFrozen(a)));
  });

  it('dual stack: one address per family, all or nothing', () => {
    let s = createNodePodIps({ ipv4: '10.1.3.0/30', ipv6: 'fd00::/120' });
    const a = allocateNodePodIps(s, pod(1));
    assert.deepEqual(a.ips, { ipv4: '10.1.3.2', ipv6: 'fd00::2' });
    s = a.state;
    // The IPv4 /30 is full now (router + one pod); IPv6 must not be taken either.
    assert.equal(
      code(() => allocateNodePodIps(s, pod(2))),
      'RANGE_FULL',
    );
    assert.equal(lookupPodIp(s.ipv6 as PodPoolState, pod(2)), undefined);
    assert.deepEqual(allocateNodePodIps(s, pod(2), ['ipv6']).ips, { ipv6: 'fd00::3' });
    assert.equal(allocateNodePodIps(s, pod(1)).state, s);
    const r = releaseNodePodIps(s, pod(1));
    assert.deepEqual(r.released, { ipv4: '10.1.3.2', ipv6: 'fd00::2' });
    assert.equal(
      code(() => allocateNodePodIps(createNodePodIps({ ipv4: '10.0.0.0/24' }), pod(1), ['ipv6'])),
      'NO_CIDR',
    );
    assert.equal(
      code(() => createNodePodIps({ ipv4: 'fd00::/120' })),
      'FAMILY_MISMATCH',
    );
  });
});

type Op =
  | { kind: 'alloc'; owner: number }
  | { kind: 'release'; owner: number }
  | { kind: 'want'; owner: number; offset: number }
  | { kind: 'json' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('alloc' as const), owner: fc.nat(40) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), owner: fc.nat(40) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('want' as const),
      owner: fc.nat(40),
      offset: fc.nat(40),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'json' as const }) },
);

describe('pod IP pool: properties', () => {
  const cidrArb = fc.constantFrom('10.9.8.0/27', '10.9.8.16/28', 'fd00::40/122', '2001:db8::/124');

  it('no address held twice; used + free = capacity; same owner same address; never reserved', () => {
    fc.assert(
      fc.property(
        cidrArb,
        fc.boolean(),
        fc.array(opArb, { maxLength: 120 }),
        (cidrText, router, ops) => {
          const cidr = parseCidr(cidrText);
          let s = createPodPool(cidrText, { reserveRouter: router });
          const model = new Map<string, string>(); // owner -> ip, the expected truth
          if (router) model.set(ROUTER_OWNER, lookupPodIp(s, ROUTER_OWNER) as string);
          const capacity = podPoolUsage(s).capacity;
          for (const op of ops) {
            if (op.kind === 'json') {
              s = viaJson(s);
              continue;
            }
            const owner = `o${op.owner}`;
            if (op.kind === 'alloc') {
              const full = BigInt(model.size) >= capacity;
              if (full && !model.has(owner)) {
                assert.equal(
                  code(() => allocatePodIp(s, owner)),
                  'RANGE_FULL',
                );
                continue;
              }
              const r = allocatePodIp(s, owner);
              if (model.has(owner)) {
                assert.equal(r.ip, model.get(owner), 'same owner, same address');
                assert.equal(r.created, false);
              }
              model.set(owner, r.ip);
              s = r.state;
            } else if (op.kind === 'release') {
              const r = releasePodIp(s, owner);
              assert.equal(r.ip, model.get(owner) ?? null);
              model.delete(owner);
              s = r.state;
              // Release then allocate succeeds.
              if (ops.length % 2 === 0) {
                const again = allocatePodIp(s, owner);
                model.set(owner, again.ip);
                s = again.state;
              }
            } else {
              const ipValue = cidr.network + BigInt(op.offset);
              const ip = { family: cidr.family, value: ipValue };
              const text = canonicalIp(formatAny(ip));
              let outcome: string;
              try {
                const r = allocatePodIp(s, owner, { ip: text });
                s = r.state;
                model.set(owner, r.ip);
                outcome = 'ok';
              } catch (e) {
                if (!(e instanceof IpamError)) throw e;
                outcome = e.code;
              }
              const holder = [...model.entries()].find(([, v]) => v === text)?.[0];
              if (outcome === 'ok') assert.ok(holder === owner);
              else if (outcome === 'IP_IN_USE') assert.ok(holder !== undefined && holder !== owner);
              else if (outcome === 'OWNER_CONFLICT')
                assert.ok(model.has(owner) && model.get(owner) !== text);
              else assert.ok(['IP_RESERVED', 'IP_OUT_OF_RANGE'].includes(outcome), outcome);
            }
            // Invariants after every step.
            const entries = listPodIps(s);
            assert.deepEqual(
              new Map(entries.map((e) => [e.owner, e.ip])),
              model,
              'the pool holds exactly what the model expects',
            );
            const ips = entries.map((e) => e.ip);
            assert.equal(new Set(ips).size, ips.length, 'no address held twice');
            const u = podPoolUsage(s);
            assert.equal(BigInt(u.used) + u.free, u.capacity, 'used + free = capacity');
            for (const ip of ips) {
              const v = parseIp(ip).value;
              assert.ok(v > cidr.network, `${ip} is not the network address`);
              if (cidr.family === 4) {
                assert.ok(
                  v < cidr.network + (1n << BigInt(32 - cidr.length)) - 1n,
                  `${ip} is not broadcast`,
                );
              }
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

function formatAny(ip: { family: 4 | 6; value: bigint }): string {
  if (ip.family === 4) {
    const n = Number(ip.value);
    return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--)
    groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn).toString(16));
  return groups.join(':');
}
