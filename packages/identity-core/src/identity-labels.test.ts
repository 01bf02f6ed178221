import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { formatLabel } from '@ciliate/contracts';

import { formatPrefix } from '@ciliate/netaddr';

import {
  cidrLabelKey,
  cidrLabels,
  podIdentityLabels,
  prefixFromCidrLabelKey,
} from './identity-labels.js';
import { parsePrefix } from './ip.js';
import { createLabelFilter } from './label-filter.js';

describe('pod identity labels', () => {
  it('folds namespace labels in and always carries namespace, service account and cluster', () => {
    const r = podIdentityLabels({
      podLabels: {
        app: 'web',
        'pod-template-hash': '5d8f7',
        'io.cilium.k8s.policy.name': 'forged',
      },
      namespace: 'shop',
      namespaceLabels: { 'kubernetes.io/metadata.name': 'shop', env: 'prod' },
      serviceAccount: 'web-sa',
      clusterName: 'east',
    });
    assert.deepEqual(r.labels.map(formatLabel), [
      'k8s:app=web',
      'k8s:io.cilium.k8s.namespace.labels.env=prod',
      'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop',
      'k8s:io.cilium.k8s.policy.cluster=east',
      'k8s:io.cilium.k8s.policy.serviceaccount=web-sa',
      'k8s:io.kubernetes.pod.namespace=shop',
    ]);
    assert.deepEqual(r.information.map(formatLabel), ['k8s:pod-template-hash=5d8f7']);
    assert.equal(
      r.key,
      'k8s:app=web;k8s:io.cilium.k8s.namespace.labels.env=prod;' +
        'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop;' +
        'k8s:io.cilium.k8s.policy.cluster=east;k8s:io.cilium.k8s.policy.serviceaccount=web-sa;' +
        'k8s:io.kubernetes.pod.namespace=shop;',
    );
  });

  it('a pod cannot forge its namespace or Cilium-owned labels', () => {
    const r = podIdentityLabels({
      podLabels: {
        'io.kubernetes.pod.namespace': 'kube-system',
        'io.cilium.k8s.namespace.labels.env': 'prod',
        'io.cilium.k8s.policy.serviceaccount': 'admin',
      },
      namespace: 'tenant',
      clusterName: 'default',
    });
    assert.deepEqual(r.labels.map(formatLabel), [
      'k8s:io.cilium.k8s.policy.cluster=default',
      'k8s:io.cilium.k8s.policy.serviceaccount=default',
      'k8s:io.kubernetes.pod.namespace=tenant',
    ]);
  });

  it('an inclusive filter still keeps namespace, service account and cluster', () => {
    const r = podIdentityLabels({
      podLabels: { app: 'web', tier: 'front' },
      namespace: 'shop',
      serviceAccount: 'sa',
      clusterName: 'c1',
      filter: createLabelFilter({ prefixes: ['k8s:app'] }),
    });
    assert.deepEqual(r.labels.map(formatLabel), [
      'k8s:app=web',
      'k8s:io.cilium.k8s.policy.cluster=c1',
      'k8s:io.cilium.k8s.policy.serviceaccount=sa',
      'k8s:io.kubernetes.pod.namespace=shop',
    ]);
  });

  it('refuses a pod without namespace, naming the field', () => {
    assert.throws(
      () => podIdentityLabels({ namespace: '', clusterName: 'c' }),
      /^IdentityError: pod\.namespace: Required value/,
    );
    assert.throws(
      () => podIdentityLabels({ namespace: 'a', clusterName: 'c', podLabels: { 'a;b': 'x' } }),
      /pod\.podLabels\["a;b"\]\.key: Invalid value: "a;b"/,
    );
  });

  const excluded = fc.record(
    {
      'pod-template-hash': fc.stringMatching(/^[0-9a-f]{5,10}$/),
      'controller-revision-hash': fc.stringMatching(/^[0-9a-f]{5,10}$/),
      'statefulset.kubernetes.io/pod-name': fc.stringMatching(/^db-[0-9]{1,3}$/),
      'annotation.kubectl': fc.string({ maxLength: 5 }).filter((s) => !s.includes(';')),
    },
    { requiredKeys: [] },
  );
  const relevantLabels = fc.dictionary(
    fc.constantFrom('app', 'team', 'tier', 'version', 'app.kubernetes.io/name'),
    fc.stringMatching(/^[a-z0-9]{0,6}$/),
  );

  it('property: label order and excluded labels do not change the identity', () => {
    fc.assert(
      fc.property(relevantLabels, excluded, fc.boolean(), (pod, noise, reverse) => {
        const base = podIdentityLabels({ podLabels: pod, namespace: 'ns', clusterName: 'c' });
        const entries = Object.entries({ ...noise, ...pod });
        if (reverse) entries.reverse();
        const noisy = podIdentityLabels({
          podLabels: Object.fromEntries(entries),
          namespace: 'ns',
          clusterName: 'c',
        });
        assert.equal(noisy.key, base.key);
      }),
    );
  });

  it('property: distinct relevant labels give distinct identity keys', () => {
    fc.assert(
      fc.property(relevantLabels, relevantLabels, fc.constantFrom('a', 'b'), (p, q, ns) => {
        const a = podIdentityLabels({ podLabels: p, namespace: 'a', clusterName: 'c' });
        const b = podIdentityLabels({ podLabels: q, namespace: ns, clusterName: 'c' });
        const same =
          ns === 'a' &&
          JSON.stringify(Object.entries(p).sort()) === JSON.stringify(Object.entries(q).sort());
        assert.equal(a.key === b.key, same);
      }),
    );
  });
});

