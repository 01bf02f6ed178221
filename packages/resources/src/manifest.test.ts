import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ManifestError, ManifestErrorCode } from './errors.js';
import { loadManifests, parseManifests, toJson, toYaml, validateObject } from './manifest.js';
import { storeKey, toStorageVersion, type ResourceObject } from './objects.js';
import { EXAMPLES } from './testing/examples.js';
import { seedManifests } from './testing/shared.js';

/** The field-error part of every error line (after `error: error validating "x" (...): `). */
function errorLines(text: string, source = 'test.yaml'): string[] {
  const r = parseManifests(text, source);
  assert.equal(r.ok, false, 'expected the manifest to be rejected');
  if (r.ok) return [];
  return r.errors
    .flatMap((e) => e.message.split('\n'))
    .map((l) => l.replace(/^error: error \w+ "[^"]*" \([^)]*\): /, ''));
}

function parseOne(text: string): ResourceObject {
  const r = parseManifests(text, 'test.yaml');
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'));
  assert.equal(r.objects.length, 1);
  return r.objects[0] as ResourceObject;
}

function roundTrip(objects: ResourceObject[]): void {
  const viaYaml = parseManifests(toYaml(objects), 'roundtrip.yaml');
  assert.ok(viaYaml.ok, viaYaml.ok ? '' : viaYaml.errors.map((e) => e.message).join('\n'));
  assert.deepEqual(viaYaml.objects, objects);
  const viaJson = parseManifests(toJson(objects), 'roundtrip.json');
  assert.ok(viaJson.ok, viaJson.ok ? '' : viaJson.errors.map((e) => e.message).join('\n'));
  assert.deepEqual(viaJson.objects, objects);
  for (const o of objects) {
    const single = parseManifests(toJson(o), 'single.json');
    assert.ok(single.ok);
    assert.deepEqual(single.objects, [o]);
  }
}

describe('seed manifests', () => {
  const seeds = seedManifests();

  it('finds the seeds', () => {
    assert.ok(seeds.length >= 8, `expected at least 8 seed manifests, found ${seeds.length}`);
  });

  for (const seed of seeds) {
    if (seed.file === '08-envoy-config.yaml') {
      it(`${seed.file} is refused as not supported, naming the kind`, () => {
        const r = parseManifests(seed.text, seed.file);
        assert.equal(r.ok, false);
        if (r.ok) return;
        assert.equal(r.errors.length, 1);
        const [p] = r.errors;
        assert.equal(p?.code, ManifestErrorCode.kindNotSupported);
        assert.equal(p?.kind, 'CiliumEnvoyConfig');
        assert.match(
          p?.message ?? '',
          /^error: error validating "08-envoy-config\.yaml" \(document 1, line 2, CiliumEnvoyConfig "rate-limit-api"\): kind "CiliumEnvoyConfig" \(cilium\.io\/v2\) is not supported by Ciliate: /,
        );
      });
      continue;
    }
    it(`${seed.file} parses and round-trips through toYaml/toJson unchanged`, () => {
      const r = parseManifests(seed.text, seed.file);
      assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'));
      assert.ok(r.objects.length >= 1);
      assert.deepEqual(r.warnings, []);
      roundTrip(r.objects);
    });
  }

  it('keeps what the seeds say', () => {
    const byFile = new Map(seeds.map((s) => [s.file, parseManifests(s.text, s.file)]));
    const pool = byFile.get('05-lb-ippool.yaml');
    assert.ok(pool?.ok);
    assert.deepEqual(pool.objects[0], {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumLoadBalancerIPPool',
      metadata: { name: 'default-pool' },
      spec: { blocks: [{ cidr: '10.0.6.0/24' }], disabled: false },
    });
    const svcs = byFile.get('07-lb-services.yaml');
    assert.ok(svcs?.ok);
    assert.deepEqual(
      svcs.objects.map((o) => storeKey(o)),
      ['Service/media/plex', 'Service/mail/smtp-relay'],
    );
    const fqdn = byFile.get('04-cnp-allow-external-apis-fqdn.yaml');
    assert.ok(fqdn?.ok);
    const cnp = fqdn.objects[0];
    assert.equal(cnp?.kind, 'CiliumNetworkPolicy');
    if (cnp?.kind !== 'CiliumNetworkPolicy') return;
    assert.deepEqual(cnp.spec?.egress?.[1]?.toEndpoints?.[0]?.matchLabels, {
      'k8s:io.kubernetes.pod.namespace': 'kube-system',
      'k8s:k8s-app': 'kube-dns',
    });
  });
});

describe('examples of every supported kind', () => {
  for (const [key, text] of Object.entries(EXAMPLES)) {
    it(`${key} parses and round-trips`, () => {
      const obj = parseOne(text);
      assert.equal(`${obj.apiVersion}/${obj.kind}`, key);
      roundTrip([obj]);
    });
  }

  it('all examples together in one stream keep their order', () => {
    const text = Object.values(EXAMPLES).join('\n---\n');
    const r = parseManifests(text, 'all.yaml');
    assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'));
    assert.deepEqual(
      r.objects.map((o) => `${o.apiVersion}/${o.kind}`),
      Object.keys(EXAMPLES),
    );
  });
});

describe('field errors name the path and the reason', () => {
  const cases: [string, string, string[]][] = [
    [
      'LB pool CIDR with a bad prefix length',
      `apiVersion: cilium.io/v2
kind: CiliumLoadBalancerIPPool
metadata: { name: p }
spec:
  blocks: [{ cidr: 10.0.6.0/24 }, { cidr: 10.0.6.0/33 }]`,
      ['spec.blocks[1].cidr: Invalid value: "10.0.6.0/33": prefix length must be 0-32'],
    ],
    [
      'LB pool block with both cidr and a range',
      `apiVersion: cilium.io/v2
kind: CiliumLoadBalancerIPPool
metadata: { name: p }
spec:
  blocks: [{ cidr: 10.0.6.0/24, start: 10.0.6.1 }]`,
      [
        'spec.blocks[0]: Invalid value: "object": a block has either `cidr` or `start`/`stop`, not both',
      ],
    ],
    [
      'LB pool range running backwards and mixing families',
      `apiVersion: cilium.io/v2
kind: CiliumLoadBalancerIPPool
metadata: { name: p }
spec:
  blocks: [{ start: 10.0.0.9, stop: 10.0.0.1 }, { start: 10.0.0.1, stop: "::1" }, { stop: 10.0.0.1 }, {}]`,
      [
        'spec.blocks[0].stop: Invalid value: "10.0.0.1": must not be lower than `start`',
        'spec.blocks[1].stop: Invalid value: "::1": must be of the same IP family as `start`',
        'spec.blocks[2].start: Required value: must be set when `stop` is set',
        'spec.blocks[3].cidr: Required value: a block needs `cidr`, or `start` (and optionally `stop`)',
      ],
    ],
    [
      'unknown fields in spec and metadata',
      `apiVersion: cilium.io/v2
kind: CiliumLoadBalancerIPPool
metadata: { name: p, labelz: { a: b } }
spec:
  blocks: [{ cidr: 10.0.6.0/24, cird: x }]
  foo: 1`,
      [
        'unknown field "metadata.labelz"',
        'unknown field "spec.blocks[0].cird"',
        'unknown field "spec.foo"',
      ],
    ],
    [
      'a CNP port written as a number',
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: p, namespace: n }
spec:
  endpointSelector: {}
  ingress:
    - toPorts: [{ ports: [{ port: 8080, protocol: TCP }] }]`,
      [
        'spec.ingress[0].toPorts[0].ports[0].port: Invalid value: 8080: must be of type string, not integer (quote the value in YAML)',
      ],
    ],
    [
      'CNP protocol, entity and selector operator outside their enums',
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: p, namespace: n }
spec:
  endpointSelector:
    matchExpressions: [{ key: app, operator: Equals, values: [a] }]
  egress:
    - toEntities: [internet]
      toPorts: [{ ports: [{ port: "53", protocol: ICMP }] }]`,
      [
        'spec.endpointSelector.matchExpressions[0].operator: Unsupported value: "Equals": supported values: "In", "NotIn", "Exists", "DoesNotExist"',
        'spec.egress[0].toEntities[0]: Unsupported value: "internet": supported values: "all", "world", "cluster", "host", "init", "ingress", "unmanaged", "remote-node", "health", "none", "kube-apiserver", "world-ipv4", "world-ipv6"',
        'spec.egress[0].toPorts[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP", "ANY"',
      ],
    ],
    [
      'selector requirements with missing or forbidden values and bad keys',
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: p, namespace: n }
spec:
  endpointSelector:
    matchLabels: { "bad key": x, "k8s:ok": "not ok!" }
    matchExpressions:
      - { key: a, operator: In }
      - { key: b, operator: Exists, values: [x] }`,
      [
        "spec.endpointSelector.matchLabels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        "spec.endpointSelector.matchLabels: Invalid value: \"not ok!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        "spec.endpointSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        "spec.endpointSelector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
      ],
    ],
    [
      'CNP rule semantics: selector exclusivity, L3 combinations, DNS on ingress',
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: p, namespace: n }
specs:
  - endpointSelector: {}
    nodeSelector: {}
  - nodeSelector: {}
    egress:
      - toEndpoints: [{}]
        toFQDNs: [{ matchName: example.com }]
  - endpointSelector: {}
    ingress:
      - toPorts: [{ ports: [{ port: "53" }], rules: { dns: [{ matchName: x.com }] } }]
    egress:
      - toFQDNs: [{ matchName: a.com, matchPattern: "*.a.com" }, {}]`,
      [
        'specs[0].nodeSelector: Forbidden: `endpointSelector` and `nodeSelector` are mutually exclusive',
        'specs[1].egress[0]: Invalid value: "array": combining toEndpoints and toFQDNs is not supported',
        'specs[1].nodeSelector: Forbidden: only a CiliumClusterwideNetworkPolicy may select nodes',
        'specs[2].ingress[0].toPorts[0].rules.dns: Forbidden: DNS rules are only allowed on egress',
        'specs[2].egress[0].toFQDNs[0]: Invalid value: "object": only one of `matchName` or `matchPattern` may be set',
        'specs[2].egress[0].toFQDNs[1]: Required value: one of `matchName` or `matchPattern` must be set',
      ],
    ],
    [
      'a policy with neither spec nor specs',
      `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: { name: p }`,
      ['spec: Required value: a policy needs `spec` or `specs` (empty policy)'],
    ],
    [
      'Service ports, type and names',
      `apiVersion: v1
kind: Service
metadata: { name: 9web, namespace: n }
spec:
  type: Balanced
  ports:
    - { port: 0 }
    - { port: 80, targetPort: 70000, nodePort: 30080 }`,
      [
        "metadata.name: Invalid value: \"9web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        'spec.type: Unsupported value: "Balanced": supported values: "ClusterIP", "NodePort", "LoadBalancer", "ExternalName"',
        'spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive',
        'spec.ports[0].name: Required value',
        'spec.ports[1].name: Required value',
        'spec.ports[1].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive',
      ],
    ],
    [
      'metadata name required and label syntax',
      `apiVersion: v1
kind: Namespace
metadata:
  labels: { "example.com/": x }`,
      [
        'metadata.labels: Invalid value: "example.com/": name part must be non-empty',
        'metadata.name: Required value: name is required',
      ],
    ],
    [
      'NetworkPolicy ipBlock, endPort and peers',
      `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: p, namespace: n }
spec:
  podSelector: {}
  ingress:
    - from:
        - ipBlock: { cidr: 10.0.0.0/8, except: [11.0.0.0/8] }
          podSelector: {}
        - {}
      ports:
        - { port: http, endPort: 90 }
        - { port: 100, endPort: 90 }`,
      [
        'spec.ingress[0].from[0]: Forbidden: may not specify more than 1 peer type when ipBlock is set',
        'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "11.0.0.0/8": must be a strict subset of `cidr`',
        'spec.ingress[0].from[1]: Required value: must specify a peer',
        'spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric',
        'spec.ingress[0].ports[1].endPort: Invalid value: 90: must be greater than or equal to `port`',
      ],
    ],
    [
      'BGP peer config timers',
      `apiVersion: cilium.io/v2
kind: CiliumBGPPeerConfig
metadata: { name: p }
spec:
  timers: { holdTimeSeconds: 9, keepAliveTimeSeconds: 30 }
  ebgpMultihop: 0`,
      [
        'spec.ebgpMultihop: Invalid value: 0: must be greater than or equal to 1',
        'spec.timers.keepAliveTimeSeconds: Invalid value: 30: can not be larger than `holdTimeSeconds`',
      ],
    ],
    [
      'BGP cluster config with duplicate peer names and a v2alpha1-only field',
      `apiVersion: cilium.io/v2
kind: CiliumBGPClusterConfig
metadata: { name: c }
spec:
  bgpInstances:
    - name: i
      localASN: 4294967296
      peers:
        - { name: a, peerAddress: 10.0.0.1, peerConfigRef: { name: x, kind: CiliumBGPPeerConfig } }
        - { name: a, peerAddress: 10.0.0.300 }`,
      [
        'spec.bgpInstances[0].localASN: Invalid value: 4294967296: must be less than or equal to 4294967295',
        'unknown field "spec.bgpInstances[0].peers[0].peerConfigRef.kind"',
        'spec.bgpInstances[0].peers[1].peerAddress: Invalid value: "10.0.0.300": must be a valid IPv4 or IPv6 address',
        'spec.bgpInstances[0].peers[1].name: Duplicate value: "a"',
      ],
    ],
    [
      'CiliumIdentity names are numbers',
      `apiVersion: cilium.io/v2
kind: CiliumIdentity
metadata: { name: web }
security-labels: { app: web }`,
      [
        'metadata.name: Invalid value: "web": must be the numeric security identity (a decimal number)',
        'security-labels: Invalid value: "app": keys must be of the form "source:key"',
      ],
    ],
    [
      'wrong types everywhere',
      `apiVersion: cilium.io/v2alpha1
kind: CiliumL2AnnouncementPolicy
metadata: { name: l2, labels: [a] }
spec:
  interfaces: "eth0"
  externalIPs: "yes"`,
      [
        'metadata.labels: Invalid value: "array": must be of type object, not array',
        'spec.interfaces: Invalid value: "eth0": must be of type array, not string',
        'spec.externalIPs: Invalid value: "yes": must be of type boolean, not string',
      ],
    ],
  ];

  for (const [title, text, expected] of cases) {
    it(title, () => assert.deepEqual(errorLines(text), expected));
  }
});

