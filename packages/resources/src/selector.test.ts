import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { validateSelector } from './selector.js';

describe('validateSelector', () => {
  it('accepts sourced keys only where Cilium allows them', () => {
    const sel = {
      matchLabels: { 'k8s:app': 'web', 'reserved:host': '', 'cidr:2001-db8--/32': '' },
    };
    assert.deepEqual(validateSelector(sel, 'spec.endpointSelector', { sources: true }), []);
    const issues = validateSelector(sel, 'spec.podSelector', { sources: false });
    assert.ok(issues.length >= 3);
    assert.ok(issues.every((i) => i.path === 'spec.podSelector.matchLabels'));
  });
});
