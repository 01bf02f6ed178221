import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { KubeObject } from '@ciliate/resources';
import fc from 'fast-check';

import {
  HASH_ANNOTATION,
  SOURCE_ANNOTATION,
  contains,
  fromApi,
  importAction,
  mirrorInSync,
  sameStoreObject,
  toMirror,
  writebackStatus,
} from './convert.js';
import { bridgedKind, type BridgedKind } from './kinds.js';

const kind = (name: string): BridgedKind => {
  const k = bridgedKind(name);
  assert.ok(k, name);
  return k;
};

// What `GET /api/v1/namespaces/app/services/web` returns (list items lack apiVersion and kind).
const apiService = {
  metadata: {
    name: 'web',
    namespace: 'app',
    uid: '3f1c2a9e-0000-4000-8000-000000000001',
    resourceVersion: '4711',
    creationTimestamp: '2025-01-02T03:04:05Z',
    labels: { app: 'web' },
    managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
  },
  spec: {
    type: 'LoadBalancer',
    selector: { app: 'web' },
    ports: [{ port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 31000 }],
    clusterIP: '10.96.0.10',
    clusterIPs: ['10.96.0.10'],
    sessionAffinity: 'None',
    ipFamilies: ['IPv4'],
    ipFamilyPolicy: 'SingleStack',
    internalTrafficPolicy: 'Cluster',
    externalTrafficPolicy: 'Cluster',
    allocateLoadBalancerNodePorts: true,
    someFieldFromAFutureRelease: { x: 1 },
  },
  status: { loadBalancer: {} },
};

describe('fromApi: API objects as the store keeps them', () => {
  it('keeps identity, drops managed fields and the resourceVersion, marks the source', () => {
    const r = fromApi(apiService, kind('Service'), 'v1');
    assert.ok(r.ok, r.ok ? '' : r.problem.message);
    const md = r.object.metadata;
    assert.equal(md.uid, apiService.metadata.uid);
    assert.equal(md.creationTimestamp, apiService.metadata.creationTimestamp);
    assert.equal(md.resourceVersion, undefined);
    assert.equal(md.managedFields, undefined);
    assert.equal(md.annotations?.[SOURCE_ANNOTATION], 'kubernetes');
    assert.deepEqual(md.labels, { app: 'web' });
    assert.equal(r.object.apiVersion, 'v1');
    assert.equal(r.object.kind, 'Service');
    assert.equal((r.object as { status?: unknown }).status, undefined, 'status is not spec');
    assert.equal(r.status, undefined, "Service status is Ciliate's, not imported");
    assert.ok(
      r.warnings.some((w) => w.includes('someFieldFromAFutureRelease')),
      'an unmodelled field is dropped with a warning, not a refusal',
    );
  });

  it('imports the status of pods (their IPs)', () => {
    const r = fromApi(
      {
        metadata: { name: 'p', namespace: 'app', uid: 'u1' },
        spec: { containers: [{ name: 'c', image: 'nginx' }] },
        status: { phase: 'Running', podIP: '10.0.1.5', podIPs: [{ ip: '10.0.1.5' }] },
      },
      kind('Pod'),
      'v1',
    );
    assert.ok(r.ok);
    assert.deepEqual(r.status, {
      phase: 'Running',
      podIP: '10.0.1.5',
      podIPs: [{ ip: '10.0.1.5' }],
    });
  });

  it('refuses an invalid object naming the field', () => {
    const r = fromApi(
      {
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumLoadBalancerIPPool',
        metadata: { name: 'pool', uid: 'u2' },
        spec: { blocks: [{ cidr: '10.0.6.0/33' }] },
      },
      kind('CiliumLoadBalancerIPPool'),
      'v2',
    );
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.match(r.problem.message, /spec\.blocks\[0\]\.cidr/);
    assert.equal(r.problem.issues[0]?.path, 'spec.blocks[0].cidr');
  });

  it('converts an older served version to the storage version', () => {
    const r = fromApi(
      {
        metadata: { name: 'pool', uid: 'u3' },
        spec: { blocks: [{ cidr: '10.0.6.0/24' }] },
      },
      kind('CiliumLoadBalancerIPPool'),
      'v2alpha1',
    );
    assert.ok(r.ok, r.ok ? '' : r.problem.message);
    assert.equal(r.object.apiVersion, 'cilium.io/v2');
  });

  it('is the same store object after a round through the store', () => {
    const r = fromApi(apiService, kind('Service'), 'v1');
    assert.ok(r.ok);
    const stored = {
      ...r.object,
      metadata: { ...r.object.metadata, resourceVersion: '17', generation: 1 },
    } as KubeObject;
    assert.ok(
      sameStoreObject(r.object, stored),
      "the store's own generation and revision do not count",
    );
    const relabelled = fromApi(
      { ...apiService, metadata: { ...apiService.metadata, labels: { app: 'web2' } } },
      kind('Service'),
      'v1',
    );
    assert.ok(relabelled.ok);
    assert.equal(sameStoreObject(relabelled.object, stored), false);
  });
});

