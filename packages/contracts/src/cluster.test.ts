import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { clusterProblem, originBucket, originSubjectPrefix, parseOriginBucket } from './cluster.js';
import { buckets } from './buckets.js';

describe('cluster settings with Cilium rules', () => {
  it('accepts the defaults and meshed clusters', () => {
    assert.equal(clusterProblem({}), undefined);
    assert.equal(clusterProblem({ name: 'eu-west-1', id: 7 }), undefined);
    assert.equal(clusterProblem({ name: 'c', id: 511, maxConnectedClusters: 511 }), undefined);
  });

  it('names the field and the reason of a bad setting', () => {
    const cases: [Parameters<typeof clusterProblem>[0], string, RegExp][] = [
      [{ name: 'Bad_Name' }, 'name', /lower case alphanumeric/],
      [{ name: '-a' }, 'name', /start and end/],
      [{ name: 'x'.repeat(33) }, 'name', /at most 32/],
      [{ name: '' }, 'name', /needs a name/],
      [{ name: 'default', id: 3 }, 'name', /other than "default"/],
      [{ name: 'a', id: 256 }, 'id', /0-255/],
      [{ name: 'a', id: 1.5 }, 'id', /integer/],
      [{ name: 'a', maxConnectedClusters: 300 }, 'maxConnectedClusters', /255 and 511/],
    ];
    for (const [input, field, reason] of cases) {
      const p = clusterProblem(input);
      assert.equal(p?.field, field, JSON.stringify(input));
      assert.match(p.reason, reason);
    }
  });
});

describe('records and subjects of another cluster', () => {
  it('live in one bucket per origin, which parses back', () => {
    const b = originBucket(buckets.ipcache(), 'eu-west-1');
    assert.equal(b, 'ciliate-ipcache--eu-west-1');
    assert.deepEqual(parseOriginBucket(b), { bucket: 'ciliate-ipcache', cluster: 'eu-west-1' });
    assert.equal(parseOriginBucket(buckets.ipcache()), undefined);
    assert.throws(() => originBucket(buckets.ipcache(), 'Bad'), /lower case/);
    assert.throws(() => originBucket(b, 'x'), /already an origin bucket/);
  });

  it('are imported under a prefix with the origin as one token', () => {
    assert.equal(originSubjectPrefix('b'), 'ciliate.c.b.');
    assert.throws(() => originSubjectPrefix('a.b'), /lower case/);
  });
});
