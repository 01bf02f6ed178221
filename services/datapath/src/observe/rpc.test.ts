import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CtFlags, TupleFlags, type Ct4Key, type CtEntry } from '@ciliate/bpf';
import {
  BpfCtEntrySchema,
  EndpointInfoSchema,
  datapathSubjects,
  type BpfIpcacheListReply,
} from '@ciliate/contracts';
import type { EndpointDefinition } from '@ciliate/runtime';
import fc from 'fast-check';
import type { z } from 'zod';

import {
  addDatapathEndpoints,
  comparePrefixes,
  ctEntryToWire,
  ctFlagsText,
  ctListToWire,
  endpointInfoFromRecord,
  endpointInfos,
  ipcacheListToWire,
  labelList,
  type EndpointRecord,
} from './rpc.js';

const record = (over: Partial<EndpointRecord> = {}): EndpointRecord => ({
  containerId: 'c0ffee',
  ifname: 'eth0',
  owner: { namespace: 'default', pod: 'web-1', containerId: 'c0ffee', ifname: 'eth0' },
  labels: { 'k8s:io.kubernetes.pod.namespace': 'default', 'k8s:app': 'web' },
  ip: '10.0.1.5',
  hostIfname: 'lxc0123456789a',
  hostIfindex: 17,
  mac: '02:00:00:00:00:05',
  endpointId: 3,
  identity: 12345,
  ...over,
});

const key = (over: Partial<Ct4Key> = {}): Ct4Key => ({
  saddr: '10.0.1.5',
  daddr: '10.0.1.6',
  sport: 40000,
  dport: 80,
  nexthdr: 6,
  flags: TupleFlags.OUT,
  ...over,
});

const entry = (over: Partial<CtEntry> = {}): CtEntry => ({
  packetsFwd: 3n,
  bytesFwd: 180n,
  packetsRev: 2n,
  bytesRev: 120n,
  lifetime: 1000,
  flags: CtFlags.SEEN_NON_SYN | CtFlags.SEEN_REPLY,
  revNatIndex: 0,
  srcIdentity: 12345,
  policyVerdict: 0,
  txFlagsSeen: 0x02 | 0x10,
  rxFlagsSeen: 0x12,
  ifindex: 17,
  created: 900,
  ...over,
});

describe('endpoint records as EndpointInfo', () => {
  it('a pod endpoint: id, pod, addressing, identity with its labels, ready', () => {
    const info = endpointInfoFromRecord(record(), { node: 'node-1' });
    assert.deepEqual(info, {
      id: 3,
      node: 'node-1',
      namespace: 'default',
      pod: 'web-1',
      containerID: 'c0ffee',
      ifname: 'eth0',
      interface: 'lxc0123456789a',
      ifindex: 17,
      mac: '02:00:00:00:00:05',
      ipv4: '10.0.1.5',
      identity: 12345,
      labels: ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=default'],
      state: 'ready',
    });
    assert.ok(EndpointInfoSchema.safeParse(info).success);
  });

  it('a container without Kubernetes arguments has no pod; labels and state can be given', () => {
    const info = endpointInfoFromRecord(
      record({
        owner: { namespace: 'cni', pod: 'c0ffee', containerId: 'c0ffee', ifname: 'eth0' },
        labels: {},
        ip: 'fd00::5',
      }),
      { node: 'node-1', state: 'restoring', labels: ['reserved:init'] },
    );
    assert.equal(info.pod, undefined);
    assert.equal(info.namespace, undefined);
    assert.equal(info.ipv4, undefined);
    assert.equal(info.ipv6, 'fd00::5');
    assert.equal(info.state, 'restoring');
    assert.deepEqual(info.labels, ['reserved:init']);
  });

  it('lists by endpoint id; labels without a value keep the key alone', () => {
    const list = endpointInfos(
      [record({ endpointId: 9 }), record({ endpointId: 2 }), record({ endpointId: 5 })],
      'n',
    );
    assert.deepEqual(
      list.map((e) => e.id),
      [2, 5, 9],
    );
    assert.deepEqual(labelList({ 'reserved:host': '', 'k8s:a': 'b' }), [
      'k8s:a=b',
      'reserved:host',
    ]);
  });
});

describe('ipcache entries on the wire', () => {
  it('orders by address then prefix length, IPv4 first', () => {
    const list = ipcacheListToWire([
      [{ prefix: '10.0.2.0/24' }, { identity: 6, tunnelEndpoint: '192.168.0.2' }],
      [{ prefix: 'fd00::/64' }, { identity: 2, tunnelEndpoint: null }],
      [{ prefix: '10.0.1.5/32' }, { identity: 12345, tunnelEndpoint: null }],
      [{ prefix: '9.255.255.255/32' }, { identity: 2, tunnelEndpoint: null }],
      [{ prefix: '10.0.1.0/24' }, { identity: 6, tunnelEndpoint: '192.168.0.1' }],
    ]);
    assert.deepEqual(list, [
      { prefix: '9.255.255.255/32', identity: 2, tunnelEndpoint: null },
      { prefix: '10.0.1.0/24', identity: 6, tunnelEndpoint: '192.168.0.1' },
      { prefix: '10.0.1.5/32', identity: 12345, tunnelEndpoint: null },
      { prefix: '10.0.2.0/24', identity: 6, tunnelEndpoint: '192.168.0.2' },
      { prefix: 'fd00::/64', identity: 2, tunnelEndpoint: null },
    ] satisfies BpfIpcacheListReply['entries']);
  });

  it('the prefix order is a total order', () => {
    const prefix = fc.oneof(
      fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([a, l]) => `${a}/${l}`),
      fc.constantFrom('fd00::/64', 'fd00::1/128', '::/0'),
    );
    fc.assert(
      fc.property(prefix, prefix, prefix, (a, b, c) => {
        assert.equal(Math.sign(comparePrefixes(a, b)) + Math.sign(comparePrefixes(b, a)), 0);
        if (comparePrefixes(a, b) <= 0 && comparePrefixes(b, c) <= 0)
          assert.ok(comparePrefixes(a, c) <= 0);
        if (comparePrefixes(a, b) === 0) assert.equal(a, b);
      }),
    );
  });
});

