import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  DropReason,
  NotifyType,
  TraceObservationPoint,
  decodeEvent,
  dropNotify,
  encode,
  traceNotify,
  type DatapathEvent as DecodedEvent,
} from '@ciliate/bpf';
import { DatapathEventSchema, datapathSubjects } from '@ciliate/contracts';
import { Registry } from '@ciliate/runtime';
import type { Status } from '@nats-io/transport-node';
import fc from 'fast-check';

import {
  formatUnixNanos,
  realtimeOffsetNs,
  startEventPublisher,
  toWireEvent,
  type EventSource,
} from './publisher.js';

function ipv4Packet(proto: number, l4: Buffer): Buffer {
  const p = Buffer.alloc(34 + l4.length);
  Buffer.from('0a0000000002' + '0a0000000001', 'hex').copy(p, 0);
  p.writeUInt16BE(0x0800, 12);
  p[14] = 0x45;
  p.writeUInt16BE(20 + l4.length, 16);
  p[22] = 64;
  p[23] = proto;
  Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(p, 26);
  l4.copy(p, 34);
  return p;
}

function tcp(sport: number, dport: number, flags: number): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h[12] = 0x50;
  h[13] = flags;
  return ipv4Packet(6, h);
}

const echoRequest = (): Buffer => ipv4Packet(1, Buffer.from([8, 0, 0, 0, 0, 1, 0, 1]));

const header = { hash: 7, version: 1, srcIdentity: 300, dstIdentity: 301, ifindex: 9 };

function trace(data: Buffer, point: number, state: number, ktime = 1_000_000_123n): DecodedEvent {
  return decodeEvent(
    encode(traceNotify, {
      ...header,
      type: NotifyType.TRACE,
      subtype: point,
      source: 12,
      lenOrig: data.length,
      lenCap: data.length,
      ktime,
      dstId: 13,
      reason: state,
      flags: 0,
      data,
    }),
  );
}

function drop(data: Buffer, reason: number, ktime = 2_000_000_000n): DecodedEvent {
  return decodeEvent(
    encode(dropNotify, {
      ...header,
      type: NotifyType.DROP,
      subtype: reason,
      source: 12,
      lenOrig: 1500,
      lenCap: data.length,
      ktime,
      dstId: 0,
      line: 41,
      file: 1,
      extError: 0,
      data,
    }),
  );
}

const ctx = { node: 'node-1', realtimeOffsetNs: 1_700_000_000_000_000_000n };

describe('datapath events on the wire', () => {
  it("a drop carries Cilium's reason code and text, where it was taken, and the tuple", () => {
    const wire = toWireEvent(drop(tcp(40000, 80, 0x02), DropReason.INVALID_SIP), ctx);
    assert.deepEqual(wire, {
      type: 'drop',
      node: 'node-1',
      time: '2023-11-14T22:13:22.000000000Z',
      reason: 132,
      reasonName: 'Invalid source ip',
      file: 'bpf_lxc.c',
      line: 41,
      endpointId: 12,
      ifindex: 9,
      srcIdentity: 300,
      dstIdentity: 301,
      length: 1500,
      proto: 'TCP',
      src: '10.0.0.1',
      sport: 40000,
      dst: '10.0.0.2',
      dport: 80,
      summary: 'TCP SYN',
    });
    assert.ok(DatapathEventSchema.safeParse(wire).success);
  });

  it("a trace carries Hubble's observation point and the conntrack state", () => {
    const wire = toWireEvent(trace(echoRequest(), TraceObservationPoint.FROM_LXC, 0), ctx);
    assert.equal(wire?.type, 'trace');
    assert.equal(wire?.observationPoint, 'from-endpoint');
    assert.equal(wire?.state, 'new');
    assert.equal(wire?.proto, 'ICMP');
    assert.equal(wire?.summary, 'ICMP echo-request');
    assert.equal(wire?.sport, undefined);
    assert.equal(wire?.reason, undefined);
    assert.equal(wire?.time, '2023-11-14T22:13:21.000000123Z');
    const reply = toWireEvent(trace(tcp(80, 40000, 0x12), TraceObservationPoint.TO_LXC, 2), ctx);
    assert.equal(reply?.observationPoint, 'to-endpoint');
    assert.equal(reply?.state, 'reply');
    assert.equal(reply?.summary, 'TCP SYN ACK');
  });

  it('a packet without IPv4 keeps no tuple but a summary; an unknown record maps to nothing', () => {
    const arp = Buffer.alloc(42);
    arp.writeUInt16BE(0x0806, 12);
    const wire = toWireEvent(drop(arp, DropReason.UNKNOWN_L3), ctx);
    assert.equal(wire?.summary, 'ARP');
    assert.equal(wire?.proto, undefined);
    assert.equal(wire?.reasonName, 'Unsupported L3 protocol');
    const none = toWireEvent(drop(Buffer.alloc(0), 250), ctx);
    assert.equal(none?.summary, undefined);
    assert.equal(none?.reasonName, 'Unknown drop reason 250');
    assert.equal(toWireEvent(decodeEvent(Buffer.from([9, 0, 0])), ctx), undefined);
  });

  it('times are RFC 3339 with nanoseconds and agree with Date to the millisecond', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 4_000_000_000_000_000_000n }), (ns) => {
        const text = formatUnixNanos(ns);
        assert.match(text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
        assert.equal(Date.parse(text), Number(ns / 1_000_000n));
        assert.equal(text.slice(20, 29), (ns % 1_000_000_000n).toString().padStart(9, '0'));
      }),
    );
    const offset = realtimeOffsetNs(1_000, 400_000_000n);
    assert.equal(offset, 600_000_000n);
  });

  it('every decodable trace or drop maps to a valid wire event', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('trace', 'drop'),
        fc.integer({ min: 0, max: 255 }),
        fc.uint8Array({ maxLength: 128 }),
        fc.bigInt({ min: 0n, max: 1n << 62n }),
        (kind, code, bytes, ktime) => {
          const data = Buffer.from(bytes);
          const ev = kind === 'trace' ? trace(data, code % 12, code % 4, ktime) : drop(data, code);
          const wire = toWireEvent(ev, ctx);
          const parsed = DatapathEventSchema.safeParse(wire);
          assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
        },
      ),
    );
  });
});

