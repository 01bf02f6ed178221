import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { formatLabel, labelsFromMap, parseLabel, parseSourcedKey, type Label } from './labels.js';
import {
  compileSelector,
  selectorIsEmpty,
  selectorMatches,
  selectorToString,
  type LabelSelector,
  type LabelSelectorRequirement,
} from './selector.js';

// Small alphabets so that generated selectors and labels actually meet.
const KEYS = ['app', 'tier', 'env', 'io.kubernetes.pod.namespace', 'example.com/team'] as const;
const VALUES = ['a', 'b', 'c', ''] as const;
const SOURCES = ['k8s', 'reserved', 'container', 'unspec', 'cidr'] as const;

const keyArb = fc.constantFrom(...KEYS);
const valueArb = fc.constantFrom(...VALUES);
const sourceArb = fc.constantFrom(...SOURCES);
const selectorKeyArb = fc.oneof(
  keyArb,
  fc.tuple(fc.constantFrom('any', ...SOURCES), keyArb).map(([s, k]) => `${s}:${k}`),
);

const requirementArb: fc.Arbitrary<LabelSelectorRequirement> = fc.oneof(
  fc.record({
    key: selectorKeyArb,
    operator: fc.constantFrom('In' as const, 'NotIn' as const),
    values: fc.uniqueArray(valueArb, { minLength: 1, maxLength: 3 }),
  }),
  fc.record({
    key: selectorKeyArb,
    operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const),
  }),
);

const selectorArb: fc.Arbitrary<LabelSelector> = fc.record(
  {
    matchLabels: fc.dictionary(selectorKeyArb, valueArb, { maxKeys: 3 }),
    matchExpressions: fc.array(requirementArb, { maxLength: 3 }),
  },
  { requiredKeys: [] },
);

/** Labels with explicit sources, as a map with `source:key` keys. */
const sourcedLabelsArb = fc.dictionary(
  fc.tuple(sourceArb, keyArb).map(([s, k]) => `${s}:${k}`),
  valueArb,
  { maxKeys: 6 },
);

/** Plain Kubernetes labels (no sources). */
const plainLabelsArb = fc.dictionary(keyArb, valueArb, { maxKeys: 5 });

const labelsArb = fc.oneof(sourcedLabelsArb, plainLabelsArb);

/** Kubernetes' own semantics (k8s.io/apimachinery/pkg/labels), for labels without sources. */
function k8sReference(sel: LabelSelector, labels: Record<string, string>): boolean {
  const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(labels, k);
  for (const [k, v] of Object.entries(sel.matchLabels ?? {}))
    if (!has(k) || labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const vals = e.values ?? [];
    switch (e.operator) {
      case 'In':
        if (!has(e.key) || !vals.includes(labels[e.key] ?? '')) return false;
        break;
      case 'NotIn':
        if (has(e.key) && vals.includes(labels[e.key] ?? '')) return false;
        break;
      case 'Exists':
        if (!has(e.key)) return false;
        break;
      case 'DoesNotExist':
        if (has(e.key)) return false;
        break;
    }
  }
  return true;
}

const plainSelectorArb: fc.Arbitrary<LabelSelector> = fc.record(
  {
    matchLabels: fc.dictionary(keyArb, valueArb, { maxKeys: 3 }),
    matchExpressions: fc.array(
      fc.oneof(
        fc.record({
          key: keyArb,
          operator: fc.constantFrom('In' as const, 'NotIn' as const),
          values: fc.uniqueArray(valueArb, { minLength: 1, maxLength: 3 }),
        }),
        fc.record({
          key: keyArb,
          operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const),
        }),
      ),
      { maxLength: 3 },
    ),
  },
  { requiredKeys: [] },
);

