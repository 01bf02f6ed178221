import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  formatLabel,
  labelsFromStrings,
  reservedIdentities,
  reservedIdentityForLabels,
  worldIdentity,
} from '@ciliate/contracts';

import { IdentityError } from './errors.js';
import {
  classifyIdentity,
  clusterIdentityRange,
  decodeClusterIdentity,
  encodeClusterIdentity,
  localIdentity,
  validateClusterConfig,
  type MaxConnectedClusters,
} from './numeric.js';

describe('reserved identities', () => {
  it('match Cilium’s numbers and labels', () => {
    assert.deepEqual(
      reservedIdentities().map((r) => [r.id, r.labels.map(formatLabel).join(',')]),
      [
        [1, 'reserved:host'],
        [2, 'reserved:world'],
        [3, 'reserved:unmanaged'],
        [4, 'reserved:health'],
        [5, 'reserved:init'],
        [6, 'reserved:remote-node'],
        [7, 'reserved:kube-apiserver,reserved:remote-node'],
        [8, 'reserved:ingress'],
        [9, 'reserved:world-ipv4'],
        [10, 'reserved:world-ipv6'],
      ],
    );
  });

  it('are found from their labels', () => {
    const spec: [string[], number | undefined][] = [
      [['reserved:host'], 1],
      [['reserved:host', 'reserved:kube-apiserver'], 1],
      [['reserved:kube-apiserver', 'reserved:remote-node'], 7],
      [['reserved:remote-node'], 6],
      [['reserved:world-ipv6'], 10],
      [['reserved:world', 'cidr:10.0.0.0/8'], undefined],
      [['k8s:app=web'], undefined],
    ];
    for (const [labels, want] of spec) {
      assert.equal(reservedIdentityForLabels(labelsFromStrings(labels))?.id, want, labels.join());
    }
  });

  it('world is 2, or 9/10 per family in dual stack', () => {
    assert.equal(worldIdentity(4, false), 2);
    assert.equal(worldIdentity(6, false), 2);
    assert.equal(worldIdentity(4, true), 9);
    assert.equal(worldIdentity(6, true), 10);
  });
});

describe('cluster configuration', () => {
  it('accepts Cilium’s valid settings', () => {
    assert.deepEqual(validateClusterConfig({}), {
      name: 'default',
      id: 0,
      maxConnectedClusters: 255,
    });
    assert.deepEqual(validateClusterConfig({ name: 'east-1', id: 255 }), {
      name: 'east-1',
      id: 255,
      maxConnectedClusters: 255,
    });
    assert.equal(validateClusterConfig({ name: 'a', id: 511, maxConnectedClusters: 511 }).id, 511);
    assert.equal(validateClusterConfig({ name: 'x'.repeat(32), id: 1 }).name.length, 32);
  });

  it('refuses invalid settings naming the field and the reason', () => {
    const spec: [Record<string, unknown>, string][] = [
      [
        { name: 'default', id: 3 },
        'cluster.name: Invalid value: "default": a cluster with an ID (3) needs a name other than "default"',
      ],
      [{ name: 'East', id: 1 }, 'cluster.name: Invalid value: "East": must consist of lower case'],
      [{ name: '-a', id: 1 }, 'cluster.name: Invalid value: "-a": must consist'],
      [{ name: 'a-', id: 1 }, 'cluster.name: Invalid value: "a-": must consist'],
      [
        { name: 'x'.repeat(33), id: 1 },
        `cluster.name: Invalid value: "${'x'.repeat(33)}": must be at most 32 characters`,
      ],
      [{ name: 'a', id: 256 }, 'cluster.id: Invalid value: 256: must be an integer in 0-255'],
      [{ name: 'a', id: -1 }, 'cluster.id: Invalid value: -1: must be an integer in 0-255'],
      [{ name: 'a', id: 1.5 }, 'cluster.id: Invalid value: 1.5'],
      [
        { name: 'a', id: 1, maxConnectedClusters: 300 },
        'cluster.maxConnectedClusters: Invalid value: 300: supported values are 255 and 511',
      ],
      [{ name: '', id: 1 }, 'cluster.name: Required value'],
    ];
    for (const [input, message] of spec) {
      assert.throws(
        () => validateClusterConfig(input),
        (err: unknown) =>
          err instanceof IdentityError &&
          err.code === 'INVALID_CLUSTER_CONFIG' &&
          err.message.startsWith(message),
        JSON.stringify(input),
      );
    }
  });
});