/** A connection whose status stream the test drives, recording what is published. */
function fakeNats() {
  const published: { subject: string; data: unknown }[] = [];
  let push: ((s: Status) => void) | undefined;
  const queue: Status[] = [];
  let stopped = false;
  const status = {
    stop() {
      stopped = true;
      push?.({ type: 'close' });
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const next = queue.shift() ?? (await new Promise<Status>((r) => (push = r)));
        push = undefined;
        if (stopped) return;
        yield next;
      }
    },
  };
  return {
    published,
    emit(s: Status) {
      if (push) push(s);
      else queue.push(s);
    },
    nc: {
      publish(subject: string, data?: Uint8Array | string) {
        published.push({ subject, data: JSON.parse(Buffer.from(data as Uint8Array).toString()) });
      },
      status: () => status,
      isClosed: () => false,
    },
  };
}

function fakeSource(): EventSource & { deliver(evs: DecodedEvent[]): void; closed: boolean } {
  let handler: ((evs: DecodedEvent[]) => void) | undefined;
  const src = {
    closed: false,
    openEvents(onEvents: (evs: DecodedEvent[]) => void) {
      handler = onEvents;
      return {
        close() {
          src.closed = true;
        },
      };
    },
    deliver(evs: DecodedEvent[]) {
      handler?.(evs);
    },
  };
  return src;
}

const tick = () => new Promise((r) => setImmediate(r));

describe('event publisher', () => {
  it('publishes each event on its type and node subject, and counts it', async () => {
    const n = fakeNats();
    const src = fakeSource();
    const registry = new Registry();
    const pub = startEventPublisher({ nc: n.nc, node: 'node-1', datapath: src, registry });
    src.deliver([
      drop(echoRequest(), DropReason.POLICY),
      trace(echoRequest(), 5, 0),
      decodeEvent(Buffer.from([9])),
    ]);
    assert.deepEqual(
      n.published.map((p) => p.subject),
      [datapathSubjects.event('drop', 'node-1'), datapathSubjects.event('trace', 'node-1')],
    );
    assert.equal((n.published[0]!.data as { reasonName: string }).reasonName, 'Policy denied');
    const s = pub.stats();
    assert.equal(s.counts.drop.published, 1);
    assert.equal(s.counts.trace.published, 1);
    assert.equal(s.counts.unknown.ignored, 1);
    const text = await registry.metrics();
    assert.match(text, /ciliate_datapath_events_total\{type="drop",result="published"\} 1/);
    await pub.stop();
    assert.ok(src.closed);
  });

  it('drops and counts events while NATS is down instead of queueing them', async () => {
    const n = fakeNats();
    const src = fakeSource();
    const pub = startEventPublisher({ nc: n.nc, node: 'node-1', datapath: src });
    n.emit({ type: 'disconnect', server: 'x' });
    await tick();
    src.deliver(Array.from({ length: 1000 }, () => drop(echoRequest(), 133)));
    assert.equal(n.published.length, 0);
    assert.equal(pub.stats().counts.drop.nats_down, 1000);
    assert.equal(pub.stats().natsUp, false);
    n.emit({ type: 'reconnect', server: 'x' });
    await tick();
    src.deliver([drop(echoRequest(), 133)]);
    assert.equal(n.published.length, 1);
    await pub.stop();
  });

  it('publishes at most maxPerSecond events per second window, and only the types asked for', async () => {
    const n = fakeNats();
    const src = fakeSource();
    let now = 0;
    const pub = startEventPublisher({
      nc: n.nc,
      node: 'node-1',
      datapath: src,
      maxPerSecond: 10,
      types: ['drop'],
      now: () => now,
    });
    src.deliver(Array.from({ length: 25 }, () => drop(echoRequest(), 133)));
    src.deliver([trace(echoRequest(), 5, 0)]);
    assert.equal(n.published.length, 10);
    assert.equal(pub.stats().counts.drop.rate_limited, 15);
    assert.equal(pub.stats().counts.trace.ignored, 1);
    now = 1000;
    src.deliver(Array.from({ length: 5 }, () => drop(echoRequest(), 133)));
    assert.equal(n.published.length, 15);
    await pub.stop();
    await pub.stop();
  });

  it('a publish that throws is counted as failed and does not stop the others', async () => {
    const n = fakeNats();
    const src = fakeSource();
    let calls = 0;
    const nc = {
      ...n.nc,
      publish(subject: string, data?: Uint8Array | string) {
        if (calls++ === 0) throw new Error('connection closed');
        n.nc.publish(subject, data);
      },
    };
    const pub = startEventPublisher({ nc, node: 'node-1', datapath: src });
    src.deliver([drop(echoRequest(), 133), drop(echoRequest(), 133)]);
    assert.equal(pub.stats().counts.drop.failed, 1);
    assert.equal(pub.stats().counts.drop.published, 1);
    await pub.stop();
  });
});
