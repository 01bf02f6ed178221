// The datapath's planning code: the desired BPF ipcache and its diff, routes to other nodes,
// what is published per endpoint, and when an endpoint's identity follows its Pod.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  identityInputsOf,
  newIdentityInputs,
  planIdentityFollow,
  sameIdentityInputs,
  type FollowedEndpoint,
  type IdentityInputs,
  type PodLike,
} from './identity.js';
import {
  canonicalPrefix,
  desiredIpcache,
  diffIpcache,
  type IpcacheEntry,
  type PeerNode,
} from './ipcache.js';
import {
  ciliumEndpointStatus,
  claimOf,
  desiredPublications,
  type PublishedEndpoint,
} from './publish.js';
import { ROUTE_PROTOCOL, VXLAN_DEVICE, peerOf, planNodeRoutes } from './routes.js';

const SELF = '192.168.0.1';
const peers: PeerNode[] = [
  { name: 'a', ip: SELF, podCIDRs: ['10.0.1.0/24'] },
  { name: 'b', ip: '192.168.0.2', podCIDRs: ['10.0.2.0/24'] },
  { name: 'c', ip: undefined, podCIDRs: ['10.0.3.0/24'] },
];

describe('desiredIpcache', () => {
  const records = [
    { prefix: '10.0.1.5/32', identity: 300, hostIP: SELF },
    { prefix: '10.0.2.7/32', identity: 301, hostIP: '192.168.0.2' },
    { prefix: '0.0.0.0/0', identity: 2 },
    { prefix: '192.168.0.2/32', identity: 999, hostIP: '192.168.0.2' },
  ];

  it('native: records as they are, nodes as host and remote-node', () => {
    const m = desiredIpcache({ records, nodeIP: SELF, routing: 'native', peers });
    assert.deepEqual(m.get('10.0.2.7/32'), { identity: 301, tunnelEndpoint: null });
    assert.deepEqual(m.get('10.0.1.5/32'), { identity: 300, tunnelEndpoint: null });
    assert.deepEqual(m.get('0.0.0.0/0'), { identity: 2, tunnelEndpoint: null });
    assert.deepEqual(m.get('192.168.0.1/32'), { identity: 1, tunnelEndpoint: null });
    assert.deepEqual(m.get('192.168.0.2/32'), { identity: 6, tunnelEndpoint: null });
    assert.equal(m.has('10.0.2.0/24'), false, 'no CIDR fallback in native mode');
  });

  it('vxlan: remote records tunnel to their host, remote pod CIDRs as a fallback', () => {
    const m = desiredIpcache({ records, nodeIP: SELF, routing: 'vxlan', peers });
    assert.deepEqual(m.get('10.0.2.7/32'), { identity: 301, tunnelEndpoint: '192.168.0.2' });
    assert.deepEqual(m.get('10.0.1.5/32'), { identity: 300, tunnelEndpoint: null });
    assert.deepEqual(m.get('10.0.2.0/24'), { identity: 2, tunnelEndpoint: '192.168.0.2' });
    assert.equal(m.has('10.0.1.0/24'), false, 'not our own CIDR');
    assert.equal(m.has('10.0.3.0/24'), false, 'not a node without an address');
  });

  it('canonical prefixes', () => {
    assert.equal(canonicalPrefix('10.0.0.5'), '10.0.0.5/32');
    assert.equal(canonicalPrefix('10.0.0.0/8'), '10.0.0.0/8');
    assert.equal(canonicalPrefix('nonsense'), undefined);
  });

  const value = fc.record({
    identity: fc.integer({ min: 1, max: 70000 }),
    tunnelEndpoint: fc.constantFrom(null, '192.168.0.2', '192.168.0.3'),
  });
  const prefix = fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }))
    .map(([x, y]) => `10.9.${x}.${y}/32`);
  const table = fc.dictionary(prefix, value, { maxKeys: 30 });

  it('applying the diff makes the map equal to the desired one (property)', () => {
    fc.assert(
      fc.property(table, table, (cur, want) => {
        const current = new Map<string, IpcacheEntry>(Object.entries(cur));
        const desired = new Map<string, IpcacheEntry>(Object.entries(want));
        const d = diffIpcache(current, desired);
        const after = new Map(current);
        for (const k of d.deletes) after.delete(k);
        for (const [k, v] of d.upserts) after.set(k, v);
        assert.deepEqual(
          [...after].sort(([a], [b]) => a.localeCompare(b)),
          [...desired].sort(([a], [b]) => a.localeCompare(b)),
        );
        // and nothing is written that is already right
        assert.equal(diffIpcache(after, desired).upserts.length, 0);
      }),
    );
  });

  it('the node entries always win and remote pods tunnel only in vxlan mode (property)', () => {
    const rec = fc.record({
      prefix,
      identity: fc.integer({ min: 256, max: 65535 }),
      hostIP: fc.constantFrom(undefined, SELF, '192.168.0.2'),
    });
    fc.assert(
      fc.property(fc.array(rec), fc.constantFrom('native', 'vxlan'), (records, routing) => {
        const m = desiredIpcache({
          records: [...records, { prefix: `${SELF}/32`, identity: 400, hostIP: SELF }],
          nodeIP: SELF,
          routing: routing,
          peers,
        });
        assert.equal(m.get(`${SELF}/32`)?.identity, 1);
        assert.equal(m.get('192.168.0.2/32')?.identity, 6);
        for (const r of records) {
          const v = m.get(r.prefix)!;
          const tunnels = routing === 'vxlan' && r.hostIP === '192.168.0.2';
          assert.equal(v.tunnelEndpoint, tunnels ? '192.168.0.2' : null);
        }
      }),
    );
  });
});

