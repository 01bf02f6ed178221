// The bridge against a real kube-apiserver: Ciliate's CRDs install, objects made with kubectl
// reach the store with their Kubernetes identity, updates and deletes follow, objects from other
// sources are never touched, status goes back to the API, and Ciliate's mirrors are written.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import type { KubeObject } from '@ciliate/resources';
import { waitFor } from '@ciliate/testkit';

import { SOURCE_ANNOTATION } from './convert.js';
import {
  spawnBridge,
  startEnv,
  waitLeader,
  waitReady,
  type BridgeProcess,
  type TestEnv,
} from './testing.k8s-helpers.js';

type Obj = KubeObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> };

describe('kube-bridge: API to store, status and mirrors back', () => {
  let env: TestEnv;
  let bridge: BridgeProcess;

  before(async () => {
    env = await startEnv();
    bridge = await spawnBridge({
      kubeconfig: env.kube.kubeconfig,
      nats: env.nats,
      resyncPeriod: '2s',
    });
    await waitLeader(bridge);
    await waitReady(bridge);
  });

  after(async () => {
    await bridge?.kill('SIGTERM');
    await env?.close();
  });

  const kubectlJson = async <T>(args: string[]): Promise<T> =>
    JSON.parse((await env.kube.kubectl([...args, '-o', 'json'])).stdout) as T;

  const storeGet = async (
    kind: string,
    namespace: string,
    name: string,
  ): Promise<Obj | undefined> => (await env.store.get<Obj>({ kind, namespace, name }))?.object;

  it('installs every CRD and serves every kind', async () => {
    const crds = await kubectlJson<{ items: { metadata: { name: string } }[] }>(['get', 'crd']);
    assert.equal(crds.items.filter((c) => c.metadata.name.endsWith('.cilium.io')).length, 10);
    assert.equal(await bridge.metric('ciliate_kube_bridge_kind_available'), 16);
    assert.equal(await env.store.sourceSynced('kubernetes'), true, 'the source is marked synced');
  });

  it('puts objects created with kubectl into the store with their Kubernetes identity', async () => {
    await env.kube.kubectl(['apply', '-f', '-'], {
      input: `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: a}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.1.5]}]
ports: [{port: 8080, protocol: TCP}]
---
apiVersion: v1
kind: Node
metadata: {name: worker-1}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-web, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress: [{fromEndpoints: [{matchLabels: {app: frontend}}]}]
---
apiVersion: cilium.io/v2
kind: CiliumLoadBalancerIPPool
metadata: {name: pool}
spec: {blocks: [{cidr: 10.0.6.0/24}]}
`,
    });
    const want: [string, string, string][] = [
      ['Namespace', '', 'shop'],
      ['Service', 'shop', 'web'],
      ['Pod', 'shop', 'web-1'],
      ['NetworkPolicy', 'shop', 'deny'],
      ['EndpointSlice', 'shop', 'web-abc'],
      ['Node', '', 'worker-1'],
      ['CiliumNetworkPolicy', 'shop', 'allow-web'],
      ['CiliumLoadBalancerIPPool', '', 'pool'],
    ];
    for (const [kind, ns, name] of want) {
      const obj = await waitFor(
        `${kind} ${ns}/${name} in the store`,
        () => storeGet(kind, ns, name),
        {
          timeoutMs: 15_000,
        },
      );
      const api = await kubectlJson<Obj>([
        'get',
        kind.toLowerCase(),
        name,
        ...(ns ? ['-n', ns] : []),
      ]);
      assert.equal(obj.metadata.uid, api.metadata.uid, `${kind} keeps its uid`);
      assert.equal(obj.metadata.creationTimestamp, api.metadata.creationTimestamp);
      assert.equal(obj.metadata.annotations?.[SOURCE_ANNOTATION], 'kubernetes');
      assert.equal(obj.metadata.managedFields, undefined);
    }
    const svc = await storeGet('Service', 'shop', 'web');
    assert.equal(svc?.spec?.type, 'LoadBalancer');
    assert.ok(svc?.spec?.clusterIP, "the API's allocated cluster IP is kept");
    assert.deepEqual((await storeGet('Namespace', '', 'shop'))?.metadata.labels, {
      team: 'a',
      'kubernetes.io/metadata.name': 'shop',
    });
  });

  it('imports pod status (IPs) into the status channel', async () => {
    const pod = await kubectlJson<Obj>(['get', 'pod', 'web-1', '-n', 'shop']);
    await env.admin.request(
      'PATCH',
      '/api/v1/namespaces/shop/pods/web-1/status',
      { status: { phase: 'Running', podIP: '10.0.1.5', podIPs: [{ ip: '10.0.1.5' }] } },
      'application/merge-patch+json',
    );
    const st = await waitFor(
      'pod status in the store',
      async () => {
        const s = (await env.store.getStatus({ kind: 'Pod', namespace: 'shop', name: 'web-1' })) as
          { podIP?: string } | undefined;
        return s?.podIP === '10.0.1.5' ? s : undefined;
      },
      { timeoutMs: 10_000 },
    );
    assert.ok(st);
    assert.equal((await storeGet('Pod', 'shop', 'web-1'))?.metadata.uid, pod.metadata.uid);
  });

  it('follows updates and deletes', async () => {
    await env.kube.kubectl(['label', 'namespace', 'shop', 'team=b', '--overwrite']);
    await waitFor(
      'the new label in the store',
      async () =>
        (await storeGet('Namespace', '', 'shop'))?.metadata.labels?.team === 'b' ? true : undefined,
      { timeoutMs: 10_000 },
    );
    await env.kube.kubectl(['delete', 'networkpolicy', 'deny', '-n', 'shop']);
    await env.kube.kubectl(['delete', 'cnp', 'allow-web', '-n', 'shop']);
    await waitFor(
      'deletes in the store',
      async () =>
        !(await storeGet('NetworkPolicy', 'shop', 'deny')) &&
        !(await storeGet('CiliumNetworkPolicy', 'shop', 'allow-web'))
          ? true
          : undefined,
      { timeoutMs: 10_000 },
    );
  });

  it('never sweeps or overwrites objects from other sources, across resyncs', async () => {
    // As `ciliate apply` writes them: no source annotation.
    await env.store.apply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'local-only', namespace: 'shop' },
      spec: { endpointSelector: {} },
    });
    const mine = await env.store.apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'both', namespace: 'shop' },
      spec: { ports: [{ port: 1 }] },
    });
    await env.kube.kubectl(['create', 'service', 'clusterip', 'both', '-n', 'shop', '--tcp=2:2']);
    const relistsBefore = await bridge.metric('ciliate_kube_bridge_relists_total', {
      kind: 'Service',
    });
    await waitFor(
      'two resyncs',
      async () =>
        (await bridge.metric('ciliate_kube_bridge_relists_total', { kind: 'Service' })) >=
        relistsBefore + 2
          ? true
          : undefined,
      { timeoutMs: 15_000 },
    );
    assert.ok(await storeGet('CiliumNetworkPolicy', 'shop', 'local-only'), 'not swept');
    const both = await env.store.get<Obj>({ kind: 'Service', namespace: 'shop', name: 'both' });
    assert.equal(both?.revision, mine.revision, 'not overwritten');
    assert.ok(
      (await bridge.metric('ciliate_kube_bridge_conflicts_total', { kind: 'Service' })) >= 1,
    );
  });

  it('counts and logs an invalid object with its field path, and keeps going', async () => {
    await env.kube.kubectl(['apply', '-f', '-'], {
      input: `
apiVersion: cilium.io/v2
kind: CiliumLoadBalancerIPPool
metadata: {name: backwards}
spec: {blocks: [{start: 10.0.7.9, stop: 10.0.7.1}]}
`,
    });
    await waitFor(
      'the invalid pool to be counted',
      async () =>
        (await bridge.metric('ciliate_kube_bridge_invalid_objects_total', {
          kind: 'CiliumLoadBalancerIPPool',
        })) >= 1
          ? true
          : undefined,
      { timeoutMs: 10_000 },
    );
    const line = bridge
      .logs<{ event?: string; key?: string; fields?: string[] }>()
      .find(
        (l) => l.event === 'object.invalid' && l.key === 'CiliumLoadBalancerIPPool._.backwards',
      );
    assert.deepEqual(line?.fields, ['spec.blocks[0].stop']);
    assert.equal(await storeGet('CiliumLoadBalancerIPPool', '', 'backwards'), undefined);
    assert.equal(bridge.proc.child.exitCode, null, 'still running');
    await env.kube.kubectl(['delete', 'ippool', 'backwards']);
  });

  it('writes Service status.loadBalancer from the status channel to the API', async () => {
    await env.store.setStatus(
      { kind: 'Service', namespace: 'shop', name: 'web' },
      { loadBalancer: { ingress: [{ ip: '10.0.6.1' }] } },
    );
    const lb = await waitFor(
      'status.loadBalancer in the API',
      async () => {
        const { stdout } = await env.kube.kubectl([
          'get',
          'svc',
          'web',
          '-n',
          'shop',
          '-o',
          'jsonpath={.status.loadBalancer}',
        ]);
        return stdout.includes('10.0.6.1') ? stdout : undefined;
      },
      { timeoutMs: 10_000 },
    );
    assert.equal((JSON.parse(lb) as { ingress: { ip: string }[] }).ingress[0]?.ip, '10.0.6.1');
    // Released: an empty loadBalancer clears it.
    await env.store.setStatus(
      { kind: 'Service', namespace: 'shop', name: 'web' },
      { loadBalancer: {} },
    );
    await waitFor(
      'status.loadBalancer cleared',
      async () => {
        const { stdout } = await env.kube.kubectl([
          'get',
          'svc',
          'web',
          '-n',
          'shop',
          '-o',
          'jsonpath={.status.loadBalancer.ingress}',
        ]);
        return stdout.trim() === '' ? true : undefined;
      },
      { timeoutMs: 10_000 },
    );
  });

  it('writes pool conditions to the API', async () => {
    const condition = {
      type: 'cilium.io/IPsAvailable',
      status: 'True',
      reason: 'Available',
      message: '254',
      lastTransitionTime: '2025-01-01T00:00:00Z',
    };
    await env.store.setStatus(
      { kind: 'CiliumLoadBalancerIPPool', namespace: '', name: 'pool' },
      {
        conditions: [condition],
      },
    );
    await waitFor(
      'pool conditions in the API',
      async () => {
        const pool = await kubectlJson<Obj>(['get', 'ippool', 'pool']);
        const c = (pool.status?.conditions as { type: string; message: string }[] | undefined)?.[0];
        return c?.message === '254' ? true : undefined;
      },
      { timeoutMs: 10_000 },
    );
  });

  it('creates, updates and deletes the mirrors Ciliate owns', async () => {
    await env.store.apply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNode',
      metadata: { name: 'worker-1', labels: { 'kubernetes.io/hostname': 'worker-1' } },
      spec: { addresses: [{ type: 'InternalIP', ip: '192.168.10.11' }] },
    });
    await env.store.setStatus(
      { kind: 'CiliumNode', namespace: '', name: 'worker-1' },
      {
        ipam: { used: { '10.0.1.5': { owner: 'shop/web-1' } } },
      },
    );
    await env.store.apply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumIdentity',
      metadata: { name: '12345', labels: { 'io.kubernetes.pod.namespace': 'shop' } },
      'security-labels': { 'k8s:app': 'web', 'k8s:io.kubernetes.pod.namespace': 'shop' },
    });
    await env.store.apply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumEndpoint',
      metadata: { name: 'web-1', namespace: 'shop' },
    });
    await env.store.setStatus(
      { kind: 'CiliumEndpoint', namespace: 'shop', name: 'web-1' },
      {
        id: 7,
        state: 'ready',
        identity: { id: 12345 },
        networking: { addressing: [{ ipv4: '10.0.1.5' }], node: '192.168.10.11' },
      },
    );
    const node = await waitFor(
      'the CiliumNode mirror with its status',
      async () => {
        const n = await kubectlJson<Obj>(['get', 'ciliumnode', 'worker-1']).catch(() => undefined);
        return (n?.status as { ipam?: { used?: object } } | undefined)?.ipam?.used ? n : undefined;
      },
      { timeoutMs: 10_000 },
    );
    assert.equal(node.metadata.annotations?.[SOURCE_ANNOTATION], 'ciliate');
    assert.deepEqual(node.spec?.addresses, [{ type: 'InternalIP', ip: '192.168.10.11' }]);
    const id = await waitFor(
      'the CiliumIdentity mirror',
      () =>
        kubectlJson<Obj & { 'security-labels': object }>(['get', 'ciliumidentity', '12345']).catch(
          () => undefined,
        ),
      { timeoutMs: 10_000 },
    );
    assert.deepEqual(id['security-labels'], {
      'k8s:app': 'web',
      'k8s:io.kubernetes.pod.namespace': 'shop',
    });
    const cep = await waitFor(
      'the CiliumEndpoint mirror',
      () => kubectlJson<Obj>(['get', 'cep', 'web-1', '-n', 'shop']).catch(() => undefined),
      { timeoutMs: 10_000 },
    );
    assert.equal((cep.status as { state?: string }).state, 'ready');
    // The store's own copies are Ciliate's, not turned into imports.
    const stored = await storeGet('CiliumNode', '', 'worker-1');
    assert.equal(stored?.metadata.annotations?.[SOURCE_ANNOTATION], undefined);

    // Update: a new address goes to the API; an edit made in the API is undone.
    await env.store.apply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNode',
      metadata: { name: 'worker-1', labels: { 'kubernetes.io/hostname': 'worker-1' } },
      spec: { addresses: [{ type: 'InternalIP', ip: '192.168.10.12' }] },
    });
    await waitFor(
      'the updated CiliumNode',
      async () => {
        const n = await kubectlJson<Obj>(['get', 'ciliumnode', 'worker-1']);
        return JSON.stringify(n.spec?.addresses).includes('192.168.10.12') ? true : undefined;
      },
      { timeoutMs: 10_000 },
    );
    await env.kube.kubectl(['label', 'ciliumidentity', '12345', 'tampered=yes']);
    await waitFor(
      'the edit undone',
      async () => {
        const n = await kubectlJson<Obj>(['get', 'ciliumidentity', '12345']);
        return n.metadata.labels?.tampered === undefined ? true : undefined;
      },
      { timeoutMs: 10_000 },
    );

    // Delete: gone from the store, gone from the API.
    await env.store.delete({ kind: 'CiliumEndpoint', namespace: 'shop', name: 'web-1' });
    await env.store.delete({ kind: 'CiliumIdentity', namespace: '', name: '12345' });
    await waitFor(
      'the mirrors deleted',
      async () => {
        const ceps = await kubectlJson<{ items: unknown[] }>(['get', 'cep', '-n', 'shop']);
        const ids = await kubectlJson<{ items: unknown[] }>(['get', 'ciliumidentities']);
        return ceps.items.length === 0 && ids.items.length === 0 ? true : undefined;
      },
      { timeoutMs: 10_000 },
    );
    assert.equal(bridge.proc.child.exitCode, null);
  });

  it('imports, and leaves alone, a CiliumNode that someone else made in the API', async () => {
    await env.kube.kubectl(['apply', '-f', '-'], {
      input: `
apiVersion: cilium.io/v2
kind: CiliumNode
metadata: {name: foreign}
spec: {addresses: [{type: InternalIP, ip: 192.168.10.99}]}
`,
    });
    const stored = await waitFor(
      'the foreign CiliumNode in the store',
      () => storeGet('CiliumNode', '', 'foreign'),
      {
        timeoutMs: 10_000,
      },
    );
    assert.equal(stored.metadata.annotations?.[SOURCE_ANNOTATION], 'kubernetes');
    const api = await kubectlJson<Obj>(['get', 'ciliumnode', 'foreign']);
    assert.equal(api.metadata.annotations?.[SOURCE_ANNOTATION], undefined, 'not taken over');
  });
});
