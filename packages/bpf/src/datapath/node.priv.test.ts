// One node, two pods: real ICMP, TCP and UDP between pod namespaces crossing the endpoint
// programs, observed from JavaScript through conntrack, counters and ring buffer events; a
// spoofed packet dropped with its reason; the node reaching its pods; and a reload of the
// programs over the pinned maps that keeps every entry and the traffic.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { RESERVED_IDENTITIES } from '@ciliate/contracts';
import { NetScope, waitFor, type Netns } from '@ciliate/testkit';

import { destroyTcHook } from '../attach.js';
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
import { CtFlags, DropReason, MetricDir, TraceObservationPoint, TupleFlags } from './constants.js';
import { Datapath, ctExpiresIn, monotonicSeconds } from './datapath.js';
import type { DatapathEvent, DropEvent, TraceEvent } from './events.js';

const NODE_IP = '192.168.77.1';
const GATEWAY = '10.200.1.1';
const ID_A = 1001;
const ID_B = 1002;

describe('datapath on one node', () => {
  const scope = new NetScope();
  const pins = pinDir('node');
  let dp: Datapath;
  let node: Netns;
  let a: Pod;
  let b: Pod;
  let reader: RingBufferReader;
  const events: DatapathEvent[] = [];

  const traces = () => events.filter((e): e is TraceEvent => e.kind === 'trace');
  const drops = () => events.filter((e): e is DropEvent => e.kind === 'drop');

  function programEndpoint(p: Pod, id: number, identity: number): void {
    dp.endpoints.set(
      { ip: p.ip },
      {
        ifindex: p.hostIfindex,
        endpointId: id,
        flags: 0,
        mac: p.mac,
        nodeMac: p.hostMac,
        identity,
      },
    );
  }

  before(async () => {
    node = await scope.netns('node');
    await quietNetns(node.name, true);
    await node.ip(['addr', 'add', `${NODE_IP}/32`, 'dev', 'lo']);
    a = await addPod(scope, node, { ip: '10.200.1.2', gateway: GATEWAY });
    b = await addPod(scope, node, { ip: '10.200.1.3', gateway: GATEWAY });

    dp = Datapath.load({ pinDir: pins.dir, config: { traceMode: 'all', nodeIPv4: NODE_IP } });
    programEndpoint(a, 11, ID_A);
    programEndpoint(b, 12, ID_B);
    dp.ipcache.set(
      { prefix: NODE_IP },
      { identity: RESERVED_IDENTITIES.host, tunnelEndpoint: null },
    );
    dp.attachEndpoint({ ifindex: a.hostIfindex, netns: node.name });
    dp.attachEndpoint({ ifindex: b.hostIfindex, netns: node.name });
    reader = dp.openEvents((batch) => events.push(...batch), { keepAlive: false });
  });

  after(async () => {
    try {
      reader?.close();
      for (const p of [a, b]) if (p) destroyTcHook({ ifindex: p.hostIfindex, netns: node.name });
      dp?.close();
    } finally {
      await scope.close();
      pins.remove();
    }
  });

  it('ICMP between two pods crosses both programs; the reply is tracked on both sides', async () => {
    events.length = 0;
    assert.ok(await ping(a.ns, b.ip, { count: 3 }), 'pod A pings pod B');
    // the gateway was resolved by the endpoint program's ARP responder
    const neigh = JSON.parse(await a.ns.ip(['-j', 'neigh', 'show', GATEWAY])) as {
      lladdr?: string;
    }[];
    assert.equal(neigh[0]?.lladdr, a.hostMac, 'gateway answered with the host-side veth MAC');

    const egress = [...dp.ct4.entries()].find(
      ([k]) =>
        k.saddr === a.ip && k.daddr === b.ip && k.nexthdr === 1 && k.flags === TupleFlags.OUT,
    );
    const ingress = [...dp.ct4.entries()].find(
      ([k]) => k.saddr === a.ip && k.daddr === b.ip && k.nexthdr === 1 && k.flags === TupleFlags.IN,
    );
    assert.ok(egress, "pod A's egress entry");
    assert.ok(ingress, "pod B's ingress entry");
    for (const [, e] of [egress, ingress]) {
      assert.ok(e.packetsFwd >= 1n, 'requests counted');
      assert.ok(e.packetsRev >= 1n, 'replies counted on the same entry');
      assert.ok(e.flags & CtFlags.SEEN_REPLY);
    }
    assert.equal(egress[1].srcIdentity, ID_A);
    assert.equal(ingress[1].srcIdentity, ID_A, 'source identity carried to the destination side');
    const left = ctExpiresIn(egress[1], monotonicSeconds());
    assert.ok(left > 50 && left <= 60, `non-TCP lifetime 60s, ${left}s left`);

    await waitFor('trace events', () =>
      traces().some(
        (t) => t.observationPoint === TraceObservationPoint.TO_LXC && t.packet?.icmpType === 0,
      )
        ? true
        : undefined,
    );
    const from = traces().find(
      (t) => t.observationPoint === TraceObservationPoint.FROM_LXC && t.packet?.dstIp === b.ip,
    );
    assert.ok(from, 'from-endpoint trace for the request');
    assert.equal(from.observationPointName, 'from-endpoint');
    assert.equal(from.source, 11);
    assert.equal(from.srcIdentity, ID_A);
    assert.equal(from.dstIdentity, ID_B);
    assert.equal(from.dstEndpoint, 12);
    assert.equal(from.reasonName, 'new');
    const to = traces().find(
      (t) => t.observationPoint === TraceObservationPoint.TO_LXC && t.packet?.dstIp === b.ip,
    );
    assert.ok(to, 'to-endpoint trace at pod B');
    assert.equal(to.srcIdentity, ID_A);
    assert.equal(to.packet?.dstMac, b.mac, 'MACs rewritten for the destination pod');
    assert.ok(
      traces().some((t) => t.reasonName === 'reply' && t.packet?.srcIp === b.ip),
      'replies traced as replies',
    );
  });

  it('TCP between two pods: handshake, data and close tracked with TCP timeouts', async () => {
    const server = await startServer(b.ns, 'tcp', 8080);
    try {
      const r = await client(a.ns, 'tcp', b.ip, 8080, 200_000);
      assert.ok(r.ok, r.error);
      assert.equal(r.bytes, 200_000);
      const key = { saddr: a.ip, daddr: b.ip, sport: r.localPort!, dport: 8080, nexthdr: 6 };
      const out = dp.ct4.get({ ...key, flags: TupleFlags.OUT });
      const inn = dp.ct4.get({ ...key, flags: TupleFlags.IN });
      assert.ok(out && inn, 'both sides of the connection are in conntrack');
      for (const e of [out, inn]) {
        assert.ok(e.txFlagsSeen & 0x02 && e.rxFlagsSeen & 0x12, 'SYN one way, SYN-ACK back');
        assert.ok(e.flags & CtFlags.SEEN_NON_SYN);
        assert.ok(e.bytesFwd > 200_000n && e.bytesRev > 200_000n, 'payload both ways');
        // closed: FIN both ways moves the entry to the close timeout
        assert.equal(
          e.flags & (CtFlags.TX_CLOSING | CtFlags.RX_CLOSING),
          CtFlags.TX_CLOSING | CtFlags.RX_CLOSING,
        );
        const left = ctExpiresIn(e);
        assert.ok(left > 0 && left <= 10, `close timeout, ${left}s left`);
      }
    } finally {
      await server.stop();
    }
  });

  it('TCP established connections get the long timeout', async () => {
    const server = await startServer(b.ns, 'tcp', 8081);
    try {
      // a connection that stays open while we look
      const proc = a.ns.exec(process.execPath, [
        '-e',
        `
        const s = require('net').connect(8081, '${b.ip}', () => { s.write('x'); });
        s.on('data', () => { console.log(s.localPort); setTimeout(() => s.end(), 1500); });
      `,
      ]);
      const established = await waitFor('an established entry', () =>
        [...dp.ct4.entries()].find(
          ([k, e]) =>
            k.dport === 8081 &&
            k.flags === TupleFlags.OUT &&
            (e.flags & CtFlags.SEEN_NON_SYN) !== 0 &&
            (e.flags & CtFlags.TX_CLOSING) === 0,
        ),
      );
      const left = ctExpiresIn(established[1]);
      assert.ok(left > 7900 && left <= 8000, `established TCP: ${left}s left`);
      await proc;
    } finally {
      await server.stop();
    }
  });

  it('UDP between two pods: request and reply on one conntrack entry per side', async () => {
    const server = await startServer(b.ns, 'udp', 5353);
    try {
      const r = await client(a.ns, 'udp', b.ip, 5353, 5);
      assert.ok(r.ok, r.error);
      const key = { saddr: a.ip, daddr: b.ip, sport: r.localPort!, dport: 5353, nexthdr: 17 };
      const out = dp.ct4.get({ ...key, flags: TupleFlags.OUT });
      const inn = dp.ct4.get({ ...key, flags: TupleFlags.IN });
      assert.equal(out?.packetsFwd, 5n);
      assert.equal(out?.packetsRev, 5n);
      assert.equal(inn?.packetsFwd, 5n);
      assert.equal(inn?.packetsRev, 5n);
    } finally {
      await server.stop();
    }
  });

  it('forward counters by direction are readable from JavaScript', () => {
    const rows = dp.readMetrics();
    const fwd = (dir: number) => rows.find((r) => r.reason === 0 && r.dir === dir);
    assert.ok((fwd(MetricDir.EGRESS)?.count ?? 0n) > 10n);
    assert.ok((fwd(MetricDir.INGRESS)?.count ?? 0n) > 10n);
    assert.ok((fwd(MetricDir.EGRESS)?.bytes ?? 0n) > 400_000n);
    const stats = dp.readEventStats();
    assert.ok(stats.submitted > 0n);
    assert.equal(stats.lost, 0n);
  });

  it('pods reach their node and the node reaches its pods', async () => {
    assert.ok(await ping(a.ns, NODE_IP), 'pod -> node');
    assert.ok(await ping(node, b.ip), 'node -> pod');
    const toStack = traces().find(
      (t) => t.observationPoint === TraceObservationPoint.TO_STACK && t.packet?.dstIp === NODE_IP,
    );
    assert.ok(toStack, 'handed to the stack');
    assert.equal(
      toStack.dstIdentity,
      RESERVED_IDENTITIES.host,
      'the ipcache names the node "host"',
    );
  });

  it('a spoofed source address is dropped with INVALID_SOURCE_IP (132), reported and counted', async () => {
    events.length = 0;
    await a.ns.ip(['addr', 'add', '10.200.9.9/32', 'dev', 'eth0']);
    try {
      assert.equal(await ping(a.ns, b.ip, { source: '10.200.9.9' }), false);
    } finally {
      await a.ns.ip(['addr', 'del', '10.200.9.9/32', 'dev', 'eth0']);
    }
    const drop = await waitFor('a drop event', () =>
      drops().find((d) => d.packet?.srcIp === '10.200.9.9'),
    );
    assert.equal(drop.reason, DropReason.INVALID_SIP);
    assert.equal(drop.reasonName, 'INVALID_SOURCE_IP');
    assert.equal(drop.reasonText, 'Invalid source ip');
    assert.equal(drop.file, 'bpf_lxc.c');
    assert.ok(drop.line > 0);
    assert.equal(drop.ifindex, a.hostIfindex);
    const counted = dp
      .readMetrics()
      .find((r) => r.reason === DropReason.INVALID_SIP && r.dir === MetricDir.EGRESS);
    assert.ok(counted && counted.count >= 1n);
  });

  it('a packet for an address the endpoint does not own is not delivered (NO_LXC, 152)', async () => {
    events.length = 0;
    // the node routes a foreign address into pod B's veth, with a neighbour so it is sent
    await node.ip(['route', 'add', '10.200.1.99/32', 'dev', b.hostIf]);
    await node.ip([
      'neigh',
      'add',
      '10.200.1.99',
      'lladdr',
      b.mac,
      'dev',
      b.hostIf,
      'nud',
      'permanent',
    ]);
    try {
      assert.equal(await ping(node, '10.200.1.99'), false);
    } finally {
      await node.ip(['neigh', 'del', '10.200.1.99', 'dev', b.hostIf]);
      await node.ip(['route', 'del', '10.200.1.99/32', 'dev', b.hostIf]);
    }
    const drop = await waitFor('a drop event', () =>
      drops().find((d) => d.packet?.dstIp === '10.200.1.99'),
    );
    assert.equal(drop.reason, DropReason.NO_LXC);
    assert.equal(drop.reasonName, 'NO_MATCHING_LOCAL_CONTAINER_FOUND');
    assert.equal(drop.ifindex, b.hostIfindex);
  });

  it('reloading the programs over the pinned maps keeps endpoints, conntrack and traffic', async () => {
    const server = await startServer(b.ns, 'tcp', 8082);
    try {
      const ctBefore = [...dp.ct4.keys()].length;
      const epBefore = [...dp.endpoints.entries()];
      // the agent goes away: descriptors closed, attachments stay and keep forwarding
      reader.close();
      dp.close();
      assert.ok(await ping(a.ns, b.ip), 'forwarding without any userspace');

      dp = Datapath.load({ pinDir: pins.dir, config: { traceMode: 'all', nodeIPv4: NODE_IP } });
      reader = dp.openEvents((batch) => events.push(...batch), { keepAlive: false });
      assert.deepEqual([...dp.endpoints.entries()], epBefore, 'endpoints restored from the pins');
      assert.ok([...dp.ct4.keys()].length >= ctBefore, 'conntrack kept');
      // new programs replace the old ones atomically
      dp.attachEndpoint({ ifindex: a.hostIfindex, netns: node.name });
      dp.attachEndpoint({ ifindex: b.hostIfindex, netns: node.name });
      const r = await client(a.ns, 'tcp', b.ip, 8082, 10_000);
      assert.ok(r.ok, r.error);
      assert.ok(
        dp.ct4.get({
          saddr: a.ip,
          daddr: b.ip,
          sport: r.localPort!,
          dport: 8082,
          nexthdr: 6,
          flags: TupleFlags.OUT,
        }),
      );
    } finally {
      await server.stop();
    }
  });
});
