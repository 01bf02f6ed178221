import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CiliateError } from '@ciliate/contracts';
import { ConfigError } from '@ciliate/runtime';

import { IPAM_ERROR_CODES, IpamError, allocatePodIp, createPodPool } from '@ciliate/ipam-core';
import { toWireError } from './errors.js';
import { poolFromSettings } from './service.js';

describe('IPAM errors on the wire', () => {
  it('maps every core code to a wire code', () => {
    const expected: Record<string, string> = {
      POOL_EXHAUSTED: 'exhausted',
      RANGE_FULL: 'exhausted',
      IP_IN_USE: 'conflict',
      OWNER_CONFLICT: 'conflict',
      CIDR_CONFLICT: 'conflict',
      NO_CIDR: 'not_found',
      INVALID_IP: 'bad_request',
      INVALID_CIDR: 'bad_request',
      INVALID_ARGUMENT: 'bad_request',
    };
    for (const code of IPAM_ERROR_CODES) {
      const e = toWireError(new IpamError(code, 'x'));
      assert.ok(e instanceof CiliateError);
      if (expected[code]) assert.equal(e.code, expected[code], code);
      assert.match(e.message, new RegExp(`^${code}: `));
    }
  });

  it('keeps the field of bad input and passes other errors through', () => {
    let pool = createPodPool('10.1.0.0/30');
    pool = allocatePodIp(pool, 'a').state;
    try {
      allocatePodIp(pool, 'b', { ip: '10.1.0.9' });
      assert.fail('expected IP_OUT_OF_RANGE');
    } catch (err) {
      const e = toWireError(err, 'request.');
      assert.ok(e instanceof CiliateError);
      assert.equal(e.code, 'bad_request');
      assert.equal(e.field, 'request.ip');
    }
    const other = new Error('boom');
    assert.equal(toWireError(other), other);
  });

  it('refuses a bad cluster pool setting naming its flag', () => {
    const base = {
      enableIpv4: true,
      enableIpv6: false,
      clusterPoolIpv4Cidr: '10.0.0.0/8',
      clusterPoolIpv4MaskSize: 24,
      clusterPoolIpv6Cidr: 'fd00::/104',
      clusterPoolIpv6MaskSize: 120,
    };
    assert.deepEqual(poolFromSettings(base).ipv4, { cidrs: ['10.0.0.0/8'], maskSize: 24 });
    assert.throws(
      () => poolFromSettings({ ...base, clusterPoolIpv4Cidr: '10.0.0.0/8,10.1.0.0/16' }),
      (e: unknown) =>
        e instanceof ConfigError &&
        /--cluster-pool-ipv4-cidr/.test(e.message) &&
        /overlaps/.test(e.message),
    );
    assert.throws(
      () => poolFromSettings({ ...base, enableIpv4: false }),
      (e: unknown) => e instanceof ConfigError,
    );
  });
});
