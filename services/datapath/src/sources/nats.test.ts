// The NATS address and identity sources' pure parts: the pod gateway from IPAM's reply and the
// request deadline.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CiliateError } from '@ciliate/contracts';

import { gatewayOf, withDeadline } from './nats.js';

describe('sources', () => {
  it('the gateway is the one IPAM answers, and a reply without one is an error', () => {
    assert.equal(gatewayOf({ gateways: { ipv4: '10.0.1.1' } }, '10.0.1.0/24'), '10.0.1.1');
    assert.throws(
      () => gatewayOf({}, '10.0.1.0/24'),
      /IPAM answered no gateway for pod CIDR 10\.0\.1\.0\/24/,
    );
  });

  it('withDeadline retries transient failures, then answers CNI code 11', async () => {
    let calls = 0;
    const ok = await withDeadline(
      'x',
      () => {
        calls++;
        if (calls < 3) throw new CiliateError('unavailable', 'nobody');
        return Promise.resolve('done');
      },
      5000,
    );
    assert.equal(ok, 'done');
    const started = Date.now();
    await assert.rejects(
      withDeadline('IPAM allocate', () => Promise.reject(new CiliateError('timeout', 'slow')), 300),
      (err: { code: number; message: string }) =>
        err.code === 11 && /IPAM allocate: no answer within 300 ms/.test(err.message),
    );
    assert.ok(Date.now() - started < 2000);
    await assert.rejects(
      withDeadline('x', () => Promise.reject(new CiliateError('bad_request', 'no')), 5000),
      /no/,
    );
  });

  it('withDeadline backs off and tries again when a service is busy', async () => {
    const at: number[] = [];
    const ok = await withDeadline(
      'IPAM allocate',
      () => {
        at.push(Date.now());
        if (at.length < 3) throw new CiliateError('busy', 'ipam has 512 requests in flight');
        return Promise.resolve('done');
      },
      5000,
    );
    assert.equal(ok, 'done');
    assert.ok(at[2]! - at[0]! >= 250, `backed off: ${at[2]! - at[0]!} ms`);
    await assert.rejects(
      withDeadline('IPAM allocate', () => Promise.reject(new CiliateError('busy', 'full')), 300),
      (err: { code: number; message: string }) => err.code === 11 && /full/.test(err.message),
    );
  });
});
