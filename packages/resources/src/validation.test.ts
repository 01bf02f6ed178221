import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { prefixContainsPrefix } from '@ciliate/netaddr';
import fc from 'fast-check';

import {
  dns1035Label,
  dns1123Label,
  dns1123Subdomain,
  ianaServiceName,
  labelValue,
  parseCidr,
  parseIp,
  qualifiedName,
} from './validation.js';

describe('IP addresses', () => {
  it('parses IPv4 and IPv6 in their usual forms', () => {
    assert.deepEqual(parseIp('10.0.6.14'), { family: 4, value: 0x0a00060en });
    assert.deepEqual(parseIp('::'), { family: 6, value: 0n });
    assert.deepEqual(parseIp('::1'), { family: 6, value: 1n });
    assert.deepEqual(parseIp('2001:db8::1'), {
      family: 6,
      value: 0x20010db8000000000000000000000001n,
    });
    assert.deepEqual(parseIp('::ffff:10.0.0.1'), { family: 6, value: 0xffff0a000001n });
    assert.deepEqual(parseIp('1:2:3:4:5:6:7:8'), {
      family: 6,
      value: 0x00010002000300040005000600070008n,
    });
    assert.deepEqual(parseIp('1::'), { family: 6, value: 1n << 112n });
  });

  it("rejects what Go's netip rejects", () => {
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '256.0.0.1',
      '01.2.3.4',
      '1.2.3.-1',
      ':::',
      '1::2::3',
      '12345::',
      '1:2:3:4:5:6:7:8:9',
      'fe80::1%eth0',
      'g::1',
      ' 1.2.3.4',
    ]) {
      assert.equal(parseIp(bad), undefined, bad);
    }
  });

  it('IPv4 dotted quads round-trip', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        const p = parseIp(ip);
        fc.pre(!/(^|\.)0\d/.test(ip));
        assert.ok(p, ip);
        const v = p.value;
        assert.equal([24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.'), ip);
      }),
    );
  });

  it('every generated IPv6 address parses', () => {
    fc.assert(fc.property(fc.ipV6(), (ip) => assert.equal(parseIp(ip)?.family, 6, ip)));
  });
});

describe('CIDRs', () => {
  it('gives the range and the reason for bad prefixes', () => {
    const p = parseCidr('10.0.6.0/24');
    assert.ok(typeof p !== 'string');
    assert.deepEqual(p, { family: 4, network: 0x0a000600n, length: 24 });
    assert.equal(parseCidr('10.0.6.0/33'), 'prefix length must be 0-32');
    assert.equal(parseCidr('2001:db8::/129'), 'prefix length must be 0-128');
    assert.equal(
      parseCidr('10.0.6.0'),
      'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
    );
    assert.equal(parseCidr('10.0.6.0/024'), 'prefix length must be 0-32');
  });

  it('containment is reflexive and follows prefix length', () => {
    fc.assert(
      fc.property(
        fc.ipV4(),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 32 }),
        (ip, a, b) => {
          fc.pre(!/(^|\.)0\d/.test(ip));
          const outer = parseCidr(`${ip}/${Math.min(a, b)}`);
          const inner = parseCidr(`${ip}/${Math.max(a, b)}`);
          assert.ok(typeof outer !== 'string' && typeof inner !== 'string');
          assert.ok(prefixContainsPrefix(outer, outer));
          assert.ok(prefixContainsPrefix(outer, inner));
          if (a !== b) assert.ok(!prefixContainsPrefix(inner, outer));
        },
      ),
    );
  });
});

describe('names', () => {
  it('follows apimachinery', () => {
    assert.deepEqual(dns1123Label('web-0'), []);
    assert.equal(dns1123Label('Web').length, 1);
    assert.equal(dns1123Label('a'.repeat(64)).length, 1);
    assert.deepEqual(dns1123Subdomain('api.example.com'), []);
    assert.equal(dns1123Subdomain('-a.b').length, 1);
    assert.deepEqual(dns1035Label('web'), []);
    assert.equal(dns1035Label('9web').length, 1);
    assert.deepEqual(qualifiedName('app.kubernetes.io/name'), []);
    assert.deepEqual(qualifiedName('Name_1'), []);
    assert.equal(qualifiedName('a/b/c').length, 1);
    assert.deepEqual(qualifiedName('/x'), ['prefix part must be non-empty']);
    assert.deepEqual(labelValue(''), []);
    assert.equal(labelValue('-x').length, 1);
    assert.deepEqual(ianaServiceName('http'), []);
    assert.equal(ianaServiceName('80').length, 1);
    assert.equal(ianaServiceName('a--b').length, 1);
    assert.equal(ianaServiceName('a-very-long-port-name').length, 1);
  });
});
