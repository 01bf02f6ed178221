import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { JetStreamApiError } from '@nats-io/jetstream';

import { isCasConflict, jetStreamErrorCode } from './errors.js';

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