describe('selectorMatches: properties', () => {
  it('the empty selector matches every label set', () => {
    fc.assert(
      fc.property(labelsArb, (labels) => {
        assert.ok(selectorMatches({}, labels));
        assert.ok(selectorMatches({ matchLabels: {}, matchExpressions: [] }, labels));
      }),
    );
  });

  it('agrees with Kubernetes semantics on labels without sources', () => {
    fc.assert(
      fc.property(plainSelectorArb, plainLabelsArb, (sel, labels) => {
        assert.equal(selectorMatches(sel, labels), k8sReference(sel, labels));
      }),
    );
  });

  it('In and NotIn over the same key and values are complements', () => {
    fc.assert(
      fc.property(
        selectorKeyArb,
        fc.uniqueArray(valueArb, { minLength: 1 }),
        labelsArb,
        (key, values, labels) => {
          const inSel = selectorMatches(
            { matchExpressions: [{ key, operator: 'In', values }] },
            labels,
          );
          const notInSel = selectorMatches(
            { matchExpressions: [{ key, operator: 'NotIn', values }] },
            labels,
          );
          assert.notEqual(inSel, notInSel);
        },
      ),
    );
  });

  it('Exists and DoesNotExist are complements', () => {
    fc.assert(
      fc.property(selectorKeyArb, labelsArb, (key, labels) => {
        const exists = selectorMatches({ matchExpressions: [{ key, operator: 'Exists' }] }, labels);
        const absent = selectorMatches(
          { matchExpressions: [{ key, operator: 'DoesNotExist' }] },
          labels,
        );
        assert.notEqual(exists, absent);
      }),
    );
  });

  it('NotIn holds when the key is absent; In does not', () => {
    fc.assert(
      fc.property(
        keyArb,
        fc.uniqueArray(valueArb, { minLength: 1 }),
        plainLabelsArb,
        (key, values, labels) => {
          const without = { ...labels };
          delete without[key];
          assert.ok(
            selectorMatches({ matchExpressions: [{ key, operator: 'NotIn', values }] }, without),
          );
          assert.ok(
            !selectorMatches({ matchExpressions: [{ key, operator: 'In', values }] }, without),
          );
        },
      ),
    );
  });

  it('matchLabels k: v is In(k, [v])', () => {
    fc.assert(
      fc.property(selectorKeyArb, valueArb, labelsArb, (key, value, labels) => {
        assert.equal(
          selectorMatches({ matchLabels: { [key]: value } }, labels),
          selectorMatches({ matchExpressions: [{ key, operator: 'In', values: [value] }] }, labels),
        );
      }),
    );
  });

  it('requirements are ANDed', () => {
    fc.assert(
      fc.property(selectorArb, selectorArb, labelsArb, (a, b, labels) => {
        const both: LabelSelector = {
          matchLabels: { ...(a.matchLabels ?? {}), ...(b.matchLabels ?? {}) },
          matchExpressions: [...(a.matchExpressions ?? []), ...(b.matchExpressions ?? [])],
        };
        // Merging matchLabels can drop a's value for a key b also sets; only compare without overlap.
        fc.pre(Object.keys(a.matchLabels ?? {}).every((k) => !(k in (b.matchLabels ?? {}))));
        assert.equal(
          selectorMatches(both, labels),
          selectorMatches(a, labels) && selectorMatches(b, labels),
        );
      }),
    );
  });

  it('adding labels with keys the selector does not mention never changes the result', () => {
    const unrelated = fc.dictionary(
      fc
        .tuple(fc.constantFrom('any', ...SOURCES), fc.constantFrom('zone', 'rack', 'x.io/y'))
        .map(([s, k]) => (s === 'any' ? k : `${s}:${k}`)),
      valueArb,
    );
    fc.assert(
      fc.property(selectorArb, labelsArb, unrelated, (sel, labels, extra) => {
        assert.equal(selectorMatches(sel, { ...labels, ...extra }), selectorMatches(sel, labels));
      }),
    );
  });

  it('a matchLabels selector matches its own labels, under any source when it names none', () => {
    fc.assert(
      fc.property(fc.dictionary(keyArb, valueArb), sourceArb, (ml, source) => {
        const labels = Object.fromEntries(
          Object.entries(ml).map(([k, v]) => [`${source}:${k}`, v]),
        );
        assert.ok(selectorMatches({ matchLabels: ml }, labels));
        assert.ok(selectorMatches({ matchLabels: ml }, ml));
      }),
    );
  });

  it('a source in the selector key matches only labels of that source; any: and no source match all', () => {
    fc.assert(
      fc.property(sourceArb, sourceArb, keyArb, valueArb, (selSource, labelSource, key, value) => {
        const labels = { [`${labelSource}:${key}`]: value };
        assert.equal(
          selectorMatches({ matchLabels: { [`${selSource}:${key}`]: value } }, labels),
          selSource === labelSource,
        );
        assert.ok(selectorMatches({ matchLabels: { [`any:${key}`]: value } }, labels));
        assert.ok(selectorMatches({ matchLabels: { [key]: value } }, labels));
      }),
    );
  });

  it('label maps and label lists are interchangeable, and compiled selectors agree', () => {
    fc.assert(
      fc.property(selectorArb, labelsArb, (sel, labels) => {
        const expected = selectorMatches(sel, labels);
        assert.equal(selectorMatches(sel, labelsFromMap(labels)), expected);
        assert.equal(compileSelector(sel)(labels), expected);
      }),
    );
  });

  it('the string form is independent of requirement order', () => {
    fc.assert(
      fc.property(plainSelectorArb, (sel) => {
        const reversed = { ...sel, matchExpressions: [...(sel.matchExpressions ?? [])].reverse() };
        assert.equal(selectorToString(reversed), selectorToString(sel));
      }),
    );
  });
});

