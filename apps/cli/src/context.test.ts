import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { resolveNats } from './context.js';

describe('where the CLI connects and as whom', () => {
  const env = { CILIATE_CONTEXT_FILE: '/nonexistent/context.json' };

  it('takes each credential from a flag, else the environment', () => {
    const t = resolveNats(
      { nkey: '/flag/seed', tlsCa: '/flag/ca.crt' },
      {
        ...env,
        CILIATE_NATS_NKEY: '/env/seed',
        CILIATE_NATS_TLS_CERT: '/env/tls.crt',
        CILIATE_NATS_ROLE: 'viewer',
      },
    );
    assert.equal(t.nkey, '/flag/seed');
    assert.equal(t.tlsCa, '/flag/ca.crt');
    assert.equal(t.tlsCert, '/env/tls.crt');
    assert.equal(t.role, 'viewer');
    assert.equal(
      resolveNats({ role: 'admin' }, { ...env, CILIATE_NATS_ROLE: 'viewer' }).role,
      'admin',
    );
  });

  it('refuses a role that is not one the CLI can be, naming the setting', () => {
    assert.throws(
      () => resolveNats({ role: 'root' }, env),
      /--role \(CILIATE_NATS_ROLE\): Invalid value: "root"/,
    );
  });
});
