// The datapath's programs run on crafted packets (BPF_PROG_TEST_RUN), one group per program:
// verdicts, rewrites (MACs, TTL, checksums, the identity mark), conntrack entries, metrics and
// the trace and drop events each run emits. What a test run cannot observe (redirect targets,
// tunnel metadata) is tested end to end in node.priv.test.ts and crossnode.priv.test.ts.
//
// Drop reasons of bpf/lib/drop.h the programs cannot produce today, so not tested here:
// NO_SERVICE (the service lookup is a stub that finds nothing), POLICY (the policy hook allows
// every flow), CT_CREATE_FAILED (an LRU map update does not fail for lack of room), WRITE_ERROR
// and CSUM_L3 (the helpers fail only on a broken skb), INVALID_VNI (needs tunnel metadata, which
// a test run cannot give).
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';

import { RESERVED_IDENTITIES } from '@ciliate/contracts';

import {
  ArpOp,
  IcmpType,
  IpProto,
  TcpFlag,
  arpFrame,
  ipv4Frame,
  ipv6UdpFrame,
  type L4Spec,
} from '../testing/packets.js';
import {
  PacketHarness,
  TEST_RUN_IFINDEX,
  TcAction,
  XdpAction,
  identityMark,
  type PacketRun,
  type ProgramName,
} from '../testing/packet.js';
import {
  CtFlags,
  DropReason,
  EndpointFlags,
  IpcacheFlags,
  METRIC_REASON_FORWARDED,
  MetricDir,
  TraceObservationPoint as Point,
  TraceReason,
  TupleFlags,
} from './constants.js';

const NODE_IP = '192.168.50.1';
const PEER_NODE_IP = '192.168.50.2';
const WORLD_IP = '203.0.113.9';
/** Pod A sits behind the interface test runs use; B elsewhere on the node. */
const A = {
  ip: '10.0.1.2',
  ifindex: TEST_RUN_IFINDEX,
  id: 11,
  identity: 1001,
  mac: '02:aa:00:00:00:02',
  nodeMac: '02:aa:00:00:00:01',
};
const B = {
  ip: '10.0.1.3',
  ifindex: 42,
  id: 12,
  identity: 1002,
  mac: '02:bb:00:00:00:02',
  nodeMac: '02:bb:00:00:00:01',
};
const REMOTE = { ip: '10.0.2.5', identity: 2001 };
const TUNNEL_IFINDEX = 77;

type Pod = typeof A;

function seedEndpoint(h: PacketHarness, p: Pod, flags = 0): void {
  h.dp.endpoints.set(
    { ip: p.ip },
    {
      ifindex: p.ifindex,
      endpointId: p.id,
      flags,
      mac: p.mac,
      nodeMac: p.nodeMac,
      identity: p.identity,
    },
  );
}

function seedNode(h: PacketHarness, tunnel: boolean, remoteFlags = 0): void {
  seedEndpoint(h, A);
  seedEndpoint(h, B);
  h.dp.ipcache.set(
    { prefix: NODE_IP },
    { identity: RESERVED_IDENTITIES.host, tunnelEndpoint: null },
  );
  h.dp.ipcache.set(
    { prefix: REMOTE.ip },
    {
      identity: REMOTE.identity,
      tunnelEndpoint: tunnel ? PEER_NODE_IP : null,
      flags: remoteFlags,
    },
  );
}

/** A pod's frame as it leaves the pod: to the host veth's MAC. */
function fromPod(src: Pod, dst: string, l4: L4Spec, ip: { ttl?: number } = {}): Buffer {
  return ipv4Frame({
    eth: { src: src.mac, dst: src.nodeMac },
    ip: { src: src.ip, dst, ...ip },
    l4,
  });
}

/** A frame as it arrives on some interface of the node, addressed to whatever MAC. */
function arriving(src: string, dst: string, l4: L4Spec, ttl = 64): Buffer {
  return ipv4Frame({
    eth: { src: '02:ee:00:00:00:01', dst: '02:ee:00:00:00:02' },
    ip: { src, dst, ttl },
    l4,
  });
}

const tcpSyn = (sport: number, dport: number): L4Spec => ({
  tcp: { sport, dport, flags: TcpFlag.SYN },
});
const tcpAck = (sport: number, dport: number): L4Spec => ({
  tcp: { sport, dport, flags: TcpFlag.ACK, seq: 2, ack: 2 },
});
const udpTo = (dport: number, sport = 40000): L4Spec => ({ udp: { sport, dport } });
const ping = (id: number): L4Spec => ({ icmp: { type: IcmpType.ECHO_REQUEST, id, seq: 1 } });

