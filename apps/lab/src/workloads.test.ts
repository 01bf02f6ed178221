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
  UNPRIVILEGED_ID,
  pickNode,
  podCommand,
  podProcess,
  podUser,
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

describe('the user a pod runs as', () => {
  const N = UNPRIVILEGED_ID;
  const withContext = (
    container: Record<string, unknown> | undefined,
    podLevel?: Record<string, unknown>,
  ): Pod =>
    pod('p', {
      containers: [{ name: 'c', ...(container ? { securityContext: container } : {}) }],
      ...(podLevel ? { securityContext: podLevel } : {}),
    });
  // container securityContext, pod securityContext, uid, gid, no_new_privs
  const table: [
    string,
    Record<string, unknown>?,
    Record<string, unknown>?,
    number?,
    number?,
    boolean?,
  ][] = [
    ['nobody when the pod asks for nothing', undefined, undefined, N, N, true],
    ['root when privileged', { privileged: true }, undefined, 0, 0, false],
    ['nobody when privileged is false', { privileged: false }, undefined, N, N, true],
    ['root with runAsUser 0', { runAsUser: 0 }, undefined, 0, 0, false],
    ['root with the pod-level runAsUser 0', undefined, { runAsUser: 0 }, 0, 0, false],
    [
      'the pod-level user and group',
      undefined,
      { runAsUser: 1000, runAsGroup: 2000 },
      1000,
      2000,
      true,
    ],
    [
      "the container's user over the pod's",
      { runAsUser: 1001 },
      { runAsUser: 1000, runAsGroup: 3000 },
      1001,
      3000,
      true,
    ],
    ['group nogroup for a user without a group', { runAsUser: 1000 }, undefined, 1000, N, true],
    [
      'a privileged container as the user it names',
      { privileged: true, runAsUser: 1000 },
      undefined,
      1000,
      N,
      true,
    ],
    [
      'nobody free to run setuid programs when escalation is allowed',
      { allowPrivilegeEscalation: true },
      undefined,
      N,
      N,
      false,
    ],
    [
      'root held to no_new_privs without escalation',
      { runAsUser: 0, allowPrivilegeEscalation: false },
      undefined,
      0,
      0,
      true,
    ],
    ['nobody that is non-root as asked', { runAsNonRoot: true }, undefined, N, N, true],
  ];
  for (const [what, container, podLevel, uid, gid, noNewPrivs] of table) {
    it(`is ${what}`, () => {
      assert.deepEqual(podUser(withContext(container, podLevel)), { uid, gid, noNewPrivs });
    });
  }

  it('takes the securityContext of the container whose command runs', () => {
    const p = pod('p', {
      containers: [
        { name: 'a', securityContext: { privileged: true } },
        { name: 'b', command: ['sleep', '1'] },
      ],
    });
    assert.equal(podUser(p).uid, N);
  });

  const refused: [string, Record<string, unknown>?, Record<string, unknown>?, RegExp?][] = [
    [
      'runAsNonRoot with runAsUser 0',
      { runAsNonRoot: true, runAsUser: 0 },
      undefined,
      /^spec\.containers\[0\]\.securityContext\.runAsNonRoot: Invalid value: true: the process would run as root/,
    ],
    [
      'the pod-level runAsNonRoot for a privileged container',
      { privileged: true },
      { runAsNonRoot: true },
      /^spec\.securityContext\.runAsNonRoot: Invalid value: true/,
    ],
    [
      'a user that is not a number',
      { runAsUser: '1000' },
      undefined,
      /^spec\.containers\[0\]\.securityContext\.runAsUser: Invalid value: "1000": must be an integer 0-2147483647$/,
    ],
    [
      'a negative group',
      undefined,
      { runAsGroup: -1 },
      /^spec\.securityContext\.runAsGroup: Invalid value: -1: must be an integer/,
    ],
    [
      'privileged that is not a boolean',
      { privileged: 'yes' },
      undefined,
      /^spec\.containers\[0\]\.securityContext\.privileged: Invalid value: "yes": must be true or false$/,
    ],
  ];
  for (const [what, container, podLevel, message] of refused) {
    it(`refuses ${what}, naming the field`, () => {
      assert.throws(
        () => podUser(withContext(container, podLevel)),
        (e: unknown) =>
          e instanceof LabError && e.code === 'bad_request' && message!.test(e.message),
      );
    });
  }

  it('drops to the user with setpriv after entering the namespace; root runs directly', () => {
    assert.deepEqual(
      podCommand('cil.lab.p', ['/node', 'srv.js'], { uid: N, gid: N, noNewPrivs: true }),
      [
        'ip',
        'netns',
        'exec',
        'cil.lab.p',
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '--no-new-privs',
        '--',
        '/node',
        'srv.js',
      ],
    );
    assert.deepEqual(
      podCommand('ns', ['sleep', '1'], { uid: 1000, gid: 65534, noNewPrivs: false }),
      [
        'ip',
        'netns',
        'exec',
        'ns',
        'setpriv',
        '--reuid=1000',
        '--regid=65534',
        '--clear-groups',
        '--',
        'sleep',
        '1',
      ],
    );
    assert.deepEqual(podCommand('ns', ['sleep', '1'], { uid: 0, gid: 0, noNewPrivs: false }), [
      'ip',
      'netns',
      'exec',
      'ns',
      'sleep',
      '1',
    ]);
  });
});
