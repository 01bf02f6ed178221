import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  CiliateError,
  HealthReportSchema,
  buckets,
  componentOf,
  errorCodes,
  jsonSchemaOf,
  parseWire,
  serviceName,
  subjects,
  wireSchemaNames,
} from './index.js';
import type { WireError } from './index.js';

describe('subjects', () => {
  it('puts node, component and instance in their own tokens', () => {
    assert.equal(subjects.health('node-1', 'ipam', 'ABC'), 'ciliate.v1.health.node-1.ipam.ABC');
  });

  it('refuses a token that would change the subject, naming the field', () => {
    assert.throws(
      () => subjects.health('node*1', 'ipam', 'x'),
      /^InvalidTokenError: node: Invalid value: "node\*1"/,
    );
    assert.throws(() => subjects.health('n', 'ip*', 'x'), /component/);
    assert.throws(() => subjects.health('n', 'ipam', ''), /instanceId: .*must not be empty/);
  });

  it('never builds a subject with an empty or wildcard token from any valid input', () => {
    const tok = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
    fc.assert(
      fc.property(tok, tok, tok, (n, c, i) => {
        const s = subjects.health(n, c, i).split('.');
        assert.equal(s.length, 6);
        for (const t of s) assert.ok(t.length > 0 && !['*', '>'].includes(t));
      }),
    );
  });
});

describe('service names', () => {
  it('round-trips a component through its micro service name', () => {
    assert.equal(serviceName('ipam'), 'ciliate-ipam');
    assert.equal(componentOf('ciliate-ipam'), 'ipam');
    assert.equal(componentOf('other'), undefined);
    assert.throws(() => serviceName('a b'), /component/);
  });

  it('names buckets with NATS-safe characters only', () => {
    assert.match(buckets.leases(), /^[-\w]+$/);
  });
});

describe('schemas', () => {
  it('rejects a message with the field path and reason', () => {
    assert.throws(
      () => parseWire(HealthReportSchema, { component: 'x', ready: 'yes' }, 'health report'),
      (err: unknown) => {
        assert.ok(err instanceof CiliateError);
        assert.equal(err.code, 'bad_request');
        assert.equal(err.status, 400);
        assert.equal(err.field, 'instanceId');
        assert.match(err.message, /ready: /);
        return true;
      },
    );
  });

  it('exports every wire schema as JSON Schema', () => {
    for (const name of wireSchemaNames) {
      const schema = jsonSchemaOf(name);
      assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema', name);
      assert.equal(schema.type, 'object', name);
    }
  });

  it('gives each error code its own status, so the status header alone names the code', () => {
    const statuses = Object.values(errorCodes);
    assert.equal(new Set(statuses).size, statuses.length);
    assert.equal(errorCodes.too_large, 413);
    assert.equal(errorCodes.busy, 429);
  });

  it('carries errors across the wire unchanged', () => {
    const err = new CiliateError('exhausted', 'pool p is full', { field: 'pool' });
    const back = CiliateError.fromWire(JSON.parse(JSON.stringify(err.toWire())) as WireError);
    assert.deepEqual(back.toWire(), err.toWire());
  });
});

describe('datapath subjects', () => {
  it('scopes endpoints and events by node', async () => {
    const { datapathSubjects } = await import('./datapath.js');
    assert.equal(
      datapathSubjects.endpoint('node-1', 'endpoint-list'),
      'ciliate.v1.datapath.node.node-1.endpoint-list',
    );
    assert.equal(
      datapathSubjects.event('drop', 'node-1'),
      'ciliate.v1.datapath.events.drop.node-1',
    );
    assert.equal(datapathSubjects.events(), 'ciliate.v1.datapath.events.*.*');
    assert.equal(datapathSubjects.events({ type: 'trace' }), 'ciliate.v1.datapath.events.trace.*');
    assert.throws(() => datapathSubjects.event('drop', 'a>b'), /node: Invalid value: "a>b"/);
  });

  it('carries a node name with dots (a DNS subdomain, as Kubernetes allows) as one token', async () => {
    const { datapathSubjects } = await import('./datapath.js');
    assert.equal(
      datapathSubjects.endpoint('n1.example', 'endpoint-list'),
      'ciliate.v1.datapath.node.n1_example.endpoint-list',
    );
    assert.equal(subjects.health('n1.example', 'ipam', 'x'), 'ciliate.v1.health.n1_example.ipam.x');
  });
});
