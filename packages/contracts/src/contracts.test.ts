import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  CiliateError,
  HealthReportSchema,
  IDENTITY_REQUEST_LIMITS as L,
  IdentityAllocateRequestSchema,
  IdentityLookupRequestSchema,
  IpamAllocateRequestSchema,
  IpcacheDeleteRequestSchema,
  IpcacheRecordSchema,
  IpcacheUpsertRequestSchema,
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

describe('request limits of identity and IPAM', () => {
  /** The bad_request a schema gives, as [field, message]; undefined when the data passes. */
  function refusal(schema: Parameters<typeof parseWire>[0], data: unknown): [string?, string?] {
    try {
      parseWire(schema, data, 'request');
      return [];
    } catch (err) {
      assert.ok(err instanceof CiliateError && err.code === 'bad_request', String(err));
      return [err.field, err.message];
    }
  }
  const entries = (n: number, value = 'v'): Record<string, string> =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`key-${i}`, value]));
  const labels = (n: number): string[] => Array.from({ length: n }, (_, i) => `k8s:l${i}=v`);
  const claim = { prefix: '10.0.0.1/32', identity: 300, source: 'k8s', ownerKey: 'pod/a/b' };

  const cases: [string, Parameters<typeof parseWire>[0], unknown, string, RegExp][] = [
    [
      'labels in a set',
      IdentityAllocateRequestSchema,
      { node: 'n1', labels: labels(L.labels + 1) },
      'labels',
      /labels: a label set has at most 512 labels/,
    ],
    [
      'labels in a lookup',
      IdentityLookupRequestSchema,
      { labels: labels(L.labels + 1) },
      'labels',
      /at most 512 labels/,
    ],
    [
      'the length of a label',
      IdentityAllocateRequestSchema,
      { node: 'n1', labels: ['k8s:a=b', `k8s:app=${'x'.repeat(L.labelLength)}`] },
      'labels[1]',
      /labels\[1\]: a label is at most 512 characters/,
    ],
    [
      'pod labels',
      IdentityAllocateRequestSchema,
      { node: 'n1', namespace: 'ns', podLabels: entries(L.mapEntries + 1) },
      'podLabels',
      /podLabels: at most 128 labels, not 129/,
    ],
    [
      'namespace labels',
      IdentityAllocateRequestSchema,
      { node: 'n1', namespace: 'ns', namespaceLabels: entries(L.mapEntries + 1) },
      'namespaceLabels',
      /namespaceLabels: at most 128 labels, not 129/,
    ],
    [
      'the length of a pod label value',
      IdentityAllocateRequestSchema,
      { node: 'n1', namespace: 'ns', podLabels: { app: 'x'.repeat(L.mapValueLength + 1) } },
      'podLabels.app',
      /podLabels.app: a label value is at most 128 characters, not 129/,
    ],
    [
      'the length of a pod label key',
      IdentityAllocateRequestSchema,
      { node: 'n1', namespace: 'ns', podLabels: { ['k'.repeat(L.mapKeyLength + 1)]: 'v' } },
      `podLabels.${'k'.repeat(L.mapKeyLength + 1)}`,
      /a label key is at most 320 characters, not 321/,
    ],
    [
      'the length of a service account',
      IdentityAllocateRequestSchema,
      { node: 'n1', namespace: 'ns', serviceAccount: 's'.repeat(L.nameLength + 1) },
      'serviceAccount',
      /serviceAccount: at most 253 characters/,
    ],
    [
      'the length of an ipcache owner key',
      IpcacheUpsertRequestSchema,
      { ...claim, ownerKey: 'o'.repeat(L.ownerKeyLength + 1) },
      'ownerKey',
      /ownerKey: at most 512 characters/,
    ],
    [
      'the length of an ipcache prefix',
      IpcacheDeleteRequestSchema,
      { prefix: `${'0'.repeat(L.addressLength)}/32`, ownerKey: 'pod/a/b' },
      'prefix',
      /prefix: at most 64 characters/,
    ],
    [
      'the length of an ipcache host address',
      IpcacheUpsertRequestSchema,
      { ...claim, hostIP: '1'.repeat(L.addressLength + 1) },
      'hostIP',
      /hostIP: at most 64 characters/,
    ],
    [
      'the length of an IPAM owner part (so an owner key stays within 4 x 253 + 3 characters)',
      IpamAllocateRequestSchema,
      {
        node: 'n1',
        owner: { namespace: 'a', pod: 'p'.repeat(254), containerID: 'c', ifname: 'eth0' },
      },
      'owner.pod',
      /owner\.pod: .*253/,
    ],
  ];
  for (const [what, schema, data, field, message] of cases) {
    it(`caps ${what}, naming the field and the limit`, () => {
      const [f, m] = refusal(schema, data);
      assert.equal(f, field);
      assert.match(m ?? '', message);
    });
  }

  it('takes requests at the limits', () => {
    const ok: [Parameters<typeof parseWire>[0], unknown][] = [
      [IdentityAllocateRequestSchema, { node: 'n1', labels: labels(L.labels) }],
      [
        IdentityAllocateRequestSchema,
        {
          node: 'n1',
          namespace: 'n'.repeat(L.nameLength),
          podLabels: { ['k'.repeat(L.mapKeyLength)]: 'v'.repeat(L.mapValueLength) },
          namespaceLabels: entries(L.mapEntries),
        },
      ],
      [IpcacheUpsertRequestSchema, { ...claim, ownerKey: 'o'.repeat(L.ownerKeyLength) }],
    ];
    for (const [schema, data] of ok) assert.deepEqual(refusal(schema, data), []);
  });

  it('reads stored ipcache records whatever their lengths: the limits are on writers', () => {
    const long = { ...claim, ownerKey: 'o'.repeat(L.ownerKeyLength + 1) };
    assert.ok(IpcacheRecordSchema.safeParse({ v: 1, ...long, claims: [long] }).success);
  });
});
