import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { CiliateError } from './errors.js';
import {
  formatLabel,
  label,
  labelSetKey,
  labelsFromStrings,
  normalizeLabelSet,
  parseLabel,
  parseLabelSetKey,
  type Label,
} from './labels.js';

// Characters that stress the encoding: separators of the KV form and of label strings.
const keyChars = fc.constantFrom('a', 'b', 'z', '0', '.', '/', '-', '_', ':', '$', ' ', 'é');
const valueChars = fc.constantFrom('a', 'b', '1', '=', ':', '.', '/', '-', ' ');
const arbLabel: fc.Arbitrary<Label> = fc.record({
  source: fc.constantFrom('k8s', 'reserved', 'cidr', 'container', 'unspec', 'x.y-z'),
  key: fc.string({ unit: keyChars, minLength: 1, maxLength: 6 }),
  value: fc.string({ unit: valueChars, maxLength: 5 }),
});
/** Label sets with one label per key, as normalizeLabelSet accepts them. */
const arbLabelSet: fc.Arbitrary<Label[]> = fc.uniqueArray(arbLabel, {
  maxLength: 8,
  selector: (l) => l.key,
});

describe('label strings', () => {
  const table: [string, Label, string][] = [
    // input, parsed, formatted back
    ['k8s:app=web', { source: 'k8s', key: 'app', value: 'web' }, 'k8s:app=web'],
    ['reserved:host', { source: 'reserved', key: 'host', value: '' }, 'reserved:host'],
    ['$host', { source: 'reserved', key: 'host', value: '' }, 'reserved:host'],
    ['app=web', { source: 'unspec', key: 'app', value: 'web' }, 'unspec:app=web'],
    ['k8s:a=b=c', { source: 'k8s', key: 'a', value: 'b=c' }, 'k8s:a=b=c'],
    ['cidr:10.0.0.0/8', { source: 'cidr', key: '10.0.0.0/8', value: '' }, 'cidr:10.0.0.0/8'],
    [
      'fqdn:matchName: example.com',
      { source: 'fqdn', key: 'matchName: example.com', value: '' },
      'fqdn:matchName: example.com',
    ],
    ['reserved:=world', { source: 'reserved', key: 'world', value: '' }, 'reserved:world'],
  ];
  for (const [input, parsed, formatted] of table) {
    it(`${input} parses and formats as ${formatted}`, () => {
      assert.deepEqual(parseLabel(input), parsed);
      assert.equal(formatLabel(parseLabel(input)), formatted);
    });
  }

  it('refuses labels the KV encoding could not hold, naming the field', () => {
    const bad: [string, string][] = [
      ['k8s:=x', 'labels[0]: Invalid value: "k8s:=x": key must not be empty'],
      ['k8s:a;b=c', 'labels[0]: Invalid value: "k8s:a;b=c": key must not contain "=" or ";"'],
      ['k8s:a=b;c', 'labels[0]: Invalid value: "k8s:a=b;c": value must be a string without ";"'],
      [':a=b', 'labels[0]: Invalid value: ":a=b": source must be a non-empty token'],
    ];
    for (const [text, message] of bad) {
      assert.throws(
        () => parseLabel(text, 'labels[0]'),
        (err: unknown) =>
          err instanceof CiliateError &&
          err.code === 'bad_request' &&
          err.field === 'labels[0]' &&
          err.message.startsWith(message),
        text,
      );
    }
    assert.throws(() => label('k8s', 'a=b'), /label\.key: Invalid value: "a=b"/);
  });
});

describe('label-set key', () => {
  it('is Cilium’s sorted, semicolon-terminated form', () => {
    const key = labelSetKey(
      labelsFromStrings(['k8s:io.kubernetes.pod.namespace=default', 'k8s:app=web', '$host']),
    );
    assert.equal(key, 'k8s:app=web;reserved:host=;k8s:io.kubernetes.pod.namespace=default;');
    assert.equal(labelSetKey([]), '');
  });

  it('merges exact duplicates and refuses two labels with one key', () => {
    const a = label('k8s', 'app', 'web');
    assert.equal(normalizeLabelSet([a, a]).length, 1);
    assert.throws(
      () => normalizeLabelSet([a, label('k8s', 'app', 'db')]),
      (err: unknown) =>
        err instanceof CiliateError &&
        err.code === 'bad_request' &&
        err.message.startsWith('labels[1]: Invalid value: "k8s:app=db": conflicts with'),
    );
    assert.throws(
      () => normalizeLabelSet([a, label('container', 'app', 'web')]),
      /one label per key/,
    );
  });

  it('property: the order of labels does not change the key', () => {
    fc.assert(
      fc.property(
        arbLabelSet.chain((set) =>
          fc.tuple(fc.constant(set), fc.shuffledSubarray(set, { minLength: set.length })),
        ),
        ([set, shuffled]) => {
          assert.equal(labelSetKey(shuffled), labelSetKey(set));
        },
      ),
    );
  });

  it('property: the key decodes back to the set, so distinct sets never share a key', () => {
    fc.assert(
      fc.property(
        // Near-equal pairs matter most: subsets and reorderings of one set, plus unrelated sets.
        arbLabelSet.chain((a) =>
          fc.tuple(fc.constant(a), fc.oneof(arbLabelSet, fc.shuffledSubarray(a))),
        ),
        ([a, b]) => {
          const ka = labelSetKey(a);
          assert.deepEqual(parseLabelSetKey(ka), normalizeLabelSet(a));
          const sameSet =
            JSON.stringify(normalizeLabelSet(a)) === JSON.stringify(normalizeLabelSet(b));
          assert.equal(ka === labelSetKey(b), sameSet);
        },
      ),
    );
  });

  it('refuses keys that are not canonical', () => {
    assert.throws(() => parseLabelSetKey('k8s:b=1;k8s:a=1;'), /sorted by key/);
    assert.throws(() => parseLabelSetKey('k8s:a=1'), /must end with ";"/);
    assert.throws(() => parseLabelSetKey('k8s:a;'), /must be "source:key=value"/);
  });
});
