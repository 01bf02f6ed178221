// The RBAC role in infra/kubernetes is exactly what the bridge needs: run as the ServiceAccount it
// binds (a client certificate for that user name; RBAC matches ServiceAccount subjects by it),
// the bridge does all its work without one refusal, and every rule of the role is used. With a
// permission taken away it breaks, visibly.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { sleep, waitFor } from '@ciliate/testkit';

import {
  RBAC_FILE,
  spawnBridge,
  startEnv,
  waitLeader,
  waitReady,
  type BridgeProcess,
  type TestEnv,
} from './testing.k8s-helpers.js';

const SA_USER = 'system:serviceaccount:kube-system:ciliate-kube-bridge';
const SA_GROUPS = ['system:serviceaccounts', 'system:serviceaccounts:kube-system'];

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
}

/** `verb resource` pairs a role grants, resources named as the bridge's request metric names them. */
function granted(rules: Rule[]): Set<string> {
  const out = new Set<string>();
  for (const r of rules) {
    for (const group of r.apiGroups ?? ['']) {
      for (const res of r.resources ?? []) {
        const [base, sub] = res.split('/');
        const name = `${base}${group ? `.${group}` : ''}${sub ? `/${sub}` : ''}`;
        for (const verb of r.verbs) out.add(`${verb} ${name}`);
      }
    }
  }
  return out;
}

/** `verb resource` pairs the bridge used successfully, from its request metric. */
function used(metrics: string): { ok: Set<string>; refused: string[] } {
  const ok = new Set<string>();
  const refused: string[] = [];
  for (const line of metrics.split('\n')) {
    const m =
      /^ciliate_kube_bridge_api_requests_total\{verb="(\w+)",resource="([^"]+)",code="(\d+)"/.exec(
        line,
      );
    if (!m) continue;
    const value = Number(line.trim().split(/\s+/).pop());
    if (value === 0) continue;
    const [, verb, resource, code] = m;
    if (code === '401' || code === '403') refused.push(`${verb} ${resource} (${code})`);
    else ok.add(`${verb} ${resource}`);
  }
  return { ok, refused };
}

