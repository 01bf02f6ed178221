// Two nodes (network namespaces) on one L2 segment, two pods on each: pod-to-pod ICMP, TCP and
// UDP across nodes, with native routing (BPF host routing: the endpoint program forwards by the
// FIB, the node program delivers into the pod; legacy: the stack forwards, arrivals pass the
// host veth), then in VXLAN mode (the sender's identity travels in the VNI and is read back on
// the receiving node; the stack forwards what leaves outside the tunnel). In every mode,
// connections the node's stack delivers (the node itself, netfilter's DNAT as portmap writes it
// for a hostPort) are answered through the stack.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { RESERVED_IDENTITIES } from '@ciliate/contracts';
import { NetScope, waitFor, type Netns } from '@ciliate/testkit';

import { ifIndex } from '../attach.js';
import type { RingBufferReader } from '../ringbuf.js';
import {
  addPod,
  client,
  ping,
  pinDir,
  quietNetns,
  startServer,
  type Pod,
} from '../testing/support.js';
import { CtFlags, TraceObservationPoint, TraceReason, TupleFlags } from './constants.js';
import { Datapath } from './datapath.js';
import type { DatapathEvent, DropEvent, TraceEvent } from './events.js';

interface TestNode {
  ns: Netns;
  ip: string;
  podCidr: string;
  dp: Datapath;
  pod: Pod;
  /** a second pod on the same node */
  neighbour: Pod;
  identity: number;
  events: DatapathEvent[];
  reader: RingBufferReader;
  pins: { remove(): void };
  links: { detach(): void }[];
}

type Mode = 'native' | 'vxlan';
type HostRoutingMode = 'bpf' | 'legacy';

