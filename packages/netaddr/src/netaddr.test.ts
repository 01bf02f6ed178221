import assert from 'node:assert/strict';
import { isIPv4, isIPv6 } from 'node:net';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  type IpFamily,
  type IpPrefix,
  addressFromBytes,
  addressToBytes,
  formatAddress,
  formatIp,
  formatPrefix,
  parseIp,
  parsePrefix,
  prefixContainsPrefix,
  prefixMask,
  tryParseIp,
} from './index.js';

const v4Value = fc.bigInt({ min: 0n, max: (1n << 32n) - 1n });
const v6Value = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });
// Addresses with long zero runs, where RFC 5952 compression matters.
const v6Sparse = fc
  .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
    minLength: 8,
    maxLength: 8,
  })
  .map((groups) => groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n));
const anyAddress = fc.oneof(
  v4Value.map((value) => ({ family: 4 as const, value })),
  fc.oneof(v6Value, v6Sparse).map((value) => ({ family: 6 as const, value })),
);

function canonical(text: string): string {
  const r = parseIp(text);
  assert.ok(r.ok, `${text}: ${r.ok ? '' : r.reason}`);
  return formatIp(r.value);
}

function prefixOf(text: string, options?: Parameters<typeof parsePrefix>[1]): IpPrefix {
  const r = parsePrefix(text, options);
  assert.ok(r.ok, `${text}: ${r.ok ? '' : r.reason}`);
  return r.value;
}

