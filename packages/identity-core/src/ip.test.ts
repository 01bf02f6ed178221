import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { formatIp, formatPrefix, prefixContainsIp } from '@ciliate/netaddr';

import { parseIp, parsePrefix } from './ip.js';

describe('IP addresses', () => {
  // input, canonical form (Go's netip / RFC 5952)
  const spec: [string, string][] = [
    ['10.0.0.1', '10.0.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['::', '::'],
    ['::1', '::1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:db8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['fe80::', 'fe80::'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['::ffff:10.1.2.3', '::ffff:10.1.2.3'],
    ['::ffff:a01:203', '::ffff:10.1.2.3'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ];
  for (const [input, want] of spec) {
    it(`${input} -> ${want}`, () => assert.equal(formatIp(parseIp(input)), want));
  }

  it('refuses what Go’s netip refuses', () => {
    for (const bad of [
      '',
      '10.0.0',
      '10.0.0.256',
      '010.0.0.1',
      '10.0.0.1.2',
      '1::2::3',
      ':::',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7',
      '::1%eth0',
      '12345::',
      'g::1',
      '1:2:3:4:5:6:7::8',
    ]) {
      assert.throws(
        () => parseIp(bad),
        /ip: Invalid value: .*must be an IPv4 or IPv6 address/,
        bad,
      );
    }
  });

  it('property: the canonical form matches the WHATWG URL serializer (RFC 5952)', () => {
    const groups = fc.array(fc.constantFrom(0, 0, 0, 1, 0xab, 0xffff, 0x1234), {
      minLength: 8,
      maxLength: 8,
    });
    fc.assert(
      fc.property(groups, (g) => {
        const text = g.map((x) => x.toString(16)).join(':');
        const ours = formatIp(parseIp(text));
        const mapped = g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
        if (!mapped) assert.equal(`[${ours}]`, new URL(`http://[${text}]/`).hostname);
        assert.equal(formatIp(parseIp(ours)), ours);
      }),
    );
  });
});

describe('prefixes', () => {
  it('are masked and canonical; a bare address is a host prefix', () => {
    const spec: [string, string][] = [
      ['10.1.2.3/8', '10.0.0.0/8'],
      ['10.1.2.3', '10.1.2.3/32'],
      ['10.1.2.3/0', '0.0.0.0/0'],
      ['2001:db8::1', '2001:db8::1/128'],
      ['2001:db8:ffff::/33', '2001:db8:8000::/33'],
      ['::/0', '::/0'],
    ];
    for (const [input, want] of spec) assert.equal(formatPrefix(parsePrefix(input)), want, input);
  });

  it('refuses bad lengths naming the field', () => {
    assert.throws(
      () => parsePrefix('10.0.0.0/33', 'spec.blocks[0].cidr'),
      /^IdentityError: spec\.blocks\[0\]\.cidr: Invalid value: "10\.0\.0\.0\/33": prefix length must be 0-32$/,
    );
    assert.throws(() => parsePrefix('::/129'), /prefix length must be 0-128/);
    assert.throws(() => parsePrefix('10.0.0.0/08'), /prefix length/);
    assert.throws(() => parsePrefix('10.0.0.0/'), /prefix length/);
  });

  it('property: containment agrees with comparing the first bits', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 32 }),
        (a, b, len) => {
          const p = parsePrefix(`${a.join('.')}/${len}`);
          const addr = parseIp(b.join('.'));
          const toBits = (x: Uint8Array): string =>
            [...x].map((v) => v.toString(2).padStart(8, '0')).join('');
          assert.equal(
            prefixContainsIp(p, addr),
            toBits(a).slice(0, len) === toBits(b).slice(0, len),
          );
        },
      ),
    );
  });
});
