// The datapath service's pure parts: the desired BPF ipcache and its diff, routes to other
// nodes, what is published per endpoint, and the request deadline.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { IpcacheValue } from '@ciliate/bpf';
import { CiliateError } from '@ciliate/contracts';
import fc from 'fast-check';

import type { EndpointState } from '../agent/endpoints.js';
import { canonicalPrefix, desiredIpcache, diffIpcache, type PeerNode } from './ipcache.js';
import { ROUTE_PROTOCOL, VXLAN_DEVICE, peerOf, planNodeRoutes } from './nodes.js';
import { ciliumEndpointStatus, claimOf, desiredPublications } from './publish.js';
import { routerAddress, withDeadline } from './sources.js';

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
        const current = new Map<string, IpcacheValue>(Object.entries(cur));
        const desired = new Map<string, IpcacheValue>(Object.entries(want));
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

function endpoint(over: Partial<EndpointState> = {}): EndpointState {
  return {
    v: 1,
    containerId: 'c1',
    ifname: 'eth0',
    netns: '/var/run/netns/p',
    owner: { namespace: 'default', pod: 'web', containerId: 'c1', ifname: 'eth0' },
    labels: {},
    ip: '10.0.1.5',
    gateway: '10.0.1.1',
    hostIfname: 'lxc0',
    hostIfindex: 10,
    hostMac: '02:00:00:00:00:01',
    mac: '02:00:00:00:00:02',
    mtu: 1500,
    endpointId: 7,
    identity: 300,
    identityLabels: ['k8s:app=web'],
    attachMode: 'tc',
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
    fresh.owner = { ...fresh.owner, containerId: 'c2' };
    const d = desiredPublications([fresh, old], 'node-a', SELF);
    assert.equal(d.claims.size, 2, 'both addresses stay claimed until DEL');
    assert.equal(d.ceps.size, 1);
    assert.deepEqual(
      (d.ceps.get('default/web')?.status.networking as { addressing: unknown }).addressing,
      [{ ipv4: '10.0.1.9' }],
    );
  });
});

describe('sources', () => {
  it('the gateway is the router address IPAM reserves', () => {
    assert.equal(routerAddress('10.0.1.0/24'), '10.0.1.1');
  });

  it('withDeadline retries transient failures, then answers CNI code 11', async () => {
    let calls = 0;
    const ok = await withDeadline(
      'x',
      () => {
        calls++;
        if (calls < 3) throw new CiliateError('unavailable', 'nobody');
        return Promise.resolve('done');
      },
      5000,
    );
    assert.equal(ok, 'done');
    const started = Date.now();
    await assert.rejects(
      withDeadline('IPAM allocate', () => Promise.reject(new CiliateError('timeout', 'slow')), 300),
      (err: { code: number; message: string }) =>
        err.code === 11 && /IPAM allocate: no answer within 300 ms/.test(err.message),
    );
    assert.ok(Date.now() - started < 2000);
    await assert.rejects(
      withDeadline('x', () => Promise.reject(new CiliateError('bad_request', 'no')), 5000),
      /no/,
    );
  });
});