function ct(
  h: PacketHarness,
  k: { s: string; d: string; sp: number; dp: number; proto: number; dir: number },
) {
  return h.dp.ct4.get({
    saddr: k.s,
    daddr: k.d,
    sport: k.sp,
    dport: k.dp,
    nexthdr: k.proto,
    flags: k.dir,
  });
}

function points(r: PacketRun): number[] {
  return r.traces.map((t) => t.observationPoint);
}

describe('packets through the datapath programs (BPF_PROG_TEST_RUN)', () => {
  const harnesses: PacketHarness[] = [];
  let native: PacketHarness;
  let vxlan: PacketHarness;
  let bpfHost: PacketHarness;
  let noArp: PacketHarness;

  before(() => {
    native = PacketHarness.open({ tag: 'native', config: { traceMode: 'all', nodeIPv4: NODE_IP } });
    harnesses.push(native);
    vxlan = PacketHarness.open({
      tag: 'vxlan',
      config: {
        traceMode: 'all',
        nodeIPv4: NODE_IP,
        tunnelMode: 'vxlan',
        tunnelIfindex: TUNNEL_IFINDEX,
      },
    });
    harnesses.push(vxlan);
    bpfHost = PacketHarness.open({
      tag: 'bpfhost',
      objects: ['host'],
      config: { traceMode: 'all', nodeIPv4: NODE_IP, hostRouting: 'bpf' },
    });
    harnesses.push(bpfHost);
    noArp = PacketHarness.open({ tag: 'noarp', objects: ['lxc'], config: { arpResponder: false } });
    harnesses.push(noArp);
  });

  after(() => {
    for (const h of harnesses) h.close();
  });

  beforeEach(() => {
    for (const h of harnesses) h.reset();
    seedNode(native, false);
    seedNode(vxlan, true);
    seedNode(bpfHost, false);
    seedNode(noArp, false);
  });

  describe('bpf_lxc: cil_from_container (pod egress)', () => {
    it('to a local endpoint: redirected with TTL decremented, checksum fixed, identity in the mark, conntrack entry created', async () => {
      const frame = fromPod(A, B.ip, tcpSyn(33000, 80));
      const r = await native.run('lxc.fromContainer', frame);
      assert.equal(r.retval, TcAction.REDIRECT);
      assert.equal(r.packet.ipv4?.ttl, 63);
      assert.equal(r.packet.ipv4?.checksumOk, true, 'header checksum updated with the TTL');
      assert.equal(r.packet.tcp?.checksumOk, true);
      assert.deepEqual(
        r.packet.eth,
        { src: A.mac, dst: A.nodeMac, type: 0x0800 },
        'MACs are the destination side',
      );
      assert.equal(r.skb?.mark, identityMark(A.identity));

      assert.deepEqual(points(r), [Point.FROM_LXC]);
      const t = r.traces[0]!;
      assert.equal(t.reason, TraceReason.CT_NEW);
      assert.deepEqual(
        [t.source, t.srcIdentity, t.dstIdentity, t.dstEndpoint, t.ifindex],
        [A.id, A.identity, B.identity, B.id, A.ifindex],
      );
      assert.equal(t.packet?.srcIp, A.ip);

      const e = ct(native, {
        s: A.ip,
        d: B.ip,
        sp: 33000,
        dp: 80,
        proto: IpProto.TCP,
        dir: TupleFlags.OUT,
      });
      assert.ok(e, 'egress conntrack entry');
      assert.deepEqual(
        [e.packetsFwd, e.bytesFwd, e.srcIdentity, e.ifindex, e.txFlagsSeen, e.flags],
        [1n, BigInt(frame.length), A.identity, A.ifindex, TcpFlag.SYN, 0],
      );
      assert.deepEqual(native.metric(METRIC_REASON_FORWARDED, MetricDir.EGRESS), {
        count: 1n,
        bytes: BigInt(frame.length),
      });
    });

    it('conntrack: the second packet is established, the reply direction is a reply', async () => {
      await native.run('lxc.fromContainer', fromPod(A, B.ip, tcpSyn(33001, 80)));
      const est = await native.run('lxc.fromContainer', fromPod(A, B.ip, tcpAck(33001, 80)));
      assert.equal(est.traces[0]?.reason, TraceReason.CT_ESTABLISHED);
      const e = ct(native, {
        s: A.ip,
        d: B.ip,
        sp: 33001,
        dp: 80,
        proto: IpProto.TCP,
        dir: TupleFlags.OUT,
      })!;
      assert.equal(e.packetsFwd, 2n);
      assert.equal(e.txFlagsSeen, TcpFlag.SYN | TcpFlag.ACK);
      assert.ok(e.flags & CtFlags.SEEN_NON_SYN, 'handshake completed');

      // B starts a connection to A (delivered with B's identity in the mark, as from a local
      // pod); A's answer leaving A is found as the reply of A's ingress entry.
      const inbound = arriving(B.ip, A.ip, tcpSyn(5000, 6000));
      const toA = await native.run('lxc.toContainer', inbound, { mark: identityMark(B.identity) });
      assert.equal(toA.retval, TcAction.OK);
      const reply = await native.run(
        'lxc.fromContainer',
        fromPod(A, B.ip, { tcp: { sport: 6000, dport: 5000, flags: TcpFlag.SYN | TcpFlag.ACK } }),
      );
      assert.equal(reply.retval, TcAction.REDIRECT, 'not via the stack: delivered to B directly');
      assert.equal(reply.traces[0]?.reason, TraceReason.CT_REPLY);
      const inEntry = ct(native, {
        s: B.ip,
        d: A.ip,
        sp: 5000,
        dp: 6000,
        proto: IpProto.TCP,
        dir: TupleFlags.IN,
      })!;
      assert.equal(inEntry.packetsRev, 1n);
      assert.equal(inEntry.rxFlagsSeen, TcpFlag.SYN | TcpFlag.ACK);
      assert.ok(inEntry.flags & CtFlags.SEEN_REPLY);
      assert.equal(
        ct(native, {
          s: A.ip,
          d: B.ip,
          sp: 6000,
          dp: 5000,
          proto: IpProto.TCP,
          dir: TupleFlags.OUT,
        }),
        undefined,
        'a reply creates no entry of its own',
      );
    });

    it('ICMP echo: the reply matches the request through the identifier', async () => {
      await native.run('lxc.toContainer', arriving(B.ip, A.ip, ping(77)), {
        mark: identityMark(B.identity),
      });
      const reply = await native.run(
        'lxc.fromContainer',
        fromPod(A, B.ip, { icmp: { type: IcmpType.ECHO_REPLY, id: 77, seq: 1 } }),
      );
      assert.equal(reply.traces[0]?.reason, TraceReason.CT_REPLY);
    });

    it('a reply on a connection the stack delivered goes back to the stack, untouched', async () => {
      // no identity mark: the node's stack delivered it (CT_F_VIA_STACK)
      await native.run('lxc.toContainer', arriving(B.ip, A.ip, udpTo(53, 4000)));
      const e = ct(native, {
        s: B.ip,
        d: A.ip,
        sp: 4000,
        dp: 53,
        proto: IpProto.UDP,
        dir: TupleFlags.IN,
      })!;
      assert.ok(e.flags & CtFlags.VIA_STACK);
      const frame = fromPod(A, B.ip, udpTo(4000, 53));
      const r = await native.run('lxc.fromContainer', frame);
      assert.equal(r.retval, TcAction.OK);
      assert.deepEqual(points(r), [Point.FROM_LXC, Point.TO_STACK]);
      assert.deepEqual(r.data, frame, 'TTL and MACs untouched: the stack routes it');
    });

    it('to a pod on another node (native routing) and to the world: the stack forwards', async () => {
      for (const [dst, identity] of [
        [REMOTE.ip, REMOTE.identity],
        [WORLD_IP, RESERVED_IDENTITIES.world],
      ] as const) {
        const frame = fromPod(A, dst, udpTo(8080));
        const r = await native.run('lxc.fromContainer', frame);
        assert.equal(r.retval, TcAction.OK, dst);
        assert.deepEqual(points(r), [Point.FROM_LXC, Point.TO_STACK], dst);
        assert.equal(r.traces[1]?.dstIdentity, identity, dst);
        assert.deepEqual(r.data, frame, `${dst}: unchanged`);
        assert.ok(
          ct(native, {
            s: A.ip,
            d: dst,
            sp: 40000,
            dp: 8080,
            proto: IpProto.UDP,
            dir: TupleFlags.OUT,
          }),
        );
      }
    });

    it('VXLAN mode: to a pod behind a tunnel endpoint, redirected to the VXLAN device with a to-overlay trace', async () => {
      const frame = fromPod(A, REMOTE.ip, udpTo(8080));
      const r = await vxlan.run('lxc.fromContainer', frame);
      assert.equal(r.retval, TcAction.REDIRECT);
      assert.deepEqual(points(r), [Point.FROM_LXC, Point.TO_OVERLAY]);
      const t = r.traces[1]!;
      assert.deepEqual([t.srcIdentity, t.dstIdentity], [A.identity, REMOTE.identity]);
      // the device builds the outer headers: the program leaves the inner frame as it is
      assert.deepEqual(r.data, frame);
    });

    it('VXLAN mode: a destination marked skip-tunnel and the world go to the stack', async () => {
      vxlan.dp.ipcache.set(
        { prefix: REMOTE.ip },
        {
          identity: REMOTE.identity,
          tunnelEndpoint: PEER_NODE_IP,
          flags: IpcacheFlags.SKIP_TUNNEL,
        },
      );
      for (const dst of [REMOTE.ip, WORLD_IP]) {
        const r = await vxlan.run('lxc.fromContainer', fromPod(A, dst, udpTo(8080)));
        assert.equal(r.retval, TcAction.OK, dst);
        assert.deepEqual(points(r), [Point.FROM_LXC, Point.TO_STACK], dst);
      }
    });

    it('ARP: a request for the gateway is answered with the host veth MAC and sent back out', async () => {
      const r = await native.run(
        'lxc.fromContainer',
        arpFrame({ op: ArpOp.REQUEST, senderMac: A.mac, senderIp: A.ip, targetIp: '10.0.1.1' }),
      );
      assert.equal(r.retval, TcAction.REDIRECT);
      assert.deepEqual(r.packet.eth, { src: A.nodeMac, dst: A.mac, type: 0x0806 });
      assert.deepEqual(r.packet.arp, {
        op: ArpOp.REPLY,
        senderMac: A.nodeMac,
        senderIp: '10.0.1.1',
        targetMac: A.mac,
        targetIp: A.ip,
      });
      assert.deepEqual(r.events, []);
    });

    it("ARP: not answered for the pod's own address, for an unknown sender, or with the responder off", async () => {
      const cases: [PacketHarness, Buffer, string][] = [
        [
          native,
          arpFrame({ op: ArpOp.REQUEST, senderMac: A.mac, senderIp: A.ip, targetIp: A.ip }),
          'own address',
        ],
        [
          native,
          arpFrame({
            op: ArpOp.REQUEST,
            senderMac: A.mac,
            senderIp: '10.0.1.99',
            targetIp: '10.0.1.1',
          }),
          'unknown sender',
        ],
        [
          native,
          arpFrame({ op: ArpOp.REQUEST, senderMac: B.mac, senderIp: B.ip, targetIp: '10.0.1.1' }),
          'sender on another interface',
        ],
        [
          native,
          arpFrame({
            op: ArpOp.REPLY,
            senderMac: A.mac,
            senderIp: A.ip,
            targetMac: A.nodeMac,
            targetIp: '10.0.1.1',
          }),
          'a reply',
        ],
        [
          noArp,
          arpFrame({ op: ArpOp.REQUEST, senderMac: A.mac, senderIp: A.ip, targetIp: '10.0.1.1' }),
          'responder off',
        ],
      ];
      for (const [h, frame, what] of cases) {
        const r = await h.run('lxc.fromContainer', frame);
        assert.equal(r.retval, TcAction.OK, what);
        assert.deepEqual(r.data, frame, what);
      }
    });
  });

  describe('bpf_lxc: cil_to_container (pod ingress)', () => {
    it('from a local pod (identity in the mark): MACs rewritten for the pod, mark cleared, conntrack entry with the sender identity', async () => {
      const frame = arriving(B.ip, A.ip, udpTo(53));
      const r = await native.run('lxc.toContainer', frame, { mark: identityMark(B.identity) });
      assert.equal(r.retval, TcAction.OK);
      assert.deepEqual(r.packet.eth, { src: A.nodeMac, dst: A.mac, type: 0x0800 });
      assert.equal(r.packet.ipv4?.ttl, 64, "the TTL is the forwarder's business");
      assert.equal(r.skb?.mark, 0, 'the pod does not see the mark');
      assert.deepEqual(points(r), [Point.TO_LXC]);
      assert.deepEqual(
        [r.traces[0]!.srcIdentity, r.traces[0]!.dstIdentity],
        [B.identity, A.identity],
      );
      const e = ct(native, {
        s: B.ip,
        d: A.ip,
        sp: 40000,
        dp: 53,
        proto: IpProto.UDP,
        dir: TupleFlags.IN,
      })!;
      assert.deepEqual([e.srcIdentity, e.flags & CtFlags.VIA_STACK], [B.identity, 0]);
      assert.equal(native.metric(METRIC_REASON_FORWARDED, MetricDir.INGRESS).count, 1n);
    });

    it("without a mark the sender's identity comes from the ipcache, else world", async () => {
      const fromRemote = await native.run('lxc.toContainer', arriving(REMOTE.ip, A.ip, udpTo(53)));
      assert.equal(fromRemote.traces[0]?.srcIdentity, REMOTE.identity);
      const fromWorld = await native.run('lxc.toContainer', arriving(WORLD_IP, A.ip, udpTo(53)));
      assert.equal(fromWorld.traces[0]?.srcIdentity, RESERVED_IDENTITIES.world);
      const e = ct(native, {
        s: WORLD_IP,
        d: A.ip,
        sp: 40000,
        dp: 53,
        proto: IpProto.UDP,
        dir: TupleFlags.IN,
      })!;
      assert.ok(e.flags & CtFlags.VIA_STACK);
    });

    it('ARP passes', async () => {
      const frame = arpFrame({
        op: ArpOp.REQUEST,
        senderMac: A.nodeMac,
        senderIp: NODE_IP,
        targetIp: A.ip,
      });
      const r = await native.run('lxc.toContainer', frame);
      assert.equal(r.retval, TcAction.OK);
      assert.deepEqual(r.data, frame);
    });
  });

  describe('bpf_host: cil_from_netdev / cil_to_netdev (underlay)', () => {
    it('legacy host routing: a natively routed packet for a local pod goes to the stack with the sender identity in the mark', async () => {
      const frame = arriving(REMOTE.ip, A.ip, tcpSyn(1234, 80));
      const r = await native.run('host.fromNetdev', frame);
      assert.equal(r.retval, TcAction.OK);
      assert.equal(r.skb?.mark, identityMark(REMOTE.identity));
      assert.deepEqual(r.data, frame);
      assert.deepEqual(points(r), [Point.FROM_NETWORK]);
      assert.deepEqual(
        [r.traces[0]!.srcIdentity, r.traces[0]!.dstIdentity],
        [REMOTE.identity, A.identity],
      );
    });

    it('traffic that is not for a pod (the node, ARP) passes untouched, without events', async () => {
      seedEndpoint(native, { ...A, ip: NODE_IP, id: 1 }, EndpointFlags.HOST);
      for (const frame of [
        arriving(PEER_NODE_IP, NODE_IP, udpTo(4789)),
        arriving(PEER_NODE_IP, '192.168.50.77', udpTo(22)),
        arpFrame({
          op: ArpOp.REQUEST,
          senderMac: B.mac,
          senderIp: PEER_NODE_IP,
          targetIp: NODE_IP,
        }),
      ]) {
        const r = await native.run('host.fromNetdev', frame);
        assert.equal(r.retval, TcAction.OK);
        assert.equal(r.skb?.mark, 0);
        assert.deepEqual(r.events, []);
      }
    });

    it('BPF host routing: delivered into the pod (redirect to its peer) with TTL, MACs, conntrack and a to-endpoint trace', async () => {
      const r = await bpfHost.run('host.fromNetdev', arriving(REMOTE.ip, A.ip, tcpSyn(1234, 80)));
      assert.equal(r.retval, TcAction.REDIRECT);
      assert.equal(r.packet.ipv4?.ttl, 63);
      assert.equal(r.packet.ipv4?.checksumOk, true);
      assert.deepEqual(r.packet.eth, { src: A.nodeMac, dst: A.mac, type: 0x0800 });
      assert.equal(r.skb?.mark, 0);
      assert.deepEqual(points(r), [Point.FROM_NETWORK, Point.TO_LXC]);
      const e = ct(bpfHost, {
        s: REMOTE.ip,
        d: A.ip,
        sp: 1234,
        dp: 80,
        proto: IpProto.TCP,
        dir: TupleFlags.IN,
      })!;
      assert.equal(e.srcIdentity, REMOTE.identity);
    });

    it('to-netdev counts pod traffic leaving the node, and only that', async () => {
      const frame = fromPod(A, REMOTE.ip, udpTo(8080));
      const r = await native.run('host.toNetdev', frame);
      assert.equal(r.retval, TcAction.OK);
      assert.deepEqual(r.data, frame);
      assert.deepEqual(points(r), [Point.TO_NETWORK]);
      assert.equal(r.traces[0]?.srcIdentity, A.identity);
      assert.equal(native.metric(METRIC_REASON_FORWARDED, MetricDir.EGRESS).count, 1n);
      const node = await native.run('host.toNetdev', arriving(NODE_IP, PEER_NODE_IP, udpTo(4789)));
      assert.equal(node.retval, TcAction.OK);
      assert.deepEqual(node.events, []);
    });
  });

  describe('bpf_overlay: cil_to_overlay / cil_from_overlay', () => {
    it('a packet the node routed into the device gets its tunnel key from the ipcache, with identity host', async () => {
      const frame = arriving(NODE_IP, REMOTE.ip, udpTo(8080));
      const r = await vxlan.run('overlay.toOverlay', frame);
      assert.equal(r.retval, TcAction.OK);
      assert.deepEqual(points(r), [Point.TO_OVERLAY]);
      assert.deepEqual(
        [r.traces[0]!.srcIdentity, r.traces[0]!.dstIdentity],
        [RESERVED_IDENTITIES.host, REMOTE.identity],
      );
      assert.deepEqual(r.data, frame);
      assert.equal(vxlan.metric(METRIC_REASON_FORWARDED, MetricDir.EGRESS).count, 1n);
    });

    it('ARP and non-IP frames pass the overlay untouched', async () => {
      const frame = arpFrame({
        op: ArpOp.REQUEST,
        senderMac: B.mac,
        senderIp: REMOTE.ip,
        targetIp: A.ip,
      });
      assert.equal((await vxlan.run('overlay.fromOverlay', frame)).retval, TcAction.OK);
      assert.equal((await vxlan.run('overlay.toOverlay', frame)).retval, TcAction.OK);
    });
  });

  describe('bpf_xdp: cil_xdp_entry', () => {
    it('passes valid IPv4 and anything that is not IPv4', async () => {
      for (const frame of [
        arriving(REMOTE.ip, A.ip, udpTo(53)),
        arpFrame({
          op: ArpOp.REQUEST,
          senderMac: B.mac,
          senderIp: PEER_NODE_IP,
          targetIp: NODE_IP,
        }),
        ipv6UdpFrame({
          eth: { src: B.mac, dst: A.mac },
          ip: { src: 'fd00::1', dst: 'fd00::2' },
          udp: { sport: 1, dport: 2 },
        }),
      ]) {
        const r = await native.run('xdp.entry', frame);
        assert.equal(r.retval, XdpAction.PASS);
      }
    });

    it('drops IPv4 headers that cannot be valid and counts them (no event)', async () => {
      const bad = [
        ipv4Frame({
          eth: { src: B.mac, dst: A.mac },
          ip: { src: REMOTE.ip, dst: A.ip, ihl: 4 },
          l4: udpTo(53),
        }),
        ipv4Frame({
          eth: { src: B.mac, dst: A.mac },
          ip: { src: REMOTE.ip, dst: A.ip, version: 6 },
          l4: udpTo(53),
        }),
        ipv4Frame({
          eth: { src: B.mac, dst: A.mac },
          ip: { src: REMOTE.ip, dst: A.ip, totalLength: 12 },
          l4: udpTo(53),
        }),
        // an IPv4 ethertype and half a header
        arriving(REMOTE.ip, A.ip, udpTo(53)).subarray(0, 14 + 10),
      ];
      for (const frame of bad) {
        const r = await native.run('xdp.entry', frame);
        assert.equal(r.retval, XdpAction.DROP);
        assert.deepEqual(r.events, []);
      }
      assert.equal(native.metric(DropReason.INVALID, MetricDir.INGRESS).count, BigInt(bad.length));
    });
  });

  describe('drop reasons: each reported with its reason, file and direction, and counted', () => {
    const table: {
      what: string;
      harness: () => PacketHarness;
      program: ProgramName;
      frame: () => Buffer;
      mark?: number;
      reason: number;
      file: string;
      dir: number;
      srcIdentity?: number;
      /** The program counted the packet as forwarded before it dropped it. */
      countedForwarded?: true;
    }[] = [
      {
        what: 'from-container: IPv4 header with IHL < 5',
        harness: () => native,
        program: 'lxc.fromContainer',
        frame: () =>
          ipv4Frame({
            eth: { src: A.mac, dst: A.nodeMac },
            ip: { src: A.ip, dst: B.ip, ihl: 4 },
            l4: udpTo(53),
          }),
        reason: DropReason.INVALID,
        file: 'bpf_lxc.c',
        dir: MetricDir.EGRESS,
      },
      {
        what: 'from-container: total length beyond the frame',
        harness: () => native,
        program: 'lxc.fromContainer',
        frame: () =>
          ipv4Frame({
            eth: { src: A.mac, dst: A.nodeMac },
            ip: { src: A.ip, dst: B.ip, totalLength: 1500 },
            l4: udpTo(53),
          }),
        reason: DropReason.INVALID,
        file: 'bpf_lxc.c',
        dir: MetricDir.EGRESS,
      },
      {
        what: 'from-container: a source address that is no endpoint',
        harness: () => native,
        program: 'lxc.fromContainer',
        frame: () => fromPod({ ...A, ip: '10.0.1.99' }, B.ip, udpTo(53)),
        reason: DropReason.INVALID_SIP,
        file: 'bpf_lxc.c',
        dir: MetricDir.EGRESS,
      },
      {
        what: "from-container: another endpoint's address on this interface (spoofing)",
        harness: () => native,
        program: 'lxc.fromContainer',
        frame: () => fromPod({ ...A, ip: B.ip }, A.ip, udpTo(53)),
        reason: DropReason.INVALID_SIP,
        file: 'bpf_lxc.c',
        dir: MetricDir.EGRESS,
      },
      {
        what: 'from-container: a non-first fragment',
        harness: () => native,
        program: 'lxc.fromContainer',
        frame: () =>
          ipv4Frame({
            eth: { src: A.mac, dst: A.nodeMac },
            ip: { src: A.ip, dst: B.ip, fragmentOffset: 185 },
            l4: { raw: { protocol: IpProto.UDP, payload: Buffer.alloc(64) } },
          }),
        reason: DropReason.FRAG_NOSUPPORT,
        file: 'bpf_lxc.c',
        dir: MetricDir.EGRESS,
        srcIdentity: A.identity,
      },
      {
        what: 'from-container: a TCP header cut short',
        harness: () => native,
        program: 'lxc.fromContainer',
        frame: () =>
          ipv4Frame({
            eth: { src: A.mac, dst: A.nodeMac },
            ip: { src: A.ip, dst: B.ip },
            l4: { raw: { protocol: IpProto.TCP, payload: Buffer.alloc(4) } },
          }),
        reason: DropReason.CT_INVALID_HDR,
        file: 'bpf_lxc.c',
        dir: MetricDir.EGRESS,
      },
      {
        what: 'from-container: TTL 1 to a local endpoint',
        harness: () => native,
        program: 'lxc.fromContainer',
        frame: () => fromPod(A, B.ip, udpTo(53), { ttl: 1 }),
        reason: DropReason.TTL_EXCEEDED,
        file: 'bpf_lxc.c',
        dir: MetricDir.EGRESS,
        srcIdentity: A.identity,
        // handle_ipv4_from_lxc counts forwarded packets before the local delivery's TTL check
        countedForwarded: true,
      },
      {
        what: 'from-container: IPv6',
        harness: () => native,
        program: 'lxc.fromContainer',
        frame: () =>
          ipv6UdpFrame({
            eth: { src: A.mac, dst: A.nodeMac },
            ip: { src: 'fd00::2', dst: 'fd00::3' },
            udp: { sport: 1, dport: 2 },
          }),
        reason: DropReason.UNKNOWN_L3,
        file: 'bpf_lxc.c',
        dir: MetricDir.EGRESS,
      },
      {
        what: 'to-container: no endpoint for the destination on this interface',
        harness: () => native,
        program: 'lxc.toContainer',
        frame: () => arriving(REMOTE.ip, B.ip, udpTo(53)),
        reason: DropReason.NO_LXC,
        file: 'bpf_lxc.c',
        dir: MetricDir.INGRESS,
      },
      {
        what: 'to-container: a non-first fragment',
        harness: () => native,
        program: 'lxc.toContainer',
        mark: identityMark(B.identity),
        frame: () =>
          ipv4Frame({
            eth: { src: B.mac, dst: A.mac },
            ip: { src: B.ip, dst: A.ip, fragmentOffset: 185 },
            l4: { raw: { protocol: IpProto.UDP, payload: Buffer.alloc(64) } },
          }),
        reason: DropReason.FRAG_NOSUPPORT,
        file: 'bpf_lxc.c',
        dir: MetricDir.INGRESS,
        srcIdentity: B.identity,
      },
      {
        what: 'to-container: IPv6',
        harness: () => native,
        program: 'lxc.toContainer',
        frame: () =>
          ipv6UdpFrame({
            eth: { src: B.mac, dst: A.mac },
            ip: { src: 'fd00::3', dst: 'fd00::2' },
            udp: { sport: 1, dport: 2 },
          }),
        reason: DropReason.UNKNOWN_L3,
        file: 'bpf_lxc.c',
        dir: MetricDir.INGRESS,
      },
      {
        what: 'from-netdev: a malformed IPv4 header',
        harness: () => native,
        program: 'host.fromNetdev',
        frame: () =>
          ipv4Frame({
            eth: { src: B.mac, dst: A.mac },
            ip: { src: REMOTE.ip, dst: A.ip, version: 5 },
            l4: udpTo(53),
          }),
        reason: DropReason.INVALID,
        file: 'bpf_host.c',
        dir: MetricDir.INGRESS,
      },
      {
        what: 'from-netdev with BPF host routing: TTL 1 for a local pod',
        harness: () => bpfHost,
        program: 'host.fromNetdev',
        frame: () => arriving(REMOTE.ip, A.ip, udpTo(53), 1),
        reason: DropReason.TTL_EXCEEDED,
        file: 'bpf_host.c',
        dir: MetricDir.INGRESS,
        srcIdentity: REMOTE.identity,
      },
      {
        what: 'from-overlay: no tunnel metadata',
        harness: () => vxlan,
        program: 'overlay.fromOverlay',
        frame: () => arriving(REMOTE.ip, A.ip, udpTo(53)),
        reason: DropReason.NO_TUNNEL_KEY,
        file: 'bpf_overlay.c',
        dir: MetricDir.INGRESS,
      },
      {
        what: 'from-overlay: IPv6',
        harness: () => vxlan,
        program: 'overlay.fromOverlay',
        frame: () =>
          ipv6UdpFrame({
            eth: { src: B.mac, dst: A.mac },
            ip: { src: 'fd00::3', dst: 'fd00::2' },
            udp: { sport: 1, dport: 2 },
          }),
        reason: DropReason.UNKNOWN_L3,
        file: 'bpf_overlay.c',
        dir: MetricDir.INGRESS,
      },
      {
        what: 'to-overlay: no tunnel endpoint for the destination',
        harness: () => vxlan,
        program: 'overlay.toOverlay',
        frame: () => arriving(NODE_IP, WORLD_IP, udpTo(53)),
        reason: DropReason.NO_TUNNEL_ENDPOINT,
        file: 'bpf_overlay.c',
        dir: MetricDir.EGRESS,
        srcIdentity: RESERVED_IDENTITIES.host,
      },
      {
        what: 'to-overlay: a malformed IPv4 header',
        harness: () => vxlan,
        program: 'overlay.toOverlay',
        frame: () =>
          ipv4Frame({
            eth: { src: B.mac, dst: A.mac },
            ip: { src: NODE_IP, dst: REMOTE.ip, ihl: 3 },
            l4: udpTo(53),
          }),
        reason: DropReason.INVALID,
        file: 'bpf_overlay.c',
        dir: MetricDir.EGRESS,
      },
    ];

    for (const c of table) {
      it(c.what, async () => {
        const h = c.harness();
        const frame = c.frame();
        const r = await h.run(c.program, frame, { mark: c.mark ?? 0 });
        assert.equal(r.retval, TcAction.SHOT);
        assert.equal(r.drops.length, 1, 'one drop event');
        const d = r.drops[0]!;
        assert.equal(d.reason, c.reason, `reason ${d.reason} (${d.reasonName})`);
        assert.equal(d.file, c.file);
        assert.ok(d.line > 0);
        assert.equal(d.lenOrig, frame.length);
        if (c.srcIdentity !== undefined) assert.equal(d.srcIdentity, c.srcIdentity);
        assert.deepEqual(h.metric(c.reason, c.dir), { count: 1n, bytes: BigInt(frame.length) });
        assert.equal(
          h.metric(METRIC_REASON_FORWARDED, c.dir).count,
          c.countedForwarded ? 1n : 0n,
          'forwarded counter',
        );
      });
    }
  });
});