async function makeCluster(
  scope: NetScope,
  mode: Mode,
  hostRouting: HostRoutingMode,
): Promise<[TestNode, TestNode]> {
  const hub = await scope.netns('seg');
  const br = 'br0';
  await scope.bridge(br, hub.name);
  const specs = [
    {
      ip: '192.168.50.1',
      podCidr: '10.201.1.0/24',
      podIp: '10.201.1.2',
      neighbourIp: '10.201.1.3',
      gw: '10.201.1.1',
      identity: 1001,
    },
    {
      ip: '192.168.50.2',
      podCidr: '10.201.2.0/24',
      podIp: '10.201.2.2',
      neighbourIp: '10.201.2.3',
      gw: '10.201.2.1',
      identity: 2002,
    },
  ];
  const nodes: TestNode[] = [];
  for (const s of specs) {
    const ns = await scope.netns('node');
    await quietNetns(ns.name, true);
    const port = scope.uniqueName('up');
    const tmp = scope.uniqueName('eth');
    await scope.veth({ name: tmp, netns: ns.name }, { name: port, netns: hub.name });
    await scope.attachToBridge(port, br, hub.name);
    await ns.ip(['link', 'set', tmp, 'down']);
    await ns.ip(['link', 'set', tmp, 'name', 'eth0']);
    await ns.ip(['addr', 'add', `${s.ip}/24`, 'dev', 'eth0']);
    await ns.ip(['link', 'set', 'eth0', 'up']);
    let tunnelIfindex = 0;
    if (mode === 'vxlan') {
      await ns.ip(['link', 'add', 'cil_vxlan', 'type', 'vxlan', 'external', 'dstport', '8472']);
      // routed into by the node for remote pod CIDRs: no ARP, the overlay program adds the
      // tunnel metadata
      await ns.ip(['link', 'set', 'cil_vxlan', 'arp', 'off', 'up']);
      tunnelIfindex = ifIndex('cil_vxlan', ns.name);
    }
    // VXLAN adds 50 bytes on a 1500-byte underlay
    const pod = await addPod(scope, ns, {
      ip: s.podIp,
      gateway: s.gw,
      mtu: mode === 'vxlan' ? 1450 : undefined,
    });
    const neighbour = await addPod(scope, ns, {
      ip: s.neighbourIp,
      gateway: s.gw,
      mtu: mode === 'vxlan' ? 1450 : undefined,
    });
    const pins = pinDir(`x${nodes.length}`);
    const dp = Datapath.load({
      pinDir: pins.dir,
      config: { traceMode: 'all', nodeIPv4: s.ip, tunnelMode: mode, tunnelIfindex, hostRouting },
    });
    for (const [i, p] of [pod, neighbour].entries()) {
      dp.endpoints.set(
        { ip: p.ip },
        {
          ifindex: p.hostIfindex,
          endpointId: 100 + 10 * i + nodes.length,
          flags: 0,
          mac: p.mac,
          nodeMac: p.hostMac,
          identity: s.identity,
        },
      );
    }
    // the VXLAN cluster uses tcx links (pinned with the maps), the native one tc filters
    const how = { mode: mode === 'vxlan' ? ('tcx' as const) : ('tc' as const) };
    const links = [
      ...dp.attachEndpoint({ ifindex: pod.hostIfindex, netns: ns.name }, how),
      ...dp.attachEndpoint({ ifindex: neighbour.hostIfindex, netns: ns.name }, how),
      ...dp.attachUnderlay({ ifname: 'eth0', netns: ns.name }, how),
      ...(mode === 'vxlan'
        ? dp.attachOverlay({ ifindex: tunnelIfindex, netns: ns.name }, how)
        : []),
    ];
    if (mode === 'vxlan') {
      assert.ok(existsSync(`${pins.dir}/links/lxc-${pod.hostIfindex}-ingress`), 'tcx links pinned');
    }
    const events: DatapathEvent[] = [];
    const reader = dp.openEvents((b) => events.push(...b), { keepAlive: false });
    nodes.push({
      ns,
      ip: s.ip,
      podCidr: s.podCidr,
      dp,
      pod,
      neighbour,
      identity: s.identity,
      events,
      reader,
      pins,
      links,
    });
  }
  const [n1, n2] = nodes as [TestNode, TestNode];
  for (const [self, peer] of [
    [n1, n2],
    [n2, n1],
  ] as const) {
    self.dp.ipcache.set(
      { prefix: peer.ip },
      { identity: RESERVED_IDENTITIES['remote-node'], tunnelEndpoint: null },
    );
    if (mode === 'native') {
      // the agent installs these routes; the pod's identity comes from the ipcache
      await self.ns.ip(['route', 'add', peer.podCidr, 'via', peer.ip]);
      self.dp.ipcache.set(
        { prefix: peer.pod.ip },
        { identity: peer.identity, tunnelEndpoint: null },
      );
    } else {
      // only the CIDR with its tunnel endpoint (identity world): the pod's identity must
      // arrive in the VNI
      self.dp.ipcache.set(
        { prefix: peer.podCidr },
        { identity: RESERVED_IDENTITIES.world, tunnelEndpoint: peer.ip },
      );
      await self.ns.ip(['route', 'add', peer.podCidr, 'dev', 'cil_vxlan']);
    }
  }
  return [n1, n2];
}

function teardown(nodes: TestNode[]): void {
  for (const n of nodes) {
    // each step on its own: one failure must not leave the rest behind
    const steps = [
      () => n.reader.close(),
      () => n.links.forEach((l) => l.detach()),
      () => n.dp.close(),
      () => n.pins.remove(),
    ];
    for (const step of steps) {
      try {
        step();
      } catch {
        // the namespace removal that follows takes links and filters along anyway
      }
    }
  }
}

// BPF host routing only changes native routing; the legacy path (the stack forwards, arrivals
// pass the host veth) stays selectable and is checked with the same tests. VXLAN mode asks for
// BPF host routing (the default) and must get the legacy path.
const variants: [Mode, HostRoutingMode][] = [
  ['native', 'bpf'],
  ['native', 'legacy'],
  ['vxlan', 'bpf'],
];