describe('conntrack entries on the wire', () => {
  it('Cilium-like fields: tuple as stored, direction, expiry, tx forward and rx reply counters', () => {
    const wire = ctEntryToWire(key(), entry(), 970.4);
    assert.deepEqual(wire, {
      proto: 'TCP',
      src: '10.0.1.5',
      sport: 40000,
      dst: '10.0.1.6',
      dport: 80,
      direction: 'out',
      expiresIn: 30,
      rxPackets: 2,
      rxBytes: 120,
      txPackets: 3,
      txBytes: 180,
      flags: 'SYN ACK SeenNonSyn SeenReply',
      srcIdentity: 12345,
      revNat: 0,
    });
    assert.ok(BpfCtEntrySchema.safeParse(wire).success);
  });

  it('ingress tuples, expired entries, closing flags and non-TCP protocols', () => {
    const w = ctEntryToWire(
      key({ nexthdr: 1, flags: TupleFlags.IN, sport: 7, dport: 0 }),
      entry({ lifetime: 100, flags: CtFlags.TX_CLOSING | CtFlags.RX_CLOSING }),
      160,
    );
    assert.equal(w.proto, 'ICMP');
    assert.equal(w.direction, 'in');
    assert.equal(w.expiresIn, -60);
    assert.equal(w.flags, 'TxClosing RxClosing', 'TCP flags only for TCP');
    assert.equal(ctEntryToWire(key({ nexthdr: 47 }), entry(), 0).proto, '47');
    assert.equal(ctFlagsText({ flags: 0, txFlagsSeen: 0, rxFlagsSeen: 0 }, 6), '');
    assert.equal(ctFlagsText({ flags: 0, txFlagsSeen: 0x11, rxFlagsSeen: 0x04 }, 6), 'ACK FIN RST');
    assert.equal(
      ctFlagsText(
        { flags: CtFlags.VIA_STACK | CtFlags.SEEN_REPLY, txFlagsSeen: 0, rxFlagsSeen: 0 },
        17,
      ),
      'SeenReply ViaStack',
    );
  });

  it('a limited listing reads at most one entry past the limit and says it is truncated', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 50 }), (n, limit) => {
        let read = 0;
        function* entries(): Generator<[Ct4Key, CtEntry]> {
          for (let i = 0; i < n; i++) {
            read++;
            yield [key({ sport: 1000 + ((i * 7919) % 5000) }), entry()];
          }
        }
        const out = ctListToWire(entries(), { nowSeconds: 0, limit });
        assert.equal(out.entries.length, Math.min(n, limit));
        assert.equal(out.truncated, n > limit);
        assert.ok(read <= limit + 1);
        for (let i = 1; i < out.entries.length; i++)
          assert.ok(out.entries[i - 1]!.sport <= out.entries[i]!.sport, 'ordered');
      }),
    );
  });
});

describe('addDatapathEndpoints', () => {
  it('registers the three endpoints on the node-scoped subjects, answering from the maps', async () => {
    const defs: EndpointDefinition<z.ZodType, z.ZodType>[] = [];
    addDatapathEndpoints(
      { endpoint: (d) => defs.push(d) },
      {
        node: 'node-1',
        datapath: {
          ipcache: {
            entries: () => [[{ prefix: '10.0.1.5/32' }, { identity: 7, tunnelEndpoint: null }]],
          },
          ct4: { entries: () => [[key(), entry()]] },
        },
        endpoints: () => [endpointInfoFromRecord(record(), { node: 'node-1' })],
        monotonicNow: () => 990,
      },
    );
    assert.deepEqual(
      defs.map((d) => [d.name, d.subject]),
      [
        ['endpoint-list', datapathSubjects.endpoint('node-1', 'endpoint-list')],
        ['ipcache-list', datapathSubjects.endpoint('node-1', 'ipcache-list')],
        ['ct-list', datapathSubjects.endpoint('node-1', 'ct-list')],
      ],
    );
    const call = async (i: number, req: unknown) => {
      const d = defs[i]!;
      const res: unknown = await d.handler(d.request.parse(req), { msg: undefined as never });
      return d.reply.parse(res) as Record<string, unknown>;
    };
    const eps = await call(0, {});
    assert.equal((eps.endpoints as unknown[]).length, 1);
    const ipc = await call(1, {});
    assert.deepEqual(ipc.entries, [{ prefix: '10.0.1.5/32', identity: 7, tunnelEndpoint: null }]);
    const ct = await call(2, { limit: 5 });
    assert.equal(ct.truncated, false);
    assert.equal((ct.entries as { expiresIn: number }[])[0]!.expiresIn, 10);
    assert.throws(() => defs[2]!.request.parse({ limit: 0 }));
  });
});
