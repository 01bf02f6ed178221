// The NATS address and identity sources' pure parts: the pod gateway and the request deadline.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CiliateError } from '@ciliate/contracts';

import { routerAddress, withDeadline } from './nats.js';

describe('sources', () => {
  it('the gateway is the router address IPAM reserves', () => {
    assert.equal(routerAddress('10.0.1.0/24'), '10.0.1.1');
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
});
