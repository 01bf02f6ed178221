import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  be16,
  bytes,
  decode,
  encode,
  ipBytes,
  ipFromBytes,
  ipv4,
  mac,
  pad,
  struct,
  u16,
  u32,
  u64,
  u8,
} from './codec.js';
import { BpfError } from './errors.js';
import {
  ct4Key,
  ctEntry,
  endpointInfo,
  endpointKey,
  ipcacheKey,
  ipcacheValue,
  metricsKey,
} from './datapath/layouts.js';

const ipv4Arb = fc
  .tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))
  .map((p) => p.join('.'));
const macArb = fc
  .uint8Array({ minLength: 6, maxLength: 6 })
  .map((b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':'));

describe('codecs', () => {
  it('lay out structs with C alignment and explicit padding', () => {
    const s = struct('t', { a: u8, b: u32, c: u16, p: pad(2), d: u64 });
    assert.deepEqual(
      s.layout.kind === 'struct' ? s.layout.fields.map((f) => [f.cName, f.offset]) : [],
      [
        ['a', 0],
        ['b', 4],
        ['c', 8],
        ['p', 10],
        ['d', 16],
      ],
    );
    assert.equal(s.size, 24);
    const buf = encode(s, { a: 1, b: 2, c: 3, d: 4n });
    assert.equal(buf.toString('hex'), '01000000020000000300000000000000' + '0400000000000000');
  });

  it('round-trips every datapath struct (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          ifindex: fc.nat(0xffff_ffff),
          endpointId: fc.nat(0xffff),
          flags: fc.nat(0xffff),
          mac: macArb,
          nodeMac: macArb,
          identity: fc.nat(0xffff_ffff),
        }),
        (v) => assert.deepEqual(decode(endpointInfo, encode(endpointInfo, v)), { ...v }),
      ),
    );
    fc.assert(
      fc.property(ipv4Arb, (ip) =>
        assert.deepEqual(decode(endpointKey, encode(endpointKey, { ip })), { ip }),
      ),
    );
    fc.assert(
      fc.property(
        fc.record({
          saddr: ipv4Arb,
          daddr: ipv4Arb,
          sport: fc.nat(0xffff),
          dport: fc.nat(0xffff),
          nexthdr: fc.nat(255),
          flags: fc.nat(255),
        }),
        (k) => assert.deepEqual(decode(ct4Key, encode(ct4Key, k)), { ...k }),
      ),
    );
    fc.assert(
      fc.property(
        fc.record({
          packetsFwd: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          bytesFwd: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          packetsRev: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          bytesRev: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          lifetime: fc.nat(0xffff_ffff),
          flags: fc.nat(0xffff),
          revNatIndex: fc.nat(0xffff),
          srcIdentity: fc.nat(0xffff_ffff),
          policyVerdict: fc.nat(255),
          txFlagsSeen: fc.nat(255),
          rxFlagsSeen: fc.nat(255),
          ifindex: fc.nat(0xffff_ffff),
          created: fc.nat(0xffff_ffff),
        }),
        (e) => assert.deepEqual(decode(ctEntry, encode(ctEntry, e)), { ...e }),
      ),
    );
  });

  it('stores ports and addresses in network byte order', () => {
    const k = encode(ct4Key, {
      saddr: '10.0.0.1',
      daddr: '10.0.0.2',
      sport: 0x1234,
      dport: 80,
      nexthdr: 6,
      flags: 1,
    });
    assert.equal(k.toString('hex'), '0a0000010a000002' + '1234' + '0050' + '0601' + '0000');
    assert.equal(encode(be16, 0x0102).toString('hex'), '0102');
    assert.equal(encode(ipv4, '192.0.2.1').toString('hex'), 'c0000201');
  });

  it('ipcache keys are LPM keys: 32 static bits plus the prefix, host bits cleared', () => {
    const k = encode(ipcacheKey, { prefix: '10.1.2.3/24' });
    assert.equal(k.readUInt32LE(0), 32 + 24);
    assert.equal(k[7], 1, 'family IPv4');
    assert.equal(k.subarray(8, 12).toString('hex'), '0a010200');
    assert.deepEqual(decode(ipcacheKey, k), { prefix: '10.1.2.0/24', clusterId: 0 });
    assert.deepEqual(decode(ipcacheKey, encode(ipcacheKey, { prefix: '10.9.8.7' })), {
      prefix: '10.9.8.7/32',
      clusterId: 0,
    });
    const v6 = decode(ipcacheKey, encode(ipcacheKey, { prefix: 'fd00:1::5/64' }));
    assert.deepEqual(v6, { prefix: 'fd00:1::/64', clusterId: 0 });
  });

  it('ipcache values: null tunnel endpoint means native routing; IPv6 endpoints set the flag', () => {
    assert.deepEqual(
      decode(ipcacheValue, encode(ipcacheValue, { identity: 6, tunnelEndpoint: null })),
      {
        identity: 6,
        tunnelEndpoint: null,
        flags: 0,
        encryptKey: 0,
      },
    );
    const v = decode(
      ipcacheValue,
      encode(ipcacheValue, { identity: 300, tunnelEndpoint: 'fd00::1' }),
    );
    assert.equal(v.tunnelEndpoint, 'fd00::1');
    assert.equal(v.flags, 1);
  });

  it('prints addresses as the identity service keys them (IPv4-mapped keeps the dotted quad)', () => {
    for (const text of ['::ffff:10.1.2.3', '2001:db8::1', '10.0.0.1']) {
      const { family, bytes: b } = ipBytes(text);
      assert.equal(ipFromBytes(b, family), text);
    }
    assert.equal(ipFromBytes(ipBytes('::FFFF:a01:203').bytes, 2), '::ffff:10.1.2.3');
  });

  it('IPv6 text round-trips through the 16-byte form (property)', () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const { family, bytes: b } = ipBytes(ip);
        assert.equal(family, 2);
        assert.deepEqual(ipBytes(ipFromBytes(b, 2)).bytes, b);
      }),
    );
  });

  it('refuses bad input with the field path and the reason', () => {
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        assert.ok(e instanceof BpfError);
        assert.equal(e.code, 'ERR_INVALID_VALUE');
        return e.message;
      }
      assert.fail('did not throw');
    };
    assert.equal(
      err(() => encode(ipcacheKey, { prefix: '10.0.0.0/33' }, 'ipcache key')),
      'ipcache key.prefix: Invalid value: "10.0.0.0/33": prefix length must be 0-32',
    );
    assert.match(
      err(() => encode(endpointKey, { ip: '10.0.0.300' }, 'ep')),
      /^ep\.ip: Invalid value: "10\.0\.0\.300": must be an IPv4 or IPv6 address/,
    );
    assert.match(
      err(() =>
        encode(endpointInfo, {
          ifindex: 1,
          endpointId: 70000,
          flags: 0,
          mac: '02:00:00:00:00:01',
          nodeMac: '02:00:00:00:00:02',
          identity: 1,
        }),
      ),
      /value\.endpointId: Invalid value: 70000: must be an integer 0\.\.65535/,
    );
    assert.match(
      err(() => encode(metricsKey, { reason: 1, dir: -1 })),
      /value\.dir: .*0\.\.255/,
    );
    assert.match(
      err(() => encode(mac, 'zz')),
      /must be a MAC address/,
    );
    assert.match(
      err(() => encode(bytes(2), Buffer.alloc(3))),
      /at most 2 bytes/,
    );
  });
});