describe('addresses: canonical text', () => {
  const table: Array<[string, string]> = [
    ['10.0.0.1', '10.0.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['fe80::', 'fe80::'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329'],
    // RFC 5952 4.2.3: the first of two equally long zero runs is compressed.
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    // 4.2.3: the longest run wins.
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    // 4.2.2: a single zero group is not compressed.
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:db8::0:1', '2001:db8::1'],
    // Section 5: IPv4-mapped addresses keep the dotted quad, as netip prints them.
    ['::ffff:c000:0201', '::ffff:192.0.2.1'],
    ['::FFFF:192.0.2.1', '::ffff:192.0.2.1'],
    ['::192.0.2.1', '::c000:201'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
  ];
  for (const [input, want] of table) {
    it(`${input} -> ${want}`, () => assert.equal(canonical(input), want));
  }
});

describe('addresses: refused the way netip refuses them', () => {
  const table: Array<[string, string]> = [
    ['', 'must not be empty'],
    ['256.0.0.1', 'octet 256 is larger than 255'],
    ['1.2.3', 'dotted-quad'],
    ['01.2.3.4', 'leading zero'],
    ['1.2.3.4.5', 'dotted-quad'],
    ['1.2.3.4/8', 'dotted-quad'],
    ['1::2::3', 'only once'],
    [':::', 'only once'],
    ['1:2:3:4:5:6:7', 'has 7 groups'],
    ['1:2:3:4:5:6:7:8:9', 'has 9 groups'],
    ['1:2:3:4:5:6:7::8', 'too many groups'],
    ['fe80::1%eth0', 'zone index'],
    ['12345::', 'not 1-4 hex digits'],
    ['::g', 'not 1-4 hex digits'],
    [':1::', 'empty group'],
    ['::1.2.3.256', 'embedded IPv4 part'],
  ];
  for (const [input, reason] of table) {
    it(`${JSON.stringify(input)}: ${reason}`, () => {
      const r = parseIp(input);
      assert.ok(!r.ok);
      assert.ok(r.reason.includes(reason), r.reason);
      assert.equal(tryParseIp(input), undefined);
    });
  }

  it('a value that is not a string', () => {
    const r = parseIp(42 as unknown as string);
    assert.deepEqual(r, { ok: false, reason: 'must be a string' });
  });
});

describe('addresses: properties', () => {
  it('format then parse is the identity, and Node agrees the text is an address', () => {
    fc.assert(
      fc.property(anyAddress, (ip) => {
        const text = formatIp(ip);
        assert.ok(ip.family === 4 ? isIPv4(text) : isIPv6(text), text);
        assert.deepEqual(parseIp(text), { ok: true, value: ip });
      }),
    );
  });

  it('IPv6 text agrees with the WHATWG URL serializer (RFC 5952 compression)', () => {
    fc.assert(
      fc.property(fc.oneof(v6Value, v6Sparse), (value) => {
        fc.pre(value >> 32n !== 0xffffn); // WHATWG prints mapped addresses in hex
        const text = formatAddress(6, value);
        assert.equal(new URL(`http://[${text}]/`).hostname, `[${text}]`);
      }),
      { numRuns: 2000 },
    );
  });

  it('any spelling of an IPv6 address parses to the same value', () => {
    fc.assert(
      fc.property(
        fc.oneof(v6Value, v6Sparse),
        fc.boolean(),
        fc.boolean(),
        (value, upper, padded) => {
          const groups: string[] = [];
          for (let i = 7; i >= 0; i--) {
            const g = Number((value >> BigInt(i * 16)) & 0xffffn).toString(16);
            groups.push(padded ? g.padStart(4, '0') : g);
          }
          let text = groups.join(':');
          if (upper) text = text.toUpperCase();
          assert.equal(tryParseIp(text)?.value, value);
        },
      ),
    );
  });

  it('bytes round-trip in network order, at any offset', () => {
    fc.assert(
      fc.property(anyAddress, fc.integer({ min: 0, max: 8 }), (ip, offset) => {
        const buf = addressToBytes(ip.family, ip.value, new Uint8Array(offset + 16), offset);
        assert.equal(addressFromBytes(ip.family, buf, offset), ip.value);
        const n = ip.family === 4 ? 4 : 16;
        const hex = [...buf.subarray(offset, offset + n)]
          .map((b) => b.toString(16).padStart(2, '0'))
          .join('');
        assert.equal(BigInt(`0x${hex}`), ip.value);
      }),
    );
    assert.deepEqual(
      [...addressToBytes(4, tryParseIp('10.1.2.3')!.value, new Uint8Array(4))],
      [10, 1, 2, 3],
    );
  });
});

describe('prefixes', () => {
  it('need a length unless bare addresses are allowed', () => {
    const r = parsePrefix('10.0.0.0');
    assert.ok(!r.ok && r.kind === 'syntax' && r.reason.includes('CIDR notation'));
    assert.equal(formatPrefix(prefixOf('10.1.2.3', { bareAddress: true })), '10.1.2.3/32');
    assert.equal(formatPrefix(prefixOf('2001:db8::1', { bareAddress: true })), '2001:db8::1/128');
  });

  it('refuse host bits unless asked to clear them, naming the network', () => {
    const r = parsePrefix('10.0.0.1/8');
    assert.ok(!r.ok && r.kind === 'host-bits');
    assert.equal(r.reason, 'host bits are set (the network is 10.0.0.0/8)');
    const table: Array<[string, string]> = [
      ['10.1.2.3/8', '10.0.0.0/8'],
      ['10.1.2.3/0', '0.0.0.0/0'],
      ['2001:db8:ffff::/33', '2001:db8:8000::/33'],
      ['FD00:0::1/104', 'fd00::/104'],
      ['::/0', '::/0'],
    ];
    for (const [input, want] of table) {
      assert.equal(formatPrefix(prefixOf(input, { clearHostBits: true })), want, input);
    }
  });

  it('say which part is wrong', () => {
    const kinds: Array<[string, string, string]> = [
      ['10.0.0.0/33', 'length', 'prefix length must be 0-32'],
      ['fd00::/129', 'length', 'prefix length must be 0-128'],
      ['10.0.0.0/08', 'length', 'prefix length'],
      ['10.0.0.0/', 'length', 'prefix length'],
      ['10.0.0.300/8', 'address', 'larger than 255'],
    ];
    for (const [input, kind, reason] of kinds) {
      const r = parsePrefix(input);
      assert.ok(!r.ok, input);
      assert.equal(r.kind, kind, input);
      assert.ok(r.reason.includes(reason), r.reason);
    }
  });

  const prefixArb = anyAddress.chain((ip) =>
    fc
      .integer({ min: 0, max: ip.family === 4 ? 32 : 128 })
      .map((length) => prefixOf(`${formatIp(ip)}/${length}`, { clearHostBits: true })),
  );

  it('property: canonical text round-trips', () => {
    fc.assert(fc.property(prefixArb, (p) => assert.deepEqual(prefixOf(formatPrefix(p)), p)));
  });

  it('property: containment agrees with comparing the first bits', () => {
    const bits = (family: IpFamily, v: bigint): string =>
      v.toString(2).padStart(family === 4 ? 32 : 128, '0');
    fc.assert(
      fc.property(prefixArb, anyAddress, (p, ip) => {
        const same =
          p.family === ip.family &&
          bits(p.family, p.network).slice(0, p.length) ===
            bits(ip.family, ip.value).slice(0, p.length);
        assert.equal(
          prefixContainsPrefix(p, {
            family: ip.family,
            network: ip.value,
            length: ip.family === 4 ? 32 : 128,
          }),
          same,
        );
      }),
    );
    assert.equal(prefixMask(4, 24), 0xffffff00n);
  });
});