describe('cluster ID bits', () => {
  it('give each cluster its range', () => {
    const spec: [number, MaxConnectedClusters, number, number][] = [
      [0, 255, 256, 65535],
      [1, 255, 65536, 131071],
      [255, 255, 0xff0000, 0xffffff],
      [0, 511, 256, 32767],
      [1, 511, 32768, 65535],
      [511, 511, 0xff8000, 0xffffff],
    ];
    for (const [id, max, lo, hi] of spec) {
      assert.deepEqual(clusterIdentityRange({ id, maxConnectedClusters: max }), {
        min: lo,
        max: hi,
      });
    }
  });

  for (const max of [255, 511] as const) {
    const shift = max === 255 ? 16 : 15;
    const pair = fc
      .integer({ min: 0, max })
      .chain((c) =>
        fc.tuple(fc.constant(c), fc.integer({ min: c === 0 ? 256 : 0, max: 2 ** shift - 1 })),
      );

    it(`property (${max} clusters): encode and decode round-trip for every valid pair`, () => {
      fc.assert(
        fc.property(pair, ([clusterId, localId]) => {
          const id = encodeClusterIdentity(clusterId, localId, max);
          assert.deepEqual(decodeClusterIdentity(id, max), { clusterId, localId });
          const range = clusterIdentityRange({ id: clusterId, maxConnectedClusters: max });
          assert.ok(id >= range.min && id <= range.max);
          assert.ok(id < 2 ** 24, 'fits the 24 wire bits');
          assert.deepEqual(classifyIdentity(id, max), { kind: 'global', clusterId, localId });
        }),
      );
    });

    it(`(${max} clusters): the edges of every cluster round-trip`, () => {
      for (let c = 0; c <= max; c++) {
        for (const local of [c === 0 ? 256 : 0, 2 ** shift - 1]) {
          assert.deepEqual(decodeClusterIdentity(encodeClusterIdentity(c, local, max), max), {
            clusterId: c,
            localId: local,
          });
        }
      }
    });
  }

  it('refuses pairs outside the ranges', () => {
    assert.throws(
      () => encodeClusterIdentity(0, 255),
      /localId: Invalid value: 255: must be an integer in 256-65535 for cluster 0/,
    );
    assert.throws(() => encodeClusterIdentity(1, 65536), /localId: Invalid value: 65536/);
    assert.throws(() => encodeClusterIdentity(256, 1), /clusterId: Invalid value: 256/);
    assert.throws(() => encodeClusterIdentity(2, 32768, 511), /localId: Invalid value: 32768/);
    assert.throws(
      () => decodeClusterIdentity(255),
      /a global identity is an integer in 256-16777215/,
    );
    assert.throws(() => decodeClusterIdentity(1 << 24), /identity: Invalid value: 16777216/);
  });
});

describe('identity classes', () => {
  it('tell numbers apart by range and scope', () => {
    const spec: [number, ReturnType<typeof classifyIdentity>][] = [
      [0, { kind: 'unknown' }],
      [1, { kind: 'reserved', name: 'host' }],
      [7, { kind: 'reserved', name: 'kube-apiserver' }],
      [128, { kind: 'reserved', name: undefined }],
      [256, { kind: 'global', clusterId: 0, localId: 256 }],
      [65536 * 3 + 7, { kind: 'global', clusterId: 3, localId: 7 }],
      [localIdentity(1), { kind: 'local', localId: 1 }],
      [16777217, { kind: 'local', localId: 1 }],
      [33554431, { kind: 'local', localId: 0xffffff }],
      [localIdentity(5, 'remote-node'), { kind: 'remote-node', localId: 5 }],
      [1 << 24, { kind: 'invalid' }],
      [3 << 24, { kind: 'invalid' }],
      [-1, { kind: 'invalid' }],
    ];
    for (const [id, want] of spec) assert.deepEqual(classifyIdentity(id), want, String(id));
  });
});