for (const [mode, requested] of variants) {
  const hostRouting: HostRoutingMode = mode === 'native' ? requested : 'legacy';
  const title =
    requested === hostRouting
      ? `${hostRouting} host routing`
      : `${requested} host routing requested, ${hostRouting} applied`;
  describe(`two nodes, ${mode} routing, ${title}`, () => {
    const scope = new NetScope();
    let n1: TestNode;
    let n2: TestNode;
    before(async () => {
      [n1, n2] = await makeCluster(scope, mode, requested);
    });
    after(async () => {
      try {
        teardown([n1, n2].filter(Boolean));
      } finally {
        // deleting the namespaces removes links, qdiscs and filters with them
        await scope.close();
      }
    });

    it('ICMP between pods on different nodes, replies tracked on both nodes', async () => {
      assert.ok(await ping(n1.pod.ns, n2.pod.ip, { count: 3 }), 'pod on node 1 -> pod on node 2');
      assert.ok(await ping(n2.pod.ns, n1.pod.ip, { count: 2 }), 'and back');
      const out = [...n1.dp.ct4.entries()].find(
        ([k]) => k.daddr === n2.pod.ip && k.nexthdr === 1 && k.flags === TupleFlags.OUT,
      );
      const inn = [...n2.dp.ct4.entries()].find(
        ([k]) => k.saddr === n1.pod.ip && k.nexthdr === 1 && k.flags === TupleFlags.IN,
      );
      assert.ok(out && inn);
      assert.ok(out[1].packetsRev >= 3n && inn[1].packetsRev >= 3n, 'replies tracked');
      assert.equal(
        inn[1].srcIdentity,
        n1.identity,
        `the sender's identity known on node 2 (${mode === 'vxlan' ? 'from the VNI' : 'from the ipcache'})`,
      );
    });

    it('TCP and UDP between pods on different nodes', async () => {
      const tcp = await startServer(n2.pod.ns, 'tcp', 9000);
      const udp = await startServer(n2.pod.ns, 'udp', 9001);
      try {
        const r = await client(n1.pod.ns, 'tcp', n2.pod.ip, 9000, 500_000);
        assert.ok(r.ok, r.error);
        const u = await client(n1.pod.ns, 'udp', n2.pod.ip, 9001, 10);
        assert.ok(u.ok, u.error);
        const e = n2.dp.ct4.get({
          saddr: n1.pod.ip,
          daddr: n2.pod.ip,
          sport: r.localPort!,
          dport: 9000,
          nexthdr: 6,
          flags: TupleFlags.IN,
        });
        assert.ok(e && e.bytesFwd > 500_000n && e.bytesRev > 500_000n);
        assert.equal(e.srcIdentity, n1.identity);
        const ue = n1.dp.ct4.get({
          saddr: n1.pod.ip,
          daddr: n2.pod.ip,
          sport: u.localPort!,
          dport: 9001,
          nexthdr: 17,
          flags: TupleFlags.OUT,
        });
        assert.equal(ue?.packetsRev, 10n);
      } finally {
        await tcp.stop();
        await udp.stop();
      }
    });

    it("pods reach the other node, and nodes reach the other node's pods", async () => {
      assert.ok(await ping(n1.pod.ns, n2.ip), 'pod -> remote node');
      // outside the tunnel: forwarded by the FIB only with BPF host routing in native routing
      const leave =
        hostRouting === 'bpf' ? TraceObservationPoint.TO_NETWORK : TraceObservationPoint.TO_STACK;
      await waitFor(`pod -> remote node leaves by ${hostRouting} host routing`, () =>
        n1.events.find(
          (e) =>
            e.kind === 'trace' &&
            e.observationPoint === leave &&
            e.packet?.dstIp === n2.ip &&
            e.reason === TraceReason.CT_NEW,
        ),
      );
      assert.ok(await ping(n2.ns, n1.pod.ip), 'node -> remote pod');
      const e = [...n1.dp.ct4.entries()].find(
        ([k]) => k.saddr === n2.ip && k.daddr === n1.pod.ip && k.flags === TupleFlags.IN,
      );
      assert.ok(e);
      assert.equal(
        e[1].srcIdentity,
        RESERVED_IDENTITIES['remote-node'],
        'the other node is remote-node',
      );
    });

    it(`trace events show the ${mode} path`, async () => {
      const t1 = () => n1.events.filter((e): e is TraceEvent => e.kind === 'trace');
      const t2 = () => n2.events.filter((e): e is TraceEvent => e.kind === 'trace');
      if (mode === 'native') {
        // bpf: node 1's endpoint program forwards by the FIB itself (to-network on the
        // underlay); legacy: it hands the packet to the stack
        const leave =
          hostRouting === 'bpf' ? TraceObservationPoint.TO_NETWORK : TraceObservationPoint.TO_STACK;
        const out = await waitFor(`${hostRouting} egress on node 1`, () =>
          t1().find(
            (t) =>
              t.observationPoint === leave &&
              t.packet?.dstIp === n2.pod.ip &&
              t.reason === TraceReason.CT_NEW,
          ),
        );
        if (hostRouting === 'bpf') {
          assert.equal(out.ifindex, ifIndex('eth0', n1.ns.name), 'the FIB picked the underlay');
          assert.equal(out.packet?.ttl, 63, 'forwarded like a router: TTL decremented');
        }
        // no forwarded pod packet reached node 1's stack
        if (hostRouting === 'bpf') {
          assert.ok(
            !t1().some(
              (t) =>
                t.observationPoint === TraceObservationPoint.TO_STACK &&
                t.packet?.dstIp === n2.pod.ip,
            ),
          );
        }
        const arrive = await waitFor('from-network on node 2', () =>
          t2().find(
            (t) =>
              t.observationPoint === TraceObservationPoint.FROM_NETWORK &&
              t.packet?.dstIp === n2.pod.ip,
          ),
        );
        assert.equal(arrive.srcIdentity, n1.identity);
        // to-container on node 2's host veth still counts the pod's egress from the underlay
        // (to-netdev): the underlay egress program sees the redirected traffic
        await waitFor('to-network on node 1 underlay (to-netdev)', () =>
          t1().find(
            (t) =>
              t.observationPoint === TraceObservationPoint.TO_NETWORK &&
              t.packet?.dstIp === n2.pod.ip &&
              t.reason === TraceReason.UNKNOWN,
          ),
        );
      } else {
        await waitFor('to-overlay on node 1', () =>
          t1().find(
            (t) =>
              t.observationPoint === TraceObservationPoint.TO_OVERLAY &&
              t.packet?.dstIp === n2.pod.ip,
          ),
        );
        const arrive = await waitFor('from-overlay on node 2', () =>
          t2().find(
            (t) =>
              t.observationPoint === TraceObservationPoint.FROM_OVERLAY &&
              t.packet?.dstIp === n2.pod.ip,
          ),
        );
        assert.equal(arrive.srcIdentity, n1.identity, 'identity read from the VNI');
      }
      const at = t2().find(
        (t) => t.observationPoint === TraceObservationPoint.TO_LXC && t.packet?.srcIp === n1.pod.ip,
      );
      assert.ok(at);
      assert.equal(at.srcIdentity, n1.identity);
      assert.equal(at.ifindex, n2.pod.hostIfindex, "to-lxc names the endpoint's interface");
    });

    it('pods on the same node reach each other straight from veth to veth (ICMP, TCP, UDP)', async () => {
      const tcp = await startServer(n2.neighbour.ns, 'tcp', 9100);
      const udp = await startServer(n2.neighbour.ns, 'udp', 9101);
      try {
        assert.ok(await ping(n2.pod.ns, n2.neighbour.ip, { count: 2 }));
        const r = await client(n2.pod.ns, 'tcp', n2.neighbour.ip, 9100, 100_000);
        assert.ok(r.ok, r.error);
        const u = await client(n2.pod.ns, 'udp', n2.neighbour.ip, 9101, 5);
        assert.ok(u.ok, u.error);
      } finally {
        await tcp.stop();
        await udp.stop();
      }
      const tcpIn = [...n2.dp.ct4.entries()].find(
        ([k]) => k.daddr === n2.neighbour.ip && k.dport === 9100 && k.flags === TupleFlags.IN,
      );
      assert.ok(tcpIn, 'the neighbour tracked the connection');
      assert.equal(tcpIn[1].flags & CtFlags.VIA_STACK, 0, 'not through the stack');
      assert.equal(tcpIn[1].srcIdentity, n2.identity);
      assert.ok(
        !n2.events.some(
          (e) =>
            e.kind === 'trace' &&
            e.observationPoint === TraceObservationPoint.TO_STACK &&
            (e.packet?.dstIp === n2.neighbour.ip ||
              (e.packet?.dstIp === n2.pod.ip && e.packet.srcIp === n2.neighbour.ip)),
        ),
        'no pod-to-pod packet went through the stack',
      );
    });

    it('the node reaches its own pods through the stack, and the replies go back that way', async () => {
      assert.ok(await ping(n2.ns, n2.pod.ip, { count: 2 }), 'node -> own pod');
      const tcp = await startServer(n2.pod.ns, 'tcp', 9200);
      try {
        const r = await client(n2.ns, 'tcp', n2.pod.ip, 9200, 100_000);
        assert.ok(r.ok, r.error);
        const e = [...n2.dp.ct4.entries()].find(
          ([k]) => k.dport === 9200 && k.sport === r.localPort && k.flags === TupleFlags.IN,
        );
        assert.ok(e, 'tracked on the way in');
        assert.ok(e[1].flags & CtFlags.VIA_STACK, 'marked as delivered by the stack');
      } finally {
        await tcp.stop();
      }
    });

    describe("a hostPort: the node's netfilter DNATs to a pod (as portmap does)", () => {
      const TCP_PORT = 18080;
      const UDP_PORT = 18081;
      before(async () => {
        for (const [proto, from, to] of [
          ['tcp', TCP_PORT, 9300],
          ['udp', UDP_PORT, 9301],
        ] as const) {
          // PREROUTING for what arrives (other nodes, local pods), OUTPUT for the node itself
          for (const chain of ['PREROUTING', 'OUTPUT']) {
            await n2.ns.exec('iptables', [
              '-w',
              '-t',
              'nat',
              '-A',
              chain,
              '-d',
              `${n2.ip}/32`,
              '-p',
              proto,
              '--dport',
              String(from),
              '-j',
              'DNAT',
              '--to-destination',
              `${n2.pod.ip}:${to}`,
            ]);
          }
        }
      });
      // the rules go with node 2's namespace

      const clients = () =>
        [
          ['a pod on another node', n1.pod.ns],
          ['another node', n1.ns],
          ['a pod on the same node', n2.neighbour.ns],
        ] as const;

      it('TCP and UDP from a pod on another node, another node and a pod on the same node', async () => {
        const tcp = await startServer(n2.pod.ns, 'tcp', 9300);
        const udp = await startServer(n2.pod.ns, 'udp', 9301);
        try {
          for (const [who, ns] of clients()) {
            // the client checks that the answers come from the address it asked (un-NATed)
            const r = await client(ns, 'tcp', n2.ip, TCP_PORT, 100_000);
            assert.ok(r.ok, `TCP from ${who}: ${r.error}`);
            const u = await client(ns, 'udp', n2.ip, UDP_PORT, 5);
            assert.ok(u.ok, `UDP from ${who}: ${u.error}`);
          }
        } finally {
          await tcp.stop();
          await udp.stop();
        }
      });

      it("the pod's conntrack remembers the stack, and its replies went to the stack", async () => {
        const entries = [...n2.dp.ct4.entries()].filter(
          ([k]) => k.daddr === n2.pod.ip && (k.dport === 9300 || k.dport === 9301),
        );
        assert.ok(entries.length >= 6, `${entries.length} entries`);
        for (const [k, v] of entries) {
          assert.equal(k.flags, TupleFlags.IN);
          assert.ok(v.flags & CtFlags.VIA_STACK, `${k.saddr}:${k.sport} -> ${k.dport}`);
          assert.ok(v.packetsRev > 0n, 'replies counted');
        }
        for (const src of [n1.pod.ip, n1.ip, n2.neighbour.ip]) {
          await waitFor(`a reply to ${src} handed to the stack`, () =>
            n2.events.find(
              (e) =>
                e.kind === 'trace' &&
                e.observationPoint === TraceObservationPoint.TO_STACK &&
                e.packet?.srcIp === n2.pod.ip &&
                e.packet.dstIp === src &&
                e.packet.srcPort === 9300 &&
                e.reason === TraceReason.CT_REPLY,
            ),
          );
        }
      });
    });

    if (hostRouting === 'legacy') {
      it("a Service address the client node's netfilter translates (as kube-proxy does)", async () => {
        // kube-proxy's ClusterIP DNAT on the client's node; the replies must come back through
        // that node's stack to be translated back, which legacy host routing guarantees
        const vip = '10.96.0.10';
        const rule = [
          '-w',
          '-t',
          'nat',
          'PREROUTING',
          '-d',
          `${vip}/32`,
          '-p',
          'tcp',
          '--dport',
          '80',
          '-j',
          'DNAT',
          '--to-destination',
          `${n2.pod.ip}:9300`,
        ];
        await n1.ns.exec('iptables', [...rule.slice(0, 3), '-A', ...rule.slice(3)]);
        const tcp = await startServer(n2.pod.ns, 'tcp', 9300);
        try {
          const r = await client(n1.pod.ns, 'tcp', vip, 80, 10_000);
          assert.ok(r.ok, `TCP to the Service address: ${r.error}`);
        } finally {
          await tcp.stop();
          await n1.ns.exec('iptables', [...rule.slice(0, 3), '-D', ...rule.slice(3)]);
        }
      });
    }

    if (mode === 'native') {
      it('drops at delivery are reported with Cilium reasons by the program that delivers', async () => {
        // node 2 (not a pod: no endpoint program on the way out) fragments a big ping; the
        // non-first fragments reach node 1's pod side, which refuses fragments
        try {
          await n2.ns.exec('ping', ['-c', '1', '-W', '1', '-s', '3000', '-M', 'dont', n1.pod.ip], {
            timeoutMs: 10_000,
          });
        } catch {
          // no reply expected
        }
        const drop = await waitFor('fragment drop on node 1', () =>
          n1.events.find(
            (e): e is DropEvent =>
              e.kind === 'drop' && e.reason === 157 && e.packet?.dstIp === n1.pod.ip,
          ),
        );
        assert.equal(drop.reasonName, 'IP_FRAGMENTATION_NOT_SUPPORTED');
        assert.equal(drop.file, hostRouting === 'bpf' ? 'bpf_host.c' : 'bpf_lxc.c');
        assert.equal(drop.ifindex, n1.pod.hostIfindex);
        assert.equal(drop.srcIdentity, RESERVED_IDENTITIES['remote-node']);
      });

      it('what the FIB does not forward still goes to the stack', async () => {
        await n1.ns.ip(['route', 'add', 'blackhole', '10.209.0.0/24']);
        try {
          assert.equal(await ping(n1.pod.ns, '10.209.0.1'), false);
          await waitFor('to-stack for the blackholed prefix', () =>
            n1.events.find(
              (e) =>
                e.kind === 'trace' &&
                e.observationPoint === TraceObservationPoint.TO_STACK &&
                e.packet?.dstIp === '10.209.0.1',
            ),
          );
        } finally {
          await n1.ns.ip(['route', 'del', 'blackhole', '10.209.0.0/24']);
        }
      });

      it(`arrivals ${hostRouting === 'bpf' ? 'skip' : 'pass'} the host veth`, async () => {
        const txPackets = () =>
          (
            JSON.parse(
              execFileSync('ip', ['-n', n2.ns.name, '-s', '-j', 'link', 'show', n2.pod.hostIf], {
                encoding: 'utf8',
              }),
            ) as { stats64: { tx: { packets: number } } }[]
          )[0]!.stats64.tx.packets;
        const before = txPackets();
        assert.ok(await ping(n1.pod.ns, n2.pod.ip, { count: 5 }));
        const sent = txPackets() - before;
        if (hostRouting === 'bpf') {
          // bpf_redirect_peer enters the pod's eth0 directly: nothing is sent by the host veth
          assert.ok(sent < 5, `host veth sent ${sent} packets`);
        } else {
          assert.ok(sent >= 5, `host veth sent ${sent} packets`);
        }
      });
    }
  });
}
