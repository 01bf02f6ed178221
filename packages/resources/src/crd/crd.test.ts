import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import YAML from 'yaml';
import { z } from 'zod';

import { parseManifests } from '../manifest.js';
import { kindDescriptor, splitApiVersion, supportedKinds } from '../registry.js';
import { EXAMPLES } from '../testing/examples.js';
import { openApiErrors } from '../testing/openapi.js';
import { seedManifests } from '../testing/shared.js';
import { CRD_GENERATE_COMMAND, generateCrds, openApiSchemaFor } from './generate.js';
import { crdDir } from './paths.js';
import { structuralViolations, toStructuralSchema, CrdSchemaError } from './structural.js';

describe('checked-in CRDs (golden files)', () => {
  const generated = generateCrds();
  const dir = crdDir();

  for (const g of generated) {
    it(`infra/crds/${g.fileName} is what the generator makes`, () => {
      const file = join(dir, g.fileName);
      assert.ok(
        existsSync(file),
        `infra/crds/${g.fileName} is missing; run \`${CRD_GENERATE_COMMAND}\` and commit the result`,
      );
      const current = readFileSync(file, 'utf8');
      assert.ok(
        current === g.yaml,
        `infra/crds/${g.fileName} differs from what the schemas generate; run \`${CRD_GENERATE_COMMAND}\` and commit the result`,
      );
    });
  }

  it('has no CRD files for kinds that are gone', () => {
    const wanted = new Set(generated.map((g) => g.fileName));
    const stale = readdirSync(dir).filter((f) => f.endsWith('.cilium.io.yaml') && !wanted.has(f));
    assert.deepEqual(stale, [], `stale CRD files; run \`${CRD_GENERATE_COMMAND}\``);
  });
});

describe('generated CRDs', () => {
  const generated = generateCrds();

  it("cover exactly the cilium.io kinds, with Cilium's names and scopes", () => {
    const summary = generated.map((g) => {
      const s = g.crd.spec;
      return [
        g.crd.metadata.name,
        s.scope,
        (s.names.shortNames ?? []).join(','),
        s.versions
          .map(
            (v) =>
              `${v.name}${v.storage ? '*' : ''}${v.deprecated ? '(deprecated)' : ''}${v.subresources ? '+status' : ''}`,
          )
          .join(','),
      ];
    });
    assert.deepEqual(summary, [
      ['ciliumnetworkpolicies.cilium.io', 'Namespaced', 'cnp,ciliumnp', 'v2*+status'],
      ['ciliumclusterwidenetworkpolicies.cilium.io', 'Cluster', 'ccnp', 'v2*+status'],
      [
        'ciliumloadbalancerippools.cilium.io',
        'Cluster',
        'ippools,ippool,lbippool,lbippools',
        'v2*+status,v2alpha1(deprecated)+status',
      ],
      ['ciliuml2announcementpolicies.cilium.io', 'Cluster', 'l2announcement', 'v2alpha1*+status'],
      [
        'ciliumbgpclusterconfigs.cilium.io',
        'Cluster',
        'cbgpcluster',
        'v2*+status,v2alpha1(deprecated)+status',
      ],
      [
        'ciliumbgppeerconfigs.cilium.io',
        'Cluster',
        'cbgppeer',
        'v2*+status,v2alpha1(deprecated)+status',
      ],
      ['ciliumbgpadvertisements.cilium.io', 'Cluster', 'cbgpadvert', 'v2*,v2alpha1(deprecated)'],
      ['ciliumnodes.cilium.io', 'Cluster', 'cn,ciliumn', 'v2*+status'],
      ['ciliumidentities.cilium.io', 'Cluster', 'ciliumid', 'v2*'],
      ['ciliumendpoints.cilium.io', 'Namespaced', 'cep,ciliumep', 'v2*'],
    ]);
    for (const g of generated)
      assert.ok(g.crd.spec.names.categories?.includes('cilium'), g.fileName);
  });

  it('are structural schemas throughout', () => {
    for (const g of generated) {
      for (const v of g.crd.spec.versions) {
        assert.deepEqual(
          structuralViolations(v.schema.openAPIV3Schema),
          [],
          `${g.fileName} ${v.name}`,
        );
      }
    }
  });

  it('parse back as YAML to the same object', () => {
    for (const g of generated)
      assert.deepEqual(YAML.parse(g.yaml), JSON.parse(JSON.stringify(g.crd)) as unknown);
  });

  it('accept every example and seed that the parser accepts (a cluster takes what ciliate apply takes)', () => {
    const texts = [...Object.values(EXAMPLES), ...seedManifests().map((s) => s.text)];
    let checked = 0;
    for (const text of texts) {
      const r = parseManifests(text, 'x.yaml');
      for (const obj of r.objects) {
        const kind = kindDescriptor(obj.kind);
        if (!kind?.crd) continue;
        const schema = openApiSchemaFor(kind, splitApiVersion(obj.apiVersion).version);
        assert.deepEqual(
          openApiErrors(schema, JSON.parse(JSON.stringify(obj))),
          [],
          `${obj.kind} ${obj.metadata.name}`,
        );
        checked++;
      }
    }
    assert.ok(checked >= 15, `checked ${checked} objects`);
  });

  it('reject the structural mistakes the parser rejects', () => {
    const bad: [string, unknown][] = [
      [
        'CiliumLoadBalancerIPPool',
        {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumLoadBalancerIPPool',
          metadata: { name: 'p' },
          spec: { blocks: [{ cidr: '10.0.0.0/8', start: '10.0.0.1' }] },
        },
      ],
      [
        'CiliumLoadBalancerIPPool',
        {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumLoadBalancerIPPool',
          metadata: { name: 'p' },
          spec: { foo: 1 },
        },
      ],
      [
        'CiliumNetworkPolicy',
        {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumNetworkPolicy',
          metadata: { name: 'p' },
          spec: { endpointSelector: {}, nodeSelector: {} },
        },
      ],
      [
        'CiliumNetworkPolicy',
        {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumNetworkPolicy',
          metadata: { name: 'p' },
          spec: { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: 80 }] }] }] },
        },
      ],
      [
        'CiliumBGPPeerConfig',
        {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumBGPPeerConfig',
          metadata: { name: 'p' },
          spec: { ebgpMultihop: 300 },
        },
      ],
      [
        'CiliumBGPClusterConfig',
        {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumBGPClusterConfig',
          metadata: { name: 'p' },
          spec: { bgpInstances: [] },
        },
      ],
    ];
    for (const [kindName, obj] of bad) {
      const kind = kindDescriptor(kindName);
      assert.ok(kind);
      assert.ok(openApiErrors(openApiSchemaFor(kind, 'v2'), obj).length > 0, JSON.stringify(obj));
      assert.equal(parseManifests(JSON.stringify(obj)).ok, false);
    }
  });

  it("carry printer columns, defaults and int-or-string as Cilium's do", () => {
    const pools = generated.find((g) => g.fileName === 'ciliumloadbalancerippools.cilium.io.yaml');
    const v2 = pools?.crd.spec.versions[0];
    assert.deepEqual(
      v2?.additionalPrinterColumns?.map((c) => c.name),
      ['Disabled', 'Conflicting', 'IPs Available', 'Age'],
    );
    const spec = v2?.schema.openAPIV3Schema.properties?.spec;
    assert.equal(spec?.properties?.disabled?.default, false);
    assert.deepEqual(v2?.schema.openAPIV3Schema.required, ['metadata', 'spec']);
    const peer = kindDescriptor('CiliumBGPPeerConfig');
    assert.ok(peer);
    const timers = openApiSchemaFor(peer, 'v2').properties?.spec?.properties?.timers;
    assert.equal(timers?.properties?.holdTimeSeconds?.default, 90);
    assert.equal(timers?.properties?.holdTimeSeconds?.format, 'int32');
    const cnp = kindDescriptor('CiliumNetworkPolicy');
    assert.ok(cnp);
    const icmpType = openApiSchemaFor(cnp, 'v2').properties?.spec?.properties?.ingress?.items
      ?.properties?.icmps?.items?.properties?.fields?.items?.properties?.type;
    assert.equal(icmpType?.['x-kubernetes-int-or-string'], true);
    assert.equal(icmpType?.type, undefined);
  });
});

