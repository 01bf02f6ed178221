// The path policy will take: a CiliumNetworkPolicy read by the resource side, its endpoint
// selector compiled by the vocabulary, matched against the label set this service derives for a
// pod. Both sides share one label model (@ciliate/contracts), so a verdict here is the verdict
// policy gets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  compileSelector,
  formatLabel,
  labelsToMap,
  reservedIdentity,
  RESERVED_IDENTITIES,
  type Label,
  type LabelSelector,
} from '@ciliate/contracts';
import { parseManifests } from '@ciliate/resources';

import { podIdentityLabels } from './identity-labels.js';

/** The endpoint selectors of the CiliumNetworkPolicies in `yaml`, as the resource side reads them. */
function endpointSelectors(yaml: string): LabelSelector[] {
  const r = parseManifests(yaml, 'test.yaml');
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'));
  const out: LabelSelector[] = [];
  for (const o of r.objects) {
    if (o.kind !== 'CiliumNetworkPolicy') continue;
    for (const rule of [o.spec, ...(o.specs ?? [])]) {
      if (rule?.endpointSelector !== undefined) out.push(rule.endpointSelector);
    }
  }
  assert.ok(out.length > 0, 'the manifest has endpoint selectors');
  return out;
}

function cnp(selector: string): string {
  return [
    'apiVersion: cilium.io/v2',
    'kind: CiliumNetworkPolicy',
    'metadata: { name: p, namespace: shop }',
    'spec:',
    `  endpointSelector: ${selector}`,
    '  ingress: [{}]',
  ].join('\n');
}

const web = podIdentityLabels({
  podLabels: { app: 'web', tier: 'front', 'pod-template-hash': '5d8f7' },
  namespace: 'shop',
  namespaceLabels: { 'kubernetes.io/metadata.name': 'shop', team: 'payments' },
  serviceAccount: 'web-sa',
  clusterName: 'east',
}).labels;

const webElsewhere = podIdentityLabels({
  podLabels: { app: 'web', tier: 'front' },
  namespace: 'default',
  namespaceLabels: { 'kubernetes.io/metadata.name': 'default' },
  clusterName: 'east',
}).labels;

describe('CiliumNetworkPolicy endpointSelector against identity labels', () => {
  const cases: [string, string, boolean, boolean][] = [
    // title, endpointSelector (YAML flow), verdict for web in shop, for web in default
    ['a plain key matches the k8s label', '{ matchLabels: { app: web } }', true, true],
    ['k8s: names the source', "{ matchLabels: { 'k8s:app': web } }", true, true],
    ['any: matches every source', "{ matchLabels: { 'any:app': web } }", true, true],
    ['another source does not match', "{ matchLabels: { 'container:app': web } }", false, false],
    ['a value miss', '{ matchLabels: { app: db } }', false, false],
    [
      'the namespace label',
      "{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': shop, app: web } }",
      true,
      false,
    ],
    [
      'the namespace label under any:',
      "{ matchLabels: { 'any:io.kubernetes.pod.namespace': shop } }",
      true,
      false,
    ],
    [
      'a namespace label of the pod namespace',
      "{ matchExpressions: [{ key: 'k8s:io.cilium.k8s.namespace.labels.team', operator: In, values: [payments, billing] }] }",
      true,
      false,
    ],
    [
      'the service account',
      "{ matchLabels: { 'k8s:io.cilium.k8s.policy.serviceaccount': web-sa } }",
      true,
      false,
    ],
    [
      'a label outside the identity (filtered) is not there to select',
      "{ matchExpressions: [{ key: 'k8s:pod-template-hash', operator: Exists }] }",
      false,
      false,
    ],
    [
      'NotIn holds where the key is absent',
      "{ matchExpressions: [{ key: 'any:tier', operator: NotIn, values: [back] }] }",
      true,
      true,
    ],
    [
      'DoesNotExist on a reserved label',
      "{ matchExpressions: [{ key: 'reserved:host', operator: DoesNotExist }] }",
      true,
      true,
    ],
    [
      'a reserved selector does not select pods',
      "{ matchLabels: { 'reserved:host': '' } }",
      false,
      false,
    ],
    ['the empty selector selects every endpoint', '{}', true, true],
  ];
  for (const [title, selector, inShop, inDefault] of cases) {
    it(title, () => {
      const [sel] = endpointSelectors(cnp(selector));
      const matches = compileSelector(sel!);
      assert.equal(matches(web), inShop, `web in shop: ${web.map(formatLabel).join(' ')}`);
      assert.equal(matches(webElsewhere), inDefault, 'web in default');
      // The identity's labels as CiliumIdentity security-labels (`source:key` map) match alike.
      assert.equal(matches(labelsToMap(web)), inShop, 'as a security-labels map');
    });
  }

  it('reserved: selectors select the reserved identities by their labels', () => {
    const [sel] = endpointSelectors(cnp("{ matchLabels: { 'reserved:host': '' } }"));
    const matches = compileSelector(sel!);
    assert.ok(matches(reservedIdentity(RESERVED_IDENTITIES.host)!.labels));
    assert.ok(!matches(reservedIdentity(RESERVED_IDENTITIES.world)!.labels));
    const [remote] = endpointSelectors(cnp("{ matchLabels: { 'reserved:remote-node': '' } }"));
    // kube-apiserver carries remote-node too, as in Cilium.
    assert.ok(
      compileSelector(remote!)(reservedIdentity(RESERVED_IDENTITIES['kube-apiserver'])!.labels),
    );
  });

  it('the seed policy selects its pods and no others', () => {
    const yaml = [
      'apiVersion: cilium.io/v2',
      'kind: CiliumNetworkPolicy',
      'metadata: { name: allow-frontend-http, namespace: app }',
      'spec:',
      '  endpointSelector: { matchLabels: { app: web-api } }',
      '  ingress: [{ fromEndpoints: [{ matchLabels: { app: frontend } }] }]',
    ].join('\n');
    const matches = compileSelector(endpointSelectors(yaml)[0]!);
    const pod = (app: string): Label[] =>
      podIdentityLabels({ podLabels: { app }, namespace: 'app', clusterName: 'default' }).labels;
    assert.ok(matches(pod('web-api')));
    assert.ok(!matches(pod('frontend')));
  });

  it('property: a selector made of any of a pod identity label, under its source, any: or none, selects it', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/);
    fc.assert(
      fc.property(
        fc.dictionary(name, name, { minKeys: 1, maxKeys: 4 }),
        name,
        fc.constantFrom('k8s:', 'any:', ''),
        fc.nat(),
        (podLabels, namespace, prefix, pick) => {
          const labels = podIdentityLabels({ podLabels, namespace, clusterName: 'c1' }).labels;
          const l = labels[pick % labels.length]!;
          const key = `${prefix}${l.key}`;
          const yes = compileSelector({ matchLabels: { [key]: l.value } });
          assert.ok(yes(labels), key);
          const no = compileSelector({
            matchExpressions: [{ key, operator: 'NotIn', values: [l.value] }],
          });
          assert.ok(!no(labels), key);
          // Another namespace never matches the namespace requirement.
          const ns = compileSelector({
            matchLabels: { 'k8s:io.kubernetes.pod.namespace': `${namespace}x` },
          });
          assert.ok(!ns(labels));
        },
      ),
    );
  });
});
