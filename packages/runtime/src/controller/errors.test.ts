import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { JetStreamApiError } from '@nats-io/jetstream';
import { ClosedConnectionError, NoRespondersError, TimeoutError } from '@nats-io/transport-node';

import { isCasConflict, jetStreamErrorCode, storeFailureKind } from './errors.js';

describe('isCasConflict', () => {
  const api = (code: number) =>
    new JetStreamApiError({ code: 400, err_code: code, description: 'whatever the text says' });

  it('tells a compare-and-set failure by its code, not its text', () => {
    assert.equal(isCasConflict(api(10071)), true);
    assert.equal(isCasConflict(api(10164)), true);
    assert.equal(isCasConflict(api(10059)), false);
    assert.equal(isCasConflict(new Error('wrong last sequence: 5')), false);
  });

  it('finds the code in the cause chain and on a publisher acknowledgement error', () => {
    assert.equal(isCasConflict(new Error('write failed', { cause: api(10071) })), true);
    const refused = Object.assign(new Error('refused'), { errCode: 10071 });
    assert.equal(jetStreamErrorCode(refused), 10071);
    assert.equal(isCasConflict(refused), true);
    assert.equal(isCasConflict(undefined), false);
    assert.equal(isCasConflict('10071'), false);
  });
});

describe('storeFailureKind', () => {
  const api = (code: number) =>
    new JetStreamApiError({ code: 503, err_code: code, description: 'timeout unavailable text' });

  it('tells a retryable store failure by class and JetStream code, never by text', () => {
    assert.equal(storeFailureKind(api(10008)), 'unavailable');
    assert.equal(storeFailureKind(new Error('x', { cause: api(10009) })), 'unavailable');
    assert.equal(
      storeFailureKind(Object.assign(new Error('refused'), { errCode: 10118 })),
      'unavailable',
    );
    assert.equal(storeFailureKind(new TimeoutError()), 'timeout');
    assert.equal(
      storeFailureKind(new Error('wrapped', { cause: new NoRespondersError('s') })),
      'unavailable',
    );
    assert.equal(storeFailureKind(new ClosedConnectionError()), 'unavailable');
    // A real failure stays one, whatever its message says.
    assert.equal(storeFailureKind(api(10071)), undefined);
    assert.equal(storeFailureKind(new Error('request timed out, unavailable')), undefined);
  });
});