describe('CIDR labels', () => {
  // prefix, dual stack, labels
  const spec: [string, boolean, string[]][] = [
    ['10.0.0.0/8', false, ['cidr:10.0.0.0/8', 'reserved:world']],
    ['10.0.0.0/8', true, ['cidr:10.0.0.0/8', 'reserved:world-ipv4']],
    ['10.1.2.3', false, ['cidr:10.1.2.3/32', 'reserved:world']],
    ['10.1.2.3/16', false, ['cidr:10.1.0.0/16', 'reserved:world']],
    ['0.0.0.0/0', false, ['reserved:world']],
    ['0.0.0.0/0', true, ['reserved:world-ipv4']],
    ['2001:db8::/32', true, ['cidr:2001-db8--0/32', 'reserved:world-ipv6']],
    ['2001:DB8:0:0:1::1/128', false, ['cidr:2001-db8--1-0-0-1/128', 'reserved:world']],
    ['::1', false, ['cidr:0--1/128', 'reserved:world']],
    ['::/0', true, ['reserved:world-ipv6']],
  ];
  for (const [prefix, dualStack, want] of spec) {
    it(`${prefix}${dualStack ? ' (dual stack)' : ''} -> ${want.join(', ')}`, () => {
      assert.deepEqual(cidrLabels(prefix, { dualStack }).map(formatLabel), want);
    });
  }

  it('property: a CIDR label key decodes back to its prefix', () => {
    const v4 = fc
      .tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 }))
      .map(([b, l]) => parsePrefix(`${b.join('.')}/${l}`));
    const v6 = fc
      .tuple(
        fc.array(fc.constantFrom(0, 0, 0, 1, 0xdb8, 0xffff), { minLength: 8, maxLength: 8 }),
        fc.integer({ min: 0, max: 128 }),
      )
      .map(([g, l]) => parsePrefix(`${g.map((x) => x.toString(16)).join(':')}/${l}`));
    fc.assert(
      fc.property(fc.oneof(v4, v6), (p) => {
        const key = cidrLabelKey(p);
        assert.ok(!key.includes(':') && !key.startsWith('-') && !key.includes('-/'), key);
        assert.equal(formatPrefix(prefixFromCidrLabelKey(key)), formatPrefix(p));
      }),
    );
  });
});