describe('toStructuralSchema', () => {
  it('turns zod constructs into their structural forms', () => {
    const schema = z.strictObject({
      apiVersion: z.string(),
      kind: z.string(),
      metadata: z.strictObject({ name: z.string() }),
      spec: z.strictObject({
        nullable: z.string().nullable().optional(),
        choice: z.union([z.literal('a'), z.literal('b')]),
        record: z.record(z.string(), z.int()),
        loose: z.looseObject({ a: z.string().optional() }),
        any: z.unknown(),
        bounded: z.number().gt(0).lt(1),
      }),
    });
    const s = toStructuralSchema(z.toJSONSchema(schema, { io: 'input' }));
    assert.deepEqual(structuralViolations(s), []);
    const spec = s.properties?.spec?.properties;
    assert.deepEqual(spec?.nullable, { type: 'string', nullable: true });
    assert.deepEqual(spec?.choice, { type: 'string', enum: ['a', 'b'] });
    assert.deepEqual(spec?.record, { type: 'object', additionalProperties: { type: 'integer' } });
    assert.equal(spec?.loose?.['x-kubernetes-preserve-unknown-fields'], true);
    assert.deepEqual(spec?.any, { 'x-kubernetes-preserve-unknown-fields': true });
    assert.deepEqual(spec?.bounded, {
      type: 'number',
      minimum: 0,
      exclusiveMinimum: true,
      maximum: 1,
      exclusiveMaximum: true,
    });
    assert.deepEqual(s.properties?.metadata, { type: 'object' });
    assert.deepEqual(s.required, ['metadata', 'spec']);
  });

  it('refuses what has no structural form instead of emitting a CRD the API server rejects', () => {
    const union = z.strictObject({
      spec: z.union([z.strictObject({ a: z.string() }), z.strictObject({ b: z.int() })]),
    });
    assert.throws(() => toStructuralSchema(z.toJSONSchema(union, { io: 'input' })), CrdSchemaError);
    const tuple = z.strictObject({ spec: z.tuple([z.string(), z.int()]) });
    assert.throws(() => toStructuralSchema(z.toJSONSchema(tuple, { io: 'input' })), CrdSchemaError);
  });

  it('every CRD kind in the registry generates', () => {
    for (const k of supportedKinds().filter((x) => x.crd)) {
      for (const v of k.versions)
        assert.doesNotThrow(() => openApiSchemaFor(k, v.name), `${k.kind} ${v.name}`);
    }
  });
});