describe('contains: server defaults allowed, removals not', () => {
  it('follows the rules in a table', () => {
    const cases: [unknown, unknown, boolean][] = [
      [{ ingress: [{ ip: '1.2.3.4' }] }, { ingress: [{ ip: '1.2.3.4', ipMode: 'VIP' }] }, true],
      [{ ingress: [] }, {}, true],
      [{ ingress: [] }, { ingress: [{ ip: '1.2.3.4' }] }, false],
      [{ ingress: [{ ip: '1.2.3.4' }] }, { ingress: [{ ip: '1.2.3.5' }] }, false],
      [{ a: 1 }, { a: 1, b: 2 }, true],
      [{ a: 1, b: 2 }, { a: 1 }, false],
      [[1, 2], [1, 2, 3], false],
      ['x', 'x', true],
    ];
    for (const [want, have, expected] of cases) {
      assert.equal(
        contains(want, have),
        expected,
        `${JSON.stringify(want)} in ${JSON.stringify(have)}`,
      );
    }
  });

  it('holds for any JSON value and itself, and after adding keys to objects', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        assert.ok(contains(v, v));
        if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
          assert.ok(contains(v, { ...v, zzExtraDefault: 1 }));
        }
      }),
    );
  });
});

describe('writebackStatus', () => {
  const svc = kind('Service');
  const pool = kind('CiliumLoadBalancerIPPool');
  it('patches loadBalancer only, keeping the rest of the status', () => {
    const patch = writebackStatus(
      svc,
      { loadBalancer: { ingress: [{ ip: '10.0.6.1' }] } },
      { conditions: [{ type: 'X' }], loadBalancer: {} },
    );
    assert.deepEqual(patch, {
      conditions: [{ type: 'X' }],
      loadBalancer: { ingress: [{ ip: '10.0.6.1' }] },
    });
    assert.equal(
      writebackStatus(
        svc,
        { loadBalancer: { ingress: [{ ip: '10.0.6.1' }] } },
        {
          loadBalancer: { ingress: [{ ip: '10.0.6.1', ipMode: 'VIP' }] },
        },
      ),
      undefined,
      "the API's defaults are not a difference",
    );
  });
  it('releases with an empty loadBalancer and ignores a status without the field', () => {
    assert.deepEqual(
      writebackStatus(
        svc,
        { loadBalancer: {} },
        { loadBalancer: { ingress: [{ ip: '1.1.1.1' }] } },
      ),
      { loadBalancer: { ingress: [] } },
    );
    assert.equal(writebackStatus(svc, { other: 1 }, {}), undefined);
    assert.equal(writebackStatus(svc, undefined, {}), undefined);
  });
  it('patches pool conditions', () => {
    const conditions = [
      {
        type: 'cilium.io/IPsAvailable',
        status: 'True',
        reason: 'x',
        message: '254',
        lastTransitionTime: '2025-01-01T00:00:00Z',
      },
    ];
    assert.deepEqual(writebackStatus(pool, { conditions }, undefined), { conditions });
    assert.equal(writebackStatus(pool, { conditions }, { conditions }), undefined);
  });
});

