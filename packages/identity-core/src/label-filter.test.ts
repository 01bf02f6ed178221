import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseLabel } from '@ciliate/contracts';

import { IdentityError } from './errors.js';
import { createLabelFilter, defaultLabelFilter, parseLabelPrefix } from './label-filter.js';

function relevant(filter: ReturnType<typeof createLabelFilter>, text: string): boolean {
  return filter.isIdentityRelevant(parseLabel(text));
}

describe('default identity-relevant label filter', () => {
  // label, identity-relevant?
  const spec: [string, boolean][] = [
    ['k8s:app=web', true],
    ['k8s:team=payments', true],
    ['k8s:io.kubernetes.pod.namespace=default', true],
    ['k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default', true],
    ['k8s:io.cilium.k8s.policy.cluster=default', true],
    ['k8s:app.kubernetes.io/name=web', true],
    ['reserved:host', true],
    ['reserved:world', true],
    ['k8s:pod-template-hash=5d8f7c9b4', false],
    ['k8s:pod-template-generation=3', false],
    ['k8s:controller-revision-hash=6b7f9', false],
    ['k8s:controller-uid=1234', false],
    ['k8s:statefulset.kubernetes.io/pod-name=db-0', false],
    ['k8s:apps.kubernetes.io/pod-index=0', false],
    ['k8s:batch.kubernetes.io/job-completion-index=2', false],
    ['k8s:batch.kubernetes.io/controller-uid=abc', false],
    ['k8s:io.kubernetes.container.name=app', false],
    ['k8s:kubernetes.io/hostname=node-1', false],
    ['k8s:beta.kubernetes.io/arch=amd64', false],
    ['k8s:failure-domain.beta.kubernetes.io/zone=a', false],
    ['k8s:k8s.io/some=thing', false],
    ['k8s:annotation.foo=bar', false],
    ['k8s:etcd_node=etcd-0', false],
    // Cilium's ignore patterns are anchored at the start of the key.
    ['k8s:topology.kubernetes.io/zone=a', true],
    ['container:pod-template-hash=x', false],
  ];
  const f = defaultLabelFilter();
  for (const [text, want] of spec) {
    it(`${text} is ${want ? '' : 'not '}identity-relevant`, () => {
      assert.equal(relevant(f, text), want);
    });
  }

  it('keeps ignored labels as information labels', () => {
    const { identity, information } = f.filter(
      ['k8s:app=web', 'k8s:pod-template-hash=x'].map((t) => parseLabel(t)),
    );
    assert.deepEqual(
      identity.map((l) => l.key),
      ['app'],
    );
    assert.deepEqual(
      information.map((l) => l.key),
      ['pod-template-hash'],
    );
  });
});

describe('configured label prefixes', () => {
  it('one inclusive prefix: only included labels (and the always-included set) count', () => {
    const f = createLabelFilter({ prefixes: 'k8s:app k8s:team' });
    assert.equal(f.inclusive, true);
    const spec: [string, boolean][] = [
      ['k8s:app=web', true],
      ['k8s:application=x', true], // prefixes are prefix regexes
      ['k8s:team=a', true],
      ['k8s:tier=db', false],
      ['container:app=web', false], // source-specific
      ['k8s:io.kubernetes.pod.namespace=default', true],
      ['k8s:io.cilium.k8s.namespace.labels.env=prod', true],
      ['reserved:host', true],
      ['k8s:pod-template-hash=x', false],
    ];
    for (const [text, want] of spec) assert.equal(relevant(f, text), want, text);
  });

  it('only exclusive prefixes: everything else still counts', () => {
    const f = createLabelFilter({ prefixes: ['k8s:!version'] });
    assert.equal(f.inclusive, false);
    assert.equal(relevant(f, 'k8s:version=1.2'), false);
    assert.equal(relevant(f, 'k8s:app=web'), true);
    assert.equal(relevant(f, 'container:version=1'), true);
  });

  it('the longest include beats a shorter ignore; a longer ignore wins', () => {
    const f = createLabelFilter({ prefixes: ['!foo', 'foo\\.bar'] });
    assert.equal(relevant(f, 'k8s:foo.bar.baz=1'), true);
    assert.equal(relevant(f, 'k8s:foo.qux=1'), false);
    const g = createLabelFilter({ prefixes: ['foo', '!foo\\.bar'] });
    assert.equal(relevant(g, 'k8s:foo.bar=1'), false);
    assert.equal(relevant(g, 'k8s:foo.other=1'), true);
    // A namespace label can be dropped on purpose: the ignore match is longer.
    const h = createLabelFilter({ prefixes: ['!io\\.cilium\\.k8s\\.namespace\\.labels\\.team'] });
    assert.equal(relevant(h, 'k8s:io.cilium.k8s.namespace.labels.team=a'), false);
    assert.equal(relevant(h, 'k8s:io.cilium.k8s.namespace.labels.env=a'), true);
  });

  it('`any:` matches every source', () => {
    assert.deepEqual(parseLabelPrefix('any:!foo'), { source: '', prefix: 'foo', ignore: true });
    const f = createLabelFilter({ prefixes: ['any:!foo'] });
    assert.equal(relevant(f, 'container:foo=1'), false);
  });

  it('a prefix file replaces the defaults', () => {
    const f = createLabelFilter({
      prefixFile: {
        version: 1,
        'valid-prefixes': [
          { source: 'reserved', prefix: '.*' },
          { source: 'k8s', prefix: 'app' },
          { source: 'any', prefix: 'io\\.kubernetes', invert: true },
        ],
      },
    });
    assert.equal(f.inclusive, true);
    assert.equal(relevant(f, 'k8s:app=web'), true);
    assert.equal(relevant(f, 'k8s:pod-template-hash=x'), false);
    assert.equal(relevant(f, 'reserved:host'), true);
  });

  it('refuses bad prefixes with the field and the reason', () => {
    assert.throws(
      () => createLabelFilter({ prefixes: ['k8s:app', 'k8s:(unclosed'] }),
      (err: unknown) =>
        err instanceof IdentityError &&
        err.code === 'INVALID_LABEL_FILTER' &&
        err.message.startsWith(
          'labels.prefixes[1]: Invalid value: "k8s:(unclosed": not a valid regular expression',
        ),
    );
    assert.throws(
      () => createLabelFilter({ prefixes: ['k8s:!'] }),
      /prefix after the source is empty/,
    );
    assert.throws(
      () =>
        createLabelFilter({
          prefixFile: { version: 1, 'valid-prefixes': [{ source: '', prefix: 'a' }] },
        }),
      /labels\.prefixFile\.valid-prefixes\[0\]\.source: Invalid value: "": must not be empty/,
    );
  });
});
