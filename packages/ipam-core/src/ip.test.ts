import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  formatPrefix,
  prefixContainsPrefix,
  type IpPrefix,
  prefixContainsIp,
} from '@ciliate/netaddr';

import { IpamError } from './errors.js';
import {
  canonicalIp,
  cidrLast,
  cidrSize,
  cidrsOverlap,
  formatAddress,
  formatRange,
  parseCidr,
  parseIp,
  rangeOfCidr,
  tryParseIp,
} from './ip.js';

const v4Value = fc.bigInt({ min: 0n, max: (1n << 32n) - 1n });
const v6Value = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });

function throwsCode(fn: () => unknown, code: string, includes: string[] = []): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof IpamError, `expected IpamError, got ${String(err)}`);
    assert.equal(err.code, code);
    for (const part of includes)
      assert.ok(err.message.includes(part), `${err.message} lacks ${part}`);
    return true;
  });
}

describe('IP parsing and canonical text', () => {
  // The parser and printer are @ciliate/netaddr's (tested there); these check the family names.
  const canonical: Array<[string, string]> = [
    ['10.0.0.1', '10.0.0.1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['::FFFF:192.0.2.1', '::ffff:192.0.2.1'],
  ];
  for (const [input, want] of canonical) {
    it(`${input} -> ${want}`, () => {
      assert.equal(canonicalIp(input), want);
    });
  }

  const invalid: Array<[string, string]> = [
    ['', 'must not be empty'],
    ['256.0.0.1', 'octet 256 is larger than 255'],
    ['01.2.3.4', 'leading zero'],
    ['fe80::1%eth0', 'zone index'],
    ['::1.2.3.256', 'embedded IPv4 part'],
  ];
  for (const [input, reason] of invalid) {
    it(`refuses ${JSON.stringify(input)} (${reason})`, () => {
      throwsCode(() => parseIp(input, 'spec.loadBalancerIP'), 'INVALID_IP', [
        `spec.loadBalancerIP: Invalid value: ${JSON.stringify(input)}`,
        reason,
      ]);
      assert.equal(tryParseIp(input), undefined);
    });
  }

  it('refuses non-strings with the path', () => {
    throwsCode(() => parseIp(42, 'x.y'), 'INVALID_IP', [
      'x.y: Invalid value: 42: must be a string',
    ]);
  });
});

describe('CIDR parsing', () => {
  it('names the input and the reason (kubectl style)', () => {
    throwsCode(() => parseCidr('10.0.0.0/33', 'spec.blocks[0].cidr'), 'INVALID_CIDR', [
      'spec.blocks[0].cidr: Invalid value: "10.0.0.0/33": prefix length must be 0-32',
    ]);
    throwsCode(() => parseCidr('fd00::/129', 'c'), 'INVALID_CIDR', ['prefix length must be 0-128']);
    throwsCode(() => parseCidr('10.0.0.0', 'c'), 'INVALID_CIDR', ['CIDR notation']);
    throwsCode(() => parseCidr('10.0.0.0/08', 'c'), 'INVALID_CIDR', ['prefix length']);
    throwsCode(() => parseCidr('10.0.0.300/8', 'c'), 'INVALID_CIDR', ['not a valid address']);
    throwsCode(() => parseCidr('10.0.0.1/8', 'c'), 'INVALID_CIDR', [
      'host bits are set (the network is 10.0.0.0/8)',
    ]);
  });

  it('clears host bits only when asked', () => {
    assert.equal(
      formatPrefix(parseCidr('10.0.6.7/24', 'c', { allowHostBits: true })),
      '10.0.6.0/24',
    );
    assert.equal(
      formatPrefix(parseCidr('FD00:0::1/104', 'c', { allowHostBits: true })),
      'fd00::/104',
    );
  });

  it('knows sizes and ends', () => {
    const c = parseCidr('10.0.0.0/8');
    assert.equal(cidrSize(c), 1n << 24n);
    assert.equal(formatAddress('ipv4', cidrLast(c)), '10.255.255.255');
    assert.equal(formatRange(rangeOfCidr(parseCidr('fd00::/104'))), 'fd00::/104');
    assert.equal(
      formatRange({
        family: 'ipv4',
        first: parseIp('10.0.0.5').value,
        last: parseIp('10.0.0.9').value,
      }),
      '10.0.0.5-10.0.0.9',
    );
  });

  const cidrArb = fc
    .oneof(
      fc
        .tuple(v4Value, fc.integer({ min: 0, max: 32 }))
        .map(([v, p]) => ({ family: 'ipv4' as const, v, p })),
      fc
        .tuple(v6Value, fc.integer({ min: 0, max: 128 }))
        .map(([v, p]) => ({ family: 'ipv6' as const, v, p })),
    )
    .map(({ family, v, p }) =>
      parseCidr(`${formatAddress(family, v)}/${p}`, 'c', { allowHostBits: true }),
    );

  it('property: overlap is symmetric and means containment one way or the other', () => {
    fc.assert(
      fc.property(cidrArb, cidrArb, (a: IpPrefix, b: IpPrefix) => {
        assert.equal(cidrsOverlap(a, b), cidrsOverlap(b, a));
        const byRange =
          a.family === b.family && a.network <= cidrLast(b) && b.network <= cidrLast(a);
        assert.equal(cidrsOverlap(a, b), byRange);
        if (prefixContainsPrefix(a, b)) {
          assert.ok(prefixContainsIp(a, { family: b.family, value: b.network }));
          assert.ok(prefixContainsIp(a, { family: b.family, value: cidrLast(b) }));
        }
      }),
    );
  });

  it('property: canonical CIDR text round-trips', () => {
    fc.assert(
      fc.property(cidrArb, (c) => {
        assert.deepEqual(parseCidr(formatPrefix(c)), c);
      }),
    );
  });
});
