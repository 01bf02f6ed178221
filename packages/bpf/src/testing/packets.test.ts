import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  ArpOp,
  EtherType,
  IcmpType,
  IpProto,
  TcpFlag,
  arpFrame,
  internetChecksum,
  ipv4,
  ipv4Frame,
  ipv6UdpFrame,
  parseFrame,
  vxlanFrame,
} from './packets.js';

const ETH = { src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' };

describe('packet builder and parser', () => {
  it('computes the IPv4 header checksum of a known header', () => {
    // 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7: a commonly quoted example header
    const h = ipv4(
      { src: '192.168.0.1', dst: '192.168.0.199', protocol: IpProto.UDP, dontFragment: true },
      Buffer.alloc(0x73 - 20),
    );
    assert.equal(h.subarray(0, 20).toString('hex'), '45000073000040004011b861c0a80001c0a800c7');
    assert.equal(internetChecksum(h.subarray(0, 20)), 0, 'a header with its checksum sums to 0');
  });

  it('sums an odd number of bytes as if padded with a zero', () => {
    assert.equal(
      internetChecksum(Buffer.from([0x01])),
      internetChecksum(Buffer.from([0x01, 0x00])),
    );
    assert.equal(internetChecksum(Buffer.from([0xff, 0xff])), 0);
  });

  it('reads back what it builds: TCP, UDP and ICMP over IPv4, with valid checksums', () => {
    const ipv4Text = fc
      .tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))
      .map((b) => b.join('.'));
    fc.assert(
      fc.property(
        ipv4Text,
        ipv4Text,
        fc.integer({ min: 1, max: 255 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.uint8Array({ maxLength: 64 }),
        fc.constantFrom('tcp', 'udp', 'icmp'),
        (src, dst, ttl, sport, dport, body, kind) => {
          const payload = Buffer.from(body);
          const l4 =
            kind === 'tcp'
              ? { tcp: { sport, dport, flags: TcpFlag.SYN | TcpFlag.ACK, seq: 7, ack: 9, payload } }
              : kind === 'udp'
                ? { udp: { sport, dport, payload } }
                : { icmp: { type: IcmpType.ECHO_REQUEST, id: sport, seq: dport, payload } };
          const p = parseFrame(ipv4Frame({ eth: ETH, ip: { src, dst, ttl }, l4 }));
          assert.deepEqual(p.eth, { ...ETH, type: EtherType.IPV4 });
          assert.equal(p.ipv4?.src, src);
          assert.equal(p.ipv4?.dst, dst);
          assert.equal(p.ipv4?.ttl, ttl);
          assert.equal(p.ipv4?.checksumOk, true);
          if (kind === 'tcp') {
            assert.deepEqual(
              [p.tcp?.sport, p.tcp?.dport, p.tcp?.flags, p.tcp?.seq, p.tcp?.ack],
              [sport, dport, 0x12, 7, 9],
            );
            assert.equal(p.tcp?.checksumOk, true);
            assert.deepEqual(p.tcp?.payload, payload);
          } else if (kind === 'udp') {
            assert.deepEqual([p.udp?.sport, p.udp?.dport], [sport, dport]);
            assert.equal(p.udp?.checksumOk, true);
            assert.deepEqual(p.udp?.payload, payload);
          } else {
            assert.deepEqual([p.icmp?.type, p.icmp?.id, p.icmp?.seq], [8, sport, dport]);
            assert.equal(p.icmp?.checksumOk, true);
          }
        },
      ),
    );
  });

  it('notices a changed byte in every checksum it checks', () => {
    const frame = ipv4Frame({
      eth: ETH,
      ip: { src: '10.0.0.1', dst: '10.0.0.2' },
      l4: { tcp: { sport: 1000, dport: 80, flags: TcpFlag.SYN } },
    });
    const ttlChanged = Buffer.from(frame);
    ttlChanged[14 + 8] = 63;
    assert.equal(parseFrame(ttlChanged).ipv4?.checksumOk, false);
    const portChanged = Buffer.from(frame);
    portChanged[14 + 20 + 3] = 81;
    assert.equal(parseFrame(portChanged).tcp?.checksumOk, false);
    assert.equal(parseFrame(portChanged).ipv4?.checksumOk, true);
  });

  it('builds and parses ARP, IPv6/UDP and VXLAN', () => {
    const a = parseFrame(
      arpFrame({
        op: ArpOp.REQUEST,
        senderMac: ETH.src,
        senderIp: '10.0.0.2',
        targetIp: '10.0.0.1',
      }),
    );
    assert.deepEqual(a.eth, { src: ETH.src, dst: 'ff:ff:ff:ff:ff:ff', type: EtherType.ARP });
    assert.deepEqual(a.arp, {
      op: 1,
      senderMac: ETH.src,
      senderIp: '10.0.0.2',
      targetMac: '00:00:00:00:00:00',
      targetIp: '10.0.0.1',
    });

    const v6 = parseFrame(
      ipv6UdpFrame({
        eth: ETH,
        ip: { src: 'fd00::1', dst: 'fd00::2' },
        udp: { sport: 5, dport: 6 },
      }),
    );
    assert.equal(v6.ipv6?.src, 'fd00::1');
    assert.equal(v6.ipv6?.nextHeader, IpProto.UDP);
    assert.equal(v6.udp?.checksumOk, true);

    const inner = ipv4Frame({
      eth: ETH,
      ip: { src: '10.1.0.5', dst: '10.2.0.7' },
      l4: { udp: { sport: 1, dport: 2 } },
    });
    const outer = parseFrame(
      vxlanFrame({ eth: ETH, ip: { src: '192.168.1.1', dst: '192.168.1.2' }, vni: 0x12345, inner }),
    );
    assert.equal(outer.vxlan?.vni, 0x12345);
    assert.equal(outer.vxlan?.flags, 0x08);
    assert.equal(outer.vxlan?.inner.ipv4?.dst, '10.2.0.7');
  });

  it('names the field of bad input', () => {
    assert.throws(
      () =>
        ipv4Frame({
          eth: { ...ETH, src: 'nope' },
          ip: { src: '1.1.1.1', dst: '1.1.1.2' },
          l4: { udp: { sport: 1, dport: 2 } },
        }),
      /eth\.src/,
    );
    assert.throws(
      () =>
        ipv4Frame({
          eth: ETH,
          ip: { src: '1.1.1.1', dst: '1.1.1.2' },
          l4: { udp: { sport: 70000, dport: 2 } },
        }),
      /udp\.sport/,
    );
    assert.throws(() => parseFrame(Buffer.alloc(10)), /frame/);
  });
});