describe('planNodeRoutes', () => {
  it('native: via the node; vxlan: into the tunnel; never to ourselves', () => {
    assert.deepEqual(planNodeRoutes(peers, { name: 'a', ip: SELF }, 'native'), [
      { dst: '10.0.2.0/24', via: '192.168.0.2' },
    ]);
    assert.deepEqual(planNodeRoutes(peers, { name: 'a', ip: SELF }, 'vxlan'), [
      { dst: '10.0.2.0/24', dev: VXLAN_DEVICE },
    ]);
    assert.ok(ROUTE_PROTOCOL > 4 && ROUTE_PROTOCOL < 256);
  });

  it('peerOf reads the InternalIP and the pod CIDRs of a CiliumNode', () => {
    assert.deepEqual(
      peerOf({
        metadata: { name: 'b' },
        spec: {
          addresses: [
            { type: 'ExternalIP', ip: '1.2.3.4' },
            { type: 'InternalIP', ip: '192.168.0.2' },
          ],
          ipam: { podCIDRs: ['10.0.2.0/24'] },
        },
      }),
      { name: 'b', ip: '192.168.0.2', podCIDRs: ['10.0.2.0/24'] },
    );
    assert.deepEqual(peerOf({ metadata: { name: 'x' } }), {
      name: 'x',
      ip: undefined,
      podCIDRs: [],
    });
  });
});

function endpoint(over: Partial<PublishedEndpoint> = {}): PublishedEndpoint {
  return {
    containerId: 'c1',
    owner: { namespace: 'default', pod: 'web' },
    ip: '10.0.1.5',
    endpointId: 7,
    identity: 300,
    identityLabels: ['k8s:app=web'],
    ...over,
  };
}