describe('selectorMatches: Cilium label sources, by example', () => {
  const pod = {
    'k8s:app': 'web',
    'k8s:io.kubernetes.pod.namespace': 'shop',
    'k8s:io.cilium.k8s.policy.serviceaccount': 'default',
    'container:app': 'sidecar',
  };
  const table: [string, LabelSelector, Record<string, string> | Label[], boolean][] = [
    ['plain key matches the k8s label', { matchLabels: { app: 'web' } }, pod, true],
    ['plain key matches any source', { matchLabels: { app: 'sidecar' } }, pod, true],
    ['k8s: key ignores the container label', { matchLabels: { 'k8s:app': 'sidecar' } }, pod, false],
    [
      'container: key sees only the container label',
      { matchLabels: { 'container:app': 'sidecar' } },
      pod,
      true,
    ],
    [
      'special namespace key is just a key',
      { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'shop' } },
      pod,
      true,
    ],
    [
      'NotIn with one source in the set fails',
      { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['sidecar'] }] },
      pod,
      false,
    ],
    [
      'NotIn scoped to k8s passes',
      { matchExpressions: [{ key: 'k8s:app', operator: 'NotIn', values: ['sidecar'] }] },
      pod,
      true,
    ],
    [
      'reserved:host selects the host',
      { matchLabels: { 'reserved:host': '' } },
      [parseLabel('reserved:host')],
      true,
    ],
    ['$host shorthand', { matchLabels: { $host: '' } }, [parseLabel('reserved:host')], true],
    [
      'reserved:host does not select a k8s host label',
      { matchLabels: { 'reserved:host': '' } },
      { 'k8s:host': '' },
      false,
    ],
    ['unsourced labels are unspec', { matchLabels: { 'unspec:app': 'web' } }, { app: 'web' }, true],
    [
      'k8s: key does not match an unsourced label',
      { matchLabels: { 'k8s:app': 'web' } },
      { app: 'web' },
      false,
    ],
    [
      'cidr labels',
      { matchExpressions: [{ key: 'cidr:10.0.0.0/8', operator: 'Exists' }] },
      [parseLabel('cidr:10.0.0.0/8'), parseLabel('reserved:world')],
      true,
    ],
  ];
  for (const [title, sel, labels, expected] of table) {
    it(title, () => assert.equal(selectorMatches(sel, labels), expected));
  }
});

describe('labels', () => {
  it('parses and formats Cilium label strings', () => {
    assert.deepEqual(parseLabel('k8s:app=web'), { source: 'k8s', key: 'app', value: 'web' });
    assert.deepEqual(parseLabel('app=web'), { source: 'unspec', key: 'app', value: 'web' });
    assert.deepEqual(parseLabel('$host'), { source: 'reserved', key: 'host', value: '' });
    assert.deepEqual(parseLabel('reserved:=host'), { source: 'reserved', key: 'host', value: '' });
    assert.deepEqual(
      parseLabel('k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop'),
      {
        source: 'k8s',
        key: 'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name',
        value: 'shop',
      },
    );
    assert.deepEqual(parseSourcedKey('app', 'any'), { source: 'any', key: 'app' });
    assert.equal(formatLabel({ source: 'k8s', key: 'app', value: 'web' }), 'k8s:app=web');
    assert.equal(formatLabel({ source: 'reserved', key: 'world', value: '' }), 'reserved:world');
  });

  it('formatLabel and parseLabel are inverse for sourced labels', () => {
    fc.assert(
      fc.property(sourceArb, keyArb, valueArb, (source, key, value) => {
        assert.deepEqual(parseLabel(formatLabel({ source, key, value })), { source, key, value });
      }),
    );
  });
});

describe('selector helpers', () => {
  it('knows empty selectors', () => {
    assert.ok(selectorIsEmpty({}));
    assert.ok(!selectorIsEmpty({ matchExpressions: [{ key: 'a', operator: 'Exists' }] }));
  });

  it('renders the Kubernetes string form', () => {
    assert.equal(
      selectorToString({
        matchLabels: { app: 'web' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['b', 'a'] },
          { key: 'legacy', operator: 'DoesNotExist' },
          { key: 'env', operator: 'Exists' },
        ],
      }),
      'app=web,env,!legacy,tier in (a,b)',
    );
  });

  it('refuses operators Kubernetes does not define', () => {
    assert.throws(
      () =>
        compileSelector({
          matchExpressions: [{ key: 'a', operator: 'Gt' as 'In', values: ['1'] }],
        }),
      /operator "Gt"/,
    );
  });
});