describe('mirrors', () => {
  const cn = kind('CiliumNode');
  const cep = kind('CiliumEndpoint');
  const node: KubeObject = {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNode',
    metadata: {
      name: 'worker-1',
      uid: 'store-uid',
      resourceVersion: '9',
      generation: 3,
      creationTimestamp: '2025-01-01T00:00:00Z',
      labels: { a: 'b' },
      finalizers: ['x'],
    },
    spec: { addresses: [{ type: 'InternalIP', ip: '192.168.1.10' }] },
  } as KubeObject;

  it('writes what the API should hold, without store-only metadata', () => {
    const m = toMirror(node, { ipam: { used: {} } }, cn);
    const md = m.body.metadata as Record<string, unknown>;
    assert.deepEqual(Object.keys(md).sort(), ['annotations', 'labels', 'name']);
    assert.equal((md.annotations as Record<string, string>)[SOURCE_ANNOTATION], 'ciliate');
    assert.equal((md.annotations as Record<string, string>)[HASH_ANNOTATION], m.hash);
    assert.equal(m.body.status, undefined, 'CiliumNode status goes through /status');
    assert.deepEqual(m.status, { ipam: { used: {} } });
    const e = toMirror(
      {
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumEndpoint',
        metadata: { name: 'p', namespace: 'app' },
      },
      { state: 'ready' },
      cep,
    );
    assert.deepEqual(e.body.status, { state: 'ready' }, 'CiliumEndpoint has no status subresource');
  });

  it('is in sync with what the API gives back, and not after a change on either side', () => {
    const m = toMirror(node, undefined, cn);
    const api = {
      ...m.body,
      metadata: {
        ...(m.body.metadata as object),
        uid: 'api-uid',
        resourceVersion: '100',
        generation: 1,
      },
    };
    assert.ok(mirrorInSync(m, api));
    const edited = { ...api, spec: { addresses: [] } };
    assert.equal(mirrorInSync(m, edited), false, 'an edit in the API is undone');
    const changed = toMirror(
      { ...node, metadata: { ...node.metadata, labels: {} } },
      undefined,
      cn,
    );
    assert.equal(mirrorInSync(changed, api), false, 'a removed label is seen through the hash');
  });
});

describe('importAction', () => {
  const obj = (uid: string, source: string | undefined, label = 'a'): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: 'n',
      uid,
      labels: { l: label },
      ...(source ? { annotations: { [SOURCE_ANNOTATION]: source } } : {}),
    },
  });

  it('follows the rules in a table', () => {
    const cases: [KubeObject | undefined, KubeObject | undefined, string][] = [
      [undefined, undefined, 'none'],
      [obj('1', 'kubernetes'), undefined, 'put'],
      [obj('1', 'kubernetes'), obj('1', 'kubernetes'), 'none'],
      [obj('1', 'kubernetes', 'b'), obj('1', 'kubernetes'), 'put'],
      [obj('2', 'kubernetes'), obj('1', 'kubernetes'), 'replace'],
      [undefined, obj('1', 'kubernetes'), 'delete'],
      [undefined, obj('1', undefined), 'none'],
      [obj('1', 'kubernetes'), obj('9', undefined), 'conflict'],
    ];
    for (const [desired, stored, expected] of cases) {
      assert.equal(importAction(desired, stored), expected);
    }
  });

  it('converges: after one pass the store holds exactly the API, other sources untouched', () => {
    const names = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');
    const version = fc.record({ uid: fc.constantFrom('1', '2'), label: fc.constantFrom('x', 'y') });
    fc.assert(
      fc.property(
        fc.dictionary(names, version),
        fc.dictionary(
          names,
          fc.record({ v: version, source: fc.constantFrom('kubernetes', undefined, 'ciliate') }),
        ),
        (api, storeInit) => {
          const store = new Map<string, KubeObject>();
          for (const [n, s] of Object.entries(storeInit))
            store.set(n, {
              ...obj(s.v.uid, s.source, s.v.label),
              metadata: { ...obj(s.v.uid, s.source, s.v.label).metadata, name: n },
            });
          const desiredOf = (n: string): KubeObject | undefined => {
            const v = api[n];
            if (!v) return undefined;
            const o = obj(v.uid, 'kubernetes', v.label);
            return { ...o, metadata: { ...o.metadata, name: n } };
          };
          const foreignBefore = [...store].filter(
            ([, o]) => o.metadata.annotations?.[SOURCE_ANNOTATION] !== 'kubernetes',
          );
          const keys = new Set([...Object.keys(api), ...store.keys()]);
          for (const n of keys) {
            const a = importAction(desiredOf(n), store.get(n));
            if (a === 'put' || a === 'replace') store.set(n, desiredOf(n)!);
            if (a === 'delete') store.delete(n);
          }
          for (const n of keys)
            assert.ok(
              ['none', 'conflict'].includes(importAction(desiredOf(n), store.get(n))),
              'a second pass does nothing',
            );
          for (const [n, o] of foreignBefore)
            assert.equal(store.get(n), o, 'objects from other sources are untouched');
          for (const n of Object.keys(api)) {
            const s = store.get(n)!;
            if (s.metadata.annotations?.[SOURCE_ANNOTATION] === 'kubernetes')
              assert.ok(sameStoreObject(desiredOf(n)!, s));
          }
          for (const [n, s] of store) {
            if (s.metadata.annotations?.[SOURCE_ANNOTATION] === 'kubernetes')
              assert.ok(api[n], 'no leftovers');
          }
        },
      ),
    );
  });
});