describe('kube-bridge: RBAC', () => {
  let env: TestEnv;
  let kubeconfig: string;
  const bridges: BridgeProcess[] = [];

  before(async () => {
    env = await startEnv();
    await env.kube.kubectl(['apply', '-f', RBAC_FILE]);
    kubeconfig = await env.kube.makeUserKubeconfig(SA_USER, SA_GROUPS);
  });
  after(async () => {
    for (const b of bridges) await b.kill();
    await env?.close();
  });

  const kubectlJson = async <T>(args: string[]): Promise<T> =>
    JSON.parse((await env.kube.kubectl([...args, '-o', 'json'])).stdout) as T;

  it('the role is enough for everything the bridge does, and every rule is used', async () => {
    const b = await spawnBridge({ kubeconfig, nats: env.nats });
    bridges.push(b);
    await waitLeader(b);
    await waitReady(b);

    // Everything the bridge can be asked to do: imports of every kind, status of Services and
    // pools, all three mirrors with create, update (and CiliumNode status) and delete.
    await env.kube.kubectl(['create', 'namespace', 'app']);
    await env.kube.kubectl([
      'create',
      'service',
      'loadbalancer',
      'web',
      '-n',
      'app',
      '--tcp=80:80',
    ]);
    await env.kube.kubectl(['apply', '-f', '-'], {
      input: `
apiVersion: cilium.io/v2
kind: CiliumLoadBalancerIPPool
metadata: {name: pool}
spec: {blocks: [{cidr: 10.0.6.0/24}]}
`,
    });
    await waitFor(
      'imports',
      async () =>
        (await env.store.get({ kind: 'CiliumLoadBalancerIPPool', namespace: '', name: 'pool' })) &&
        (await env.store.get({ kind: 'Service', namespace: 'app', name: 'web' })),
      { timeoutMs: 10_000 },
    );
    await env.store.setStatus(
      { kind: 'Service', namespace: 'app', name: 'web' },
      {
        loadBalancer: { ingress: [{ ip: '10.0.6.1' }] },
      },
    );
    await env.store.setStatus(
      { kind: 'CiliumLoadBalancerIPPool', namespace: '', name: 'pool' },
      {
        conditions: [
          {
            type: 'cilium.io/IPsAvailable',
            status: 'True',
            reason: 'r',
            message: '254',
            lastTransitionTime: '2025-01-01T00:00:00Z',
          },
        ],
      },
    );
    const mirrors = [
      {
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumNode',
        metadata: { name: 'node-1' },
        spec: { addresses: [{ type: 'InternalIP', ip: '192.168.1.1' }] },
      },
      {
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumIdentity',
        metadata: { name: '1000' },
        'security-labels': { 'k8s:app': 'web' },
      },
      {
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumEndpoint',
        metadata: { name: 'web-1', namespace: 'app' },
      },
    ];
    for (const m of mirrors) await env.store.apply(m);
    await env.store.setStatus(
      { kind: 'CiliumNode', namespace: '', name: 'node-1' },
      {
        ipam: { used: { '10.0.1.5': { owner: 'app/web-1' } } },
      },
    );
    await waitFor(
      'status and mirrors in the API',
      async () => {
        const svc = (
          await env.kube.kubectl([
            'get',
            'svc',
            'web',
            '-n',
            'app',
            '-o',
            'jsonpath={.status.loadBalancer}',
          ])
        ).stdout;
        const pool = (
          await env.kube.kubectl([
            'get',
            'ippool',
            'pool',
            '-o',
            'jsonpath={.status.conditions[0].message}',
          ])
        ).stdout;
        const node = (
          await env.kube
            .kubectl(['get', 'ciliumnode', 'node-1', '-o', 'jsonpath={.status.ipam}'])
            .catch(() => ({ stdout: '' }))
        ).stdout;
        const ids = await kubectlJson<{ items: unknown[] }>(['get', 'ciliumidentities']);
        const ceps = await kubectlJson<{ items: unknown[] }>(['get', 'ciliumendpoints', '-A']);
        return svc.includes('10.0.6.1') &&
          pool === '254' &&
          node !== '' &&
          ids.items.length === 1 &&
          ceps.items.length === 1
          ? true
          : undefined;
      },
      { timeoutMs: 15_000 },
    );
    for (const m of mirrors) {
      await env.store.apply({ ...m, metadata: { ...m.metadata, labels: { updated: 'yes' } } });
    }
    await waitFor(
      'mirrors updated',
      async () => {
        const all = await Promise.all(
          ['ciliumnodes', 'ciliumidentities', 'ciliumendpoints'].map((r) =>
            kubectlJson<{ items: { metadata: { labels?: Record<string, string> } }[] }>([
              'get',
              r,
              '-A',
            ]),
          ),
        );
        return all.every(
          (l) => l.items.length === 1 && l.items[0]!.metadata.labels?.updated === 'yes',
        )
          ? true
          : undefined;
      },
      { timeoutMs: 15_000 },
    );
    for (const m of mirrors) {
      await env.store.delete({
        kind: m.kind,
        namespace: m.metadata.namespace ?? '',
        name: m.metadata.name,
      });
    }
    await waitFor(
      'mirrors deleted',
      async () => {
        const all = await Promise.all(
          ['ciliumnodes', 'ciliumidentities', 'ciliumendpoints'].map((r) =>
            kubectlJson<{ items: unknown[] }>(['get', r, '-A']),
          ),
        );
        return all.every((l) => l.items.length === 0) ? true : undefined;
      },
      { timeoutMs: 15_000 },
    );
    // The lease: created by the first replica, renewed (get, update) since.
    const { ok, refused } = used(await b.metrics());
    assert.deepEqual(refused, [], 'never refused');
    assert.equal(
      b.logs<{ event?: string }>().filter((l) => l.event === 'api.forbidden').length,
      0,
      'no forbidden in the logs',
    );
    const clusterRole = await kubectlJson<{ rules: Rule[] }>([
      'get',
      'clusterrole',
      'ciliate-kube-bridge',
    ]);
    const role = await kubectlJson<{ rules: Rule[] }>([
      'get',
      'role',
      'ciliate-kube-bridge-lease',
      '-n',
      'kube-system',
    ]);
    const grants = granted([...clusterRole.rules, ...role.rules]);
    assert.deepEqual(
      [...ok].filter((u) => !grants.has(u)).sort(),
      [],
      'nothing used beyond the role',
    );
    assert.deepEqual(
      [...grants].filter((g) => !ok.has(g)).sort(),
      [],
      'every rule of the role is used',
    );

    // A polite stop releases the lease (get, update): allowed too.
    await b.kill('SIGTERM');
    assert.equal(
      b.logs<{ event?: string }>().filter((l) => l.event === 'lease.release_failed').length,
      0,
    );
    assert.ok(b.logs<{ event?: string }>().some((l) => l.event === 'lease.released'));
  });

  it('breaks, visibly, when a permission is taken away', async () => {
    await env.kube.kubectl(['apply', '-f', RBAC_FILE]);
    const b = await spawnBridge({ kubeconfig, nats: env.nats, node: 'bridge-b' });
    bridges.push(b);
    await waitLeader(b);
    await waitReady(b);

    // No more patch on services/status: the write-back is refused, said so, and nothing changes.
    const role = await kubectlJson<{ rules: Rule[] }>([
      'get',
      'clusterrole',
      'ciliate-kube-bridge',
    ]);
    const reduced = role.rules.filter((r) => !(r.resources ?? []).includes('services/status'));
    assert.equal(reduced.length, role.rules.length - 1);
    await env.kube.kubectl([
      'patch',
      'clusterrole',
      'ciliate-kube-bridge',
      '--type=json',
      '-p',
      JSON.stringify([{ op: 'replace', path: '/rules', value: reduced }]),
    ]);
    await sleep(500); // the authorizer's cache of roles
    await env.store.setStatus(
      { kind: 'Service', namespace: 'app', name: 'web' },
      {
        loadBalancer: { ingress: [{ ip: '10.0.6.2' }] },
      },
    );
    await waitFor(
      'the refusal to be counted and logged',
      async () =>
        (await b.metric('ciliate_kube_bridge_api_requests_total', {
          verb: 'patch',
          resource: 'services/status',
          code: '403',
        })) > 0 && b.logs<{ event?: string }>().some((l) => l.event === 'api.forbidden')
          ? true
          : undefined,
      { timeoutMs: 10_000 },
    );
    const lb = (
      await env.kube.kubectl([
        'get',
        'svc',
        'web',
        '-n',
        'app',
        '-o',
        'jsonpath={.status.loadBalancer}',
      ])
    ).stdout;
    assert.ok(!lb.includes('10.0.6.2'));
    await b.kill();

    // No list on nodes: a new replica cannot finish its initial sync, and says why.
    const withoutNodes = reduced.map((r) =>
      (r.resources ?? []).includes('nodes')
        ? { ...r, resources: r.resources!.filter((x) => x !== 'nodes') }
        : r,
    );
    await env.kube.kubectl([
      'patch',
      'clusterrole',
      'ciliate-kube-bridge',
      '--type=json',
      '-p',
      JSON.stringify([{ op: 'replace', path: '/rules', value: withoutNodes }]),
    ]);
    await sleep(500);
    const c = await spawnBridge({ kubeconfig, nats: env.nats, node: 'bridge-c' });
    bridges.push(c);
    await waitLeader(c);
    await waitFor(
      'the refused list to be logged',
      () =>
        c
          .logs<{ event?: string; resource?: string }>()
          .some((l) => l.event === 'api.forbidden' && l.resource === 'nodes')
          ? true
          : undefined,
      { timeoutMs: 10_000 },
    );
    const ready = await fetch(`http://${c.httpAddress}/readyz`);
    assert.equal(ready.status, 503, 'not ready: the initial sync cannot complete');
    const body = (await ready.json()) as { checks: { name: string; ok: boolean }[] };
    assert.equal(body.checks.find((x) => x.name === 'initial-sync')?.ok, false);
  });

  it("runs in a pod's place: in-cluster configuration with a ServiceAccount token", async () => {
    for (const b of bridges) await b.kill();
    await env.kube.kubectl(['apply', '-f', RBAC_FILE]); // the rules the test above took away
    const token = (
      await env.kube.kubectl([
        'create',
        'token',
        'ciliate-kube-bridge',
        '-n',
        'kube-system',
        '--duration=1h',
      ])
    ).stdout.trim();
    const root = await mkdtemp(join(tmpdir(), 'ciliate-incluster-'));
    try {
      const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
      await mkdir(sa, { recursive: true });
      await writeFile(join(sa, 'token'), token);
      await writeFile(join(sa, 'namespace'), 'kube-system');
      await writeFile(join(sa, 'ca.crt'), await readFile(join(env.kube.dir, 'ca.crt')));
      const url = new URL(env.kube.url);
      const b = await spawnBridge({
        nats: env.nats,
        node: 'in-pod',
        env: {
          KUBERNETES_SERVICE_HOST: url.hostname,
          KUBERNETES_SERVICE_PORT: url.port,
          CILIATE_KUBE_BRIDGE_IN_CLUSTER_ROOT: root,
        },
      });
      bridges.push(b);
      await waitLeader(b, 20_000);
      await waitReady(b);
      await env.kube.kubectl([
        'create',
        'service',
        'loadbalancer',
        'from-pod',
        '-n',
        'app',
        '--tcp=80:80',
      ]);
      await waitFor(
        'the service in the store',
        () => env.store.get({ kind: 'Service', namespace: 'app', name: 'from-pod' }),
        {
          timeoutMs: 10_000,
        },
      );
      await env.store.setStatus(
        { kind: 'Service', namespace: 'app', name: 'from-pod' },
        {
          loadBalancer: { ingress: [{ ip: '10.0.6.3' }] },
        },
      );
      await waitFor(
        'the status in the API',
        async () =>
          (
            await env.kube.kubectl([
              'get',
              'svc',
              'from-pod',
              '-n',
              'app',
              '-o',
              'jsonpath={.status.loadBalancer}',
            ])
          ).stdout.includes('10.0.6.3')
            ? true
            : undefined,
        { timeoutMs: 10_000 },
      );
      assert.deepEqual(used(await b.metrics()).refused, []);
      const lease = JSON.parse(
        (
          await env.kube.kubectl([
            'get',
            'lease',
            'ciliate-kube-bridge',
            '-n',
            'kube-system',
            '-o',
            'json',
          ])
        ).stdout,
      ) as { spec: { holderIdentity: string } };
      assert.match(lease.spec.holderIdentity, /^in-pod_/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
