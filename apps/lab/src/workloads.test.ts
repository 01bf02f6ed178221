import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Pod } from '@ciliate/resources';
import fc from 'fast-check';

import { LabError } from './plan.js';
import {
  REPLICAS_ANNOTATION,
  TEMPLATE_ANNOTATION,
  expandTemplate,
  isTemplate,
  pickNode,
  podProcess,
  surplusReplicas,
} from './workloads.js';

function pod(
  name: string,
  extra: Partial<Pod['spec']> = {},
  annotations?: Record<string, string>,
): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'app',
      labels: { app: name },
      ...(annotations ? { annotations } : {}),
    },
    spec: { containers: [{ name: 'c' }], ...extra },
  } as Pod;
}

const NODES = ['node-1', 'node-2', 'node-3'];

describe('replicas shorthand', () => {
  it('expands a template round robin over the nodes', () => {
    const t = pod('web', {}, { [REPLICAS_ANNOTATION]: '4', note: 'kept' });
    assert.ok(isTemplate(t));
    const pods = expandTemplate(t, NODES);
    assert.deepEqual(
      pods.map((p) => [p.metadata.name, p.spec.nodeName]),
      [
        ['web-0', 'node-1'],
        ['web-1', 'node-2'],
        ['web-2', 'node-3'],
        ['web-3', 'node-1'],
      ],
    );
    for (const p of pods) {
      assert.deepEqual(p.metadata.labels, { app: 'web' });
      assert.deepEqual(p.metadata.annotations, { note: 'kept', [TEMPLATE_ANNOTATION]: 'web' });
      assert.equal(isTemplate(p), false);
    }
  });

  it('spreads evenly: node loads differ by at most one (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 1, max: 16 }), (n, k) => {
        const nodes = Array.from({ length: k }, (_, i) => `node-${i + 1}`);
        const pods = expandTemplate(pod('x', {}, { [REPLICAS_ANNOTATION]: String(n) }), nodes);
        assert.equal(pods.length, n);
        const load = nodes.map((node) => pods.filter((p) => p.spec.nodeName === node).length);
        assert.ok(Math.max(...load) - Math.min(...load) <= 1);
      }),
    );
  });

  it('finds the replicas left over after scaling down', () => {
    const big = expandTemplate(pod('web', {}, { [REPLICAS_ANNOTATION]: '3' }), NODES);
    const small = pod('web', {}, { [REPLICAS_ANNOTATION]: '1' });
    assert.deepEqual(surplusReplicas(small, [...big, pod('other')], NODES), ['web-1', 'web-2']);
  });

  it('refuses a bad replica count naming the annotation', () => {
    assert.throws(
      () => expandTemplate(pod('web', {}, { [REPLICAS_ANNOTATION]: 'many' }), NODES),
      (e: unknown) =>
        e instanceof LabError &&
        e.message.startsWith(`metadata.annotations[${REPLICAS_ANNOTATION}]: Invalid value: "many"`),
    );
  });
});

describe('scheduling and processes', () => {
  it('binds a pod to the least busy node, the first on ties', () => {
    assert.equal(pickNode(NODES, []), 'node-1');
    const placed = [pod('a', { nodeName: 'node-1' }), pod('b', { nodeName: 'node-2' })];
    assert.equal(pickNode(NODES, placed), 'node-3');
  });

  it('runs the built-in server on the declared ports, 8080 when no TCP port', () => {
    const p = pod('web', {
      containers: [
        {
          name: 'c',
          ports: [
            { containerPort: 9000, protocol: 'TCP' },
            { containerPort: 53, protocol: 'UDP' },
            { containerPort: 80, protocol: 'TCP' },
          ],
        },
      ],
    });
    const proc = podProcess(p, '/srv.js', '/node');
    assert.equal(proc.kind, 'builtin');
    assert.deepEqual(proc.argv, [
      '/node',
      '/srv.js',
      '--name',
      'web',
      '--tcp',
      '80',
      '--tcp',
      '9000',
      '--udp',
      '53',
    ]);
    const bare = podProcess(pod('x'), '/srv.js', '/node');
    assert.deepEqual(bare.tcpPorts, [8080]);
  });

  it("runs the manifest's command with its args", () => {
    const p = pod('job', {
      containers: [{ name: 'c', command: ['sleep'], args: ['30'] }],
    });
    assert.deepEqual(podProcess(p, '/srv.js', '/node'), {
      kind: 'command',
      argv: ['sleep', '30'],
      tcpPorts: [],
      udpPorts: [],
    });
  });
});