describe('publications', () => {
  it('a claim for the pod address with this node as host', () => {
    assert.deepEqual(claimOf(endpoint(), SELF), {
      prefix: '10.0.1.5/32',
      identity: 300,
      hostIP: SELF,
      source: 'local',
      ownerKey: 'pod/default/web',
    });
  });

  it("Cilium's CiliumEndpoint status fields", () => {
    const s = ciliumEndpointStatus(endpoint(), 'node-a');
    assert.equal(s.id, 7);
    assert.deepEqual(s.identity, { id: 300, labels: ['k8s:app=web'] });
    assert.deepEqual(s.networking, { addressing: [{ ipv4: '10.0.1.5' }], node: 'node-a' });
    assert.equal(s.state, 'ready');
  });

  it('a pod recreated under the same name: the newest endpoint is the CiliumEndpoint', () => {
    const old = endpoint();
    const fresh = endpoint({ containerId: 'c2', ip: '10.0.1.9', endpointId: 8 });
    const d = desiredPublications([fresh, old], 'node-a', SELF);
    assert.equal(d.claims.size, 2, 'both addresses stay claimed until DEL');
    assert.equal(d.ceps.size, 1);
    assert.deepEqual(
      (d.ceps.get('default/web')?.status.networking as { addressing: unknown }).addressing,
      [{ ipv4: '10.0.1.9' }],
    );
  });
});

const pod = (labels: Record<string, string>, serviceAccountName?: string): PodLike => ({
  metadata: { labels },
  spec: serviceAccountName ? { serviceAccountName } : {},
});

describe('newIdentityInputs', () => {
  const web: IdentityInputs = { podLabels: { app: 'web', tier: 'front' } };
  const cases: [string, IdentityInputs | undefined, PodLike | undefined, boolean][] = [
    ['same labels', web, pod({ tier: 'front', app: 'web' }), false],
    ['a value changed', web, pod({ app: 'api', tier: 'front' }), true],
    ['a label added', web, pod({ app: 'web', tier: 'front', x: '1' }), true],
    ['a label removed', web, pod({ app: 'web' }), true],
    ['no labels any more', web, pod({}), true],
    ['service account named default = none', web, pod(web.podLabels, 'default'), false],
    ['another service account', web, pod(web.podLabels, 'robot'), true],
    ['no Pod object: nothing to follow', web, undefined, false],
    ['recorded without inputs (older state): ask once', undefined, pod(web.podLabels), true],
  ];
  for (const [what, from, p, want] of cases) {
    it(what, () => {
      const got = newIdentityInputs(from ? { identityFrom: from } : {}, p);
      assert.equal(got !== undefined, want);
      if (got) assert.deepEqual(got, identityInputsOf(p));
    });
  }

  it('after taking what it answers, an endpoint needs nothing more (property)', () => {
    const labels = fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 3 }));
    fc.assert(
      fc.property(labels, labels, fc.option(fc.constantFrom('default', 'a', 'b')), (a, b, sa) => {
        const before = { identityFrom: identityInputsOf(pod(a)) };
        const now = pod(b, sa ?? undefined);
        const from = newIdentityInputs(before, now);
        const changed = !sameIdentityInputs(identityInputsOf(pod(a)), identityInputsOf(now));
        assert.equal(from !== undefined, changed);
        assert.equal(
          newIdentityInputs({ identityFrom: from ?? before.identityFrom }, now),
          undefined,
        );
      }),
    );
  });
});

describe('planIdentityFollow', () => {
  const followed = (name: string, labels: Record<string, string>): FollowedEndpoint => ({
    owner: { namespace: 'default', pod: name },
    identityFrom: { podLabels: labels },
  });

  it('relabels changed pods and retires what relabeled endpoints held', () => {
    const a = followed('a', { app: 'a' });
    const b = { ...followed('b', { app: 'b' }), previousIdentities: [299] };
    const c = followed('c', { app: 'c' });
    const pods: Record<string, PodLike> = { a: pod({ app: 'x' }), b: pod({ app: 'b' }) };
    const plan = planIdentityFollow([a, b, c], (_ns, name) => pods[name]);
    assert.deepEqual(
      plan.relabel.map((r) => [r.endpoint.owner.pod, r.from]),
      [['a', { podLabels: { app: 'x' } }]],
    );
    assert.deepEqual(
      plan.retire.map((s) => s.owner.pod),
      ['b'],
    );
  });
});
