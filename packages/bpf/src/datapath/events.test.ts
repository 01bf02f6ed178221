import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { encode } from '../codec.js';
import { dropNotify, traceNotify } from './layouts.js';
import { decodeEvent, summarizePacket } from './events.js';

function tcpSyn(): Buffer {
  const p = Buffer.alloc(54);
  Buffer.from('020000000002020000000001', 'hex').copy(p, 0);
  p.writeUInt16BE(0x0800, 12);
  p[14] = 0x45;
  p.writeUInt16BE(40, 16);
  p[22] = 64;
  p[23] = 6;
  Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(p, 26);
  p.writeUInt16BE(40000, 34);
  p.writeUInt16BE(80, 36);
  p[47] = 0x02;
  return p;
}

const header = {
  hash: 7,
  lenOrig: 54,
  version: 1,
  ktime: 123n,
  srcIdentity: 300,
  dstIdentity: 301,
  ifindex: 9,
};

describe('event decoding', () => {
  it('decodes a trace with its observation point, conntrack state and packet', () => {
    const data = tcpSyn();
    const buf = encode(traceNotify, {
      ...header,
      type: 4,
      subtype: 5,
      source: 12,
      lenCap: data.length,
      dstId: 13,
      reason: 0,
      flags: 0,
      data,
    });
    const ev = decodeEvent(buf);
    assert.equal(ev.kind, 'trace');
    if (ev.kind !== 'trace') return;
    assert.equal(ev.observationPointName, 'from-endpoint');
    assert.equal(ev.reasonName, 'new');
    assert.equal(ev.dstEndpoint, 13);
    assert.deepEqual(
      [
        ev.packet?.srcIp,
        ev.packet?.dstIp,
        ev.packet?.srcPort,
        ev.packet?.dstPort,
        ev.packet?.tcpFlags,
      ],
      ['10.0.0.1', '10.0.0.2', 40000, 80, 0x02],
    );
  });

  it("decodes a drop with Cilium's reason name and text", () => {
    const buf = encode(dropNotify, {
      ...header,
      type: 1,
      subtype: 132,
      source: 12,
      lenCap: 0,
      dstId: 0,
      line: 42,
      file: 1,
      extError: 0,
      ifindex: 9,
      data: Buffer.alloc(0),
    });
    const ev = decodeEvent(buf);
    assert.equal(ev.kind, 'drop');
    if (ev.kind !== 'drop') return;
    assert.equal(ev.reasonName, 'INVALID_SOURCE_IP');
    assert.equal(ev.reasonText, 'Invalid source ip');
    assert.equal(ev.file, 'bpf_lxc.c');
    assert.equal(ev.line, 42);
    assert.equal(ev.packet, undefined);
  });

  it('keeps unknown or short records as unknown instead of failing', () => {
    assert.deepEqual(decodeEvent(Buffer.from([9, 1])), {
      kind: 'unknown',
      type: 9,
      data: Buffer.from([9, 1]),
    });
    assert.equal(summarizePacket(Buffer.alloc(3)), undefined);
  });
});