describe('documents, kinds and versions', () => {
  it('reports every invalid document with its number and line, and returns the valid ones', () => {
    const text = `# a comment-only preamble
---
apiVersion: v1
kind: Namespace
metadata: { name: good }
---
---
apiVersion: v1
kind: Namespace
metadata: { name: Bad_Name }
---
apiVersion: cilium.io/v2
kind: CiliumLoadBalancerIPPool
metadata: { name: pool }
spec: { blocks: [{ cidr: nope }] }
`;
    const r = parseManifests(text, 'multi.yaml');
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(
      r.objects.map((o) => o.metadata.name),
      ['good'],
    );
    assert.deepEqual(
      r.errors.map((e) => [e.document, e.line, e.kind, e.name]),
      [
        [2, 8, 'Namespace', 'Bad_Name'],
        [3, 12, 'CiliumLoadBalancerIPPool', 'pool'],
      ],
    );
    assert.equal(
      r.errors[1]?.message,
      'error: error validating "multi.yaml" (document 3, line 12, CiliumLoadBalancerIPPool "pool"): spec.blocks[0].cidr: Invalid value: "nope": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
    );
  });

  it('refuses unknown kinds, unsupported kinds and unserved versions by name', () => {
    const text = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideEnvoyConfig
metadata: { name: mesh }
---
apiVersion: cilium.io/v1
kind: CiliumNetworkPolicy
metadata: { name: old, namespace: shop }
---
apiVersion: v1
kind: Endpoints
metadata: { name: web, namespace: shop }
---
metadata: { name: typeless }
`;
    const r = parseManifests(text, 'kinds.yaml');
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(
      r.errors.map((e) => e.code),
      [
        ManifestErrorCode.kindNotSupported,
        ManifestErrorCode.kindNotSupported,
        ManifestErrorCode.versionNotServed,
        ManifestErrorCode.kindNotSupported,
        ManifestErrorCode.missingType,
      ],
    );
    const lines = errorLines(text, 'kinds.yaml');
    assert.equal(
      lines[0],
      'kind "Deployment" in version "apps/v1" is not supported by Ciliate (not a kind it knows)',
    );
    assert.match(
      lines[1] ?? '',
      /^kind "CiliumClusterwideEnvoyConfig" \(cilium\.io\/v2\) is not supported by Ciliate: /,
    );
    assert.equal(
      lines[2],
      'no matches for kind "CiliumNetworkPolicy" in version "cilium.io/v1" (served: cilium.io/v2)',
    );
    assert.match(lines[3] ?? '', /EndpointSlice/);
    assert.deepEqual(lines.slice(4), ['apiVersion: Required value', 'kind: Required value']);
  });

  it('reports YAML syntax errors with line and column', () => {
    const r = parseManifests(
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n',
      'dup.yaml',
    );
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.errors[0]?.code, ManifestErrorCode.syntax);
    assert.match(
      r.errors[0]?.message ?? '',
      /^error: error parsing "dup\.yaml" \(document 1, line 5, column 3\): Map keys must be unique/,
    );

    const bad = parseManifests('a: [1, 2\n', 'b.yaml');
    assert.equal(bad.ok, false);
    if (!bad.ok) assert.equal(bad.errors[0]?.code, ManifestErrorCode.syntax);
  });

  it('refuses documents that are not objects', () => {
    const lines = errorLines('- a\n- b\n---\n42\n');
    assert.deepEqual(lines, [
      'a manifest must be an object with apiVersion and kind, not a list',
      'a manifest must be an object with apiVersion and kind, not a number',
    ]);
  });

  it('expands kind: List and typed lists, numbering items', () => {
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } },
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'B' } },
      ],
    };
    const r = parseManifests(JSON.stringify(list), 'list.json');
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(
      r.objects.map((o) => o.metadata.name),
      ['a'],
    );
    assert.equal(r.errors[0]?.item, 1);
    assert.match(r.errors[0]?.message ?? '', /\(document 1 items\[1\], line 1, Namespace "B"\)/);

    const typed = parseOne(`apiVersion: v1
kind: ServiceList
items:
  - metadata: { name: web, namespace: shop }
    spec: { ports: [{ port: 80 }] }
`);
    assert.equal(typed.kind, 'Service');
    assert.equal(storeKey(typed), 'Service/shop/web');
  });

  it('reads JSON documents', () => {
    const obj = parseOne(
      '{"apiVersion":"cilium.io/v2","kind":"CiliumNode","metadata":{"name":"n1"},"spec":{}}',
    );
    assert.equal(storeKey(obj), 'CiliumNode//n1');
  });

  it('places namespaces like the API server: default for namespaced kinds, none for cluster-scoped', () => {
    const np = parseOne(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: p }
spec: { podSelector: {} }`);
    assert.equal(np.metadata.namespace, 'default');
    const r = parseManifests(
      `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: p }
spec: { podSelector: {} }`,
      'x',
      { defaultNamespace: 'shop' },
    );
    assert.ok(r.ok);
    assert.equal(r.objects[0]?.metadata.namespace, 'shop');
    const cn = parseOne(`apiVersion: cilium.io/v2
kind: CiliumNode
metadata: { name: n1, namespace: shop }
spec: {}`);
    assert.equal(cn.metadata.namespace, undefined);
    assert.deepEqual(Object.keys(np.metadata), ['name', 'namespace']);
  });

  it('applies the API server defaults', () => {
    const svc = parseOne(`apiVersion: v1
kind: Service
metadata: { name: s }
spec:
  ports: [{ name: a, port: 53, protocol: UDP }, { name: b, port: 80 }]
  sessionAffinity: ClientIP`);
    assert.equal(svc.kind, 'Service');
    if (svc.kind !== 'Service') return;
    assert.equal(svc.spec.type, 'ClusterIP');
    assert.deepEqual(
      svc.spec.ports?.map((p) => [p.protocol, p.targetPort]),
      [
        ['UDP', 53],
        ['TCP', 80],
      ],
    );
    assert.equal(svc.spec.internalTrafficPolicy, 'Cluster');
    assert.equal(svc.spec.externalTrafficPolicy, undefined);
    assert.equal(svc.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds, 10800);

    const np = parseOne(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: p }
spec: { podSelector: {}, egress: [{}] }`);
    assert.equal(np.kind, 'NetworkPolicy');
    if (np.kind === 'NetworkPolicy') assert.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress']);

    const peer = parseOne(`apiVersion: cilium.io/v2
kind: CiliumBGPPeerConfig
metadata: { name: p }
spec: { timers: {}, transport: {}, gracefulRestart: { enabled: true } }`);
    assert.deepEqual((peer as { spec: unknown }).spec, {
      transport: { peerPort: 179 },
      timers: { connectRetryTimeSeconds: 120, holdTimeSeconds: 90, keepAliveTimeSeconds: 30 },
      gracefulRestart: { enabled: true, restartTimeSeconds: 120 },
      ebgpMultihop: 1,
    });

    const pod = parseOne(`apiVersion: v1
kind: Pod
metadata: { name: p }
spec: { containers: [{ name: c, ports: [{ containerPort: 80 }] }] }`);
    assert.equal(pod.kind, 'Pod');
    if (pod.kind !== 'Pod') return;
    assert.equal(pod.spec.serviceAccountName, 'default');
    assert.equal(pod.spec.containers[0]?.ports?.[0]?.protocol, 'TCP');

    const ns = parseOne('apiVersion: v1\nkind: Namespace\nmetadata: { name: shop }');
    assert.deepEqual(ns.metadata.labels, { 'kubernetes.io/metadata.name': 'shop' });
  });

  it('warns about deprecated versions and converts them to the storage version', () => {
    const r = parseManifests(
      EXAMPLES['cilium.io/v2alpha1/CiliumBGPClusterConfig'] ?? '',
      'bgp.yaml',
    );
    assert.ok(r.ok);
    assert.match(
      r.warnings[0] ?? '',
      /^Warning: "bgp\.yaml" \(document 1, line 2, CiliumBGPClusterConfig "tor-old"\): cilium\.io\/v2alpha1 CiliumBGPClusterConfig is deprecated/,
    );
    const obj = r.objects[0];
    assert.ok(obj);
    const peer = (obj as { spec: { bgpInstances: { peers: { peerConfigRef?: unknown }[] }[] } })
      .spec.bgpInstances[0]?.peers[0];
    assert.deepEqual(peer?.peerConfigRef, {
      group: 'cilium.io',
      kind: 'CiliumBGPPeerConfig',
      name: 'cilium-peer',
    });
    const stored = toStorageVersion(obj);
    assert.equal(stored.apiVersion, 'cilium.io/v2');
    const storedPeer = (
      stored as { spec: { bgpInstances: { peers: { peerConfigRef?: unknown }[] }[] } }
    ).spec.bgpInstances[0]?.peers[0];
    assert.deepEqual(storedPeer?.peerConfigRef, { name: 'cilium-peer' });
    // The converted object is a valid v2 object.
    const again = validateObject(stored);
    assert.ok(again.ok, again.ok ? '' : again.problem.message);

    const pool = parseOne(EXAMPLES['cilium.io/v2alpha1/CiliumLoadBalancerIPPool'] ?? '');
    assert.equal(toStorageVersion(pool).apiVersion, 'cilium.io/v2');
  });

  it('honours --validate=warn and ignore for unknown fields, still rejecting real errors', () => {
    const text = `apiVersion: v1
kind: Namespace
metadata: { name: shop, extra: 1 }
spec: { finalizers: [kubernetes], other: true }`;
    const warn = parseManifests(text, 'w.yaml', { fieldValidation: 'Warn' });
    assert.ok(warn.ok);
    assert.equal(warn.warnings.length, 2);
    assert.match(warn.warnings[0] ?? '', /unknown field "metadata\.extra"$/);
    assert.deepEqual((warn.objects[0] as { spec: unknown }).spec, { finalizers: ['kubernetes'] });
    const ignore = parseManifests(text, 'w.yaml', { fieldValidation: 'Ignore' });
    assert.ok(ignore.ok);
    assert.deepEqual(ignore.warnings, []);
    const stillBad = parseManifests(text.replace('name: shop', 'name: Shop'), 'w.yaml', {
      fieldValidation: 'Ignore',
    });
    assert.equal(stillBad.ok, false);
  });

  it('loadManifests throws one ManifestError carrying every problem', () => {
    assert.throws(
      () =>
        loadManifests('apiVersion: v1\nkind: Namespace\nmetadata: {}\n---\nkind: X\n', 'f.yaml'),
      (e: unknown) => {
        assert.ok(e instanceof ManifestError);
        assert.equal(e.problems.length, 2);
        assert.equal(e.code, ManifestErrorCode.invalid);
        assert.equal(e.message.split('\n').length, 2);
        return true;
      },
    );
    assert.deepEqual(loadManifests(''), []);
    assert.deepEqual(loadManifests('# nothing here\n---\n'), []);
  });

  it('writes YAML that kubectl (YAML 1.1) reads the same way', () => {
    const ns = parseOne(`apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: { enabled: "yes", mode: "on", version: "1.10", octal: "0755" }`);
    const out = toYaml(ns);
    assert.match(out, /enabled: "yes"/);
    assert.match(out, /mode: "on"/);
    assert.match(out, /octal: "0755"/);
    roundTrip([ns]);
  });

  it('accepts objects as the API server returns them (kubectl get -o yaml)', () => {
    const text = `apiVersion: v1
kind: List
metadata: { resourceVersion: "" }
items:
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: web-x7k2p
      namespace: shop
      generateName: web-
      uid: 0b6c7f0e-1111-2222-3333-444455556666
      resourceVersion: "1234"
      generation: 3
      creationTimestamp: "2025-01-01T00:00:00Z"
      labels: { kubernetes.io/service-name: web, endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io }
      ownerReferences:
        - { apiVersion: v1, kind: Service, name: web, uid: 0b6c7f0e-aaaa, controller: true, blockOwnerDeletion: true }
      managedFields:
        - { manager: kube-controller-manager, operation: Update, apiVersion: discovery.k8s.io/v1, time: "2025-01-01T00:00:00Z", fieldsType: FieldsV1, fieldsV1: { "f:addressType": {} } }
    addressType: IPv4
    endpoints: null
    ports: null
  - apiVersion: v1
    kind: Service
    metadata: { name: web, namespace: shop, creationTimestamp: null }
    spec:
      clusterIP: 10.96.12.7
      clusterIPs: [10.96.12.7]
      internalTrafficPolicy: Cluster
      ipFamilies: [IPv4]
      ipFamilyPolicy: SingleStack
      ports: [{ name: http, port: 80, protocol: TCP, targetPort: 8080 }]
      selector: { app: web }
      sessionAffinity: None
      type: ClusterIP
    status: { loadBalancer: {} }
`;
    const r = parseManifests(text, 'get.yaml');
    assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'));
    assert.deepEqual(
      r.objects.map((o) => storeKey(o)),
      ['EndpointSlice/shop/web-x7k2p', 'Service/shop/web'],
    );
    roundTrip(r.objects);
  });

  it('validateObject never throws, whatever it is given', () => {
    for (const v of [
      undefined,
      null,
      1,
      'x',
      [],
      {},
      { kind: 1 },
      { apiVersion: 'v1', kind: 'Pod', metadata: 'x' },
    ]) {
      const r = validateObject(v);
      assert.equal(r.ok, false);
    }
  });
});
