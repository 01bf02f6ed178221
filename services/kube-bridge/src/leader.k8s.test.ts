// Two replicas and a Kubernetes Lease: the standby keeps its caches warm but writes nothing, to
// the store or to the API, while the leader lives; when the leader is SIGKILLed the standby takes
// over once the lease expires and carries on where it left off.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { waitFor } from '@ciliate/testkit';

import {
  spawnBridge,
  startEnv,
  sumMetric,
  waitLeader,
  waitReady,
  type BridgeProcess,
  type TestEnv,
} from './testing.k8s-helpers.js';

/** Requests a replica made that change something (anything but reads and its Lease). */
function writesToApi(metrics: string): number {
  let n = 0;
  for (const verb of ['create', 'update', 'patch', 'delete']) {
    for (const line of metrics.split('\n')) {
      if (!line.startsWith('ciliate_kube_bridge_api_requests_total{')) continue;
      if (
        !line.includes(`verb="${verb}"`) ||
        line.includes('resource="leases.coordination.k8s.io"')
      )
        continue;
      n += Number(line.trim().split(/\s+/).pop());
    }
  }
  return n;
}

describe('kube-bridge: leader election with a Lease', () => {
  let env: TestEnv;
  const bridges: BridgeProcess[] = [];

  before(async () => {
    env = await startEnv();
  });
  after(async () => {
    for (const b of bridges) await b.kill();
    await env?.close();
  });

  it('a standby does not write while the leader leads, and takes over when it dies', async () => {
    const a = await spawnBridge({
      kubeconfig: env.kube.kubeconfig,
      nats: env.nats,
      node: 'bridge-a',
    });
    bridges.push(a);
    await waitLeader(a);
    await waitReady(a);
    const b = await spawnBridge({
      kubeconfig: env.kube.kubeconfig,
      nats: env.nats,
      node: 'bridge-b',
    });
    bridges.push(b);
    await waitReady(b); // ready as a standby: its caches are warm
    assert.equal(await b.metric('ciliate_kube_bridge_leader'), 0);

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
    assert.match(lease.spec.holderIdentity, /^bridge-a_/);

    // Work for a leader: imports, a status write-back, a mirror.
    await env.kube.kubectl(['create', 'namespace', 'app']);
    for (let i = 0; i < 10; i++) {
      await env.kube.kubectl([
        'create',
        'service',
        'loadbalancer',
        `lb-${i}`,
        '-n',
        'app',
        '--tcp=80:80',
      ]);
    }
    await env.store.apply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNode',
      metadata: { name: 'node-1' },
      spec: { addresses: [{ type: 'InternalIP', ip: '192.168.1.1' }] },
    });
    await env.store.setStatus(
      { kind: 'Service', namespace: 'app', name: 'lb-0' },
      {
        loadBalancer: { ingress: [{ ip: '10.0.6.10' }] },
      },
    );
    await waitFor(
      'the leader to import and write back',
      async () => {
        const svcs = await env.store.list('Service', 'app');
        const { stdout } = await env.kube.kubectl(['get', 'ciliumnodes', '-o', 'name']);
        const lb = (
          await env.kube.kubectl([
            'get',
            'svc',
            'lb-0',
            '-n',
            'app',
            '-o',
            'jsonpath={.status.loadBalancer}',
          ])
        ).stdout;
        return svcs.length === 10 && stdout.includes('node-1') && lb.includes('10.0.6.10')
          ? true
          : undefined;
      },
      { timeoutMs: 15_000 },
    );
    // The standby saw all of it...
    await waitFor(
      "the standby's warm cache",
      async () =>
        (await b.metric('ciliate_kube_bridge_api_objects', { kind: 'Service' })) === 11
          ? true
          : undefined,
      { timeoutMs: 10_000 },
    );
    // ...and wrote none of it.
    const bMetrics = await b.metrics();
    assert.equal(
      sumMetric(bMetrics, 'ciliate_kube_bridge_store_writes_total'),
      0,
      'no store writes',
    );
    assert.equal(sumMetric(bMetrics, 'ciliate_kube_bridge_writebacks_total'), 0, 'no API writes');
    assert.equal(writesToApi(bMetrics), 0, 'no writing request at all');
    assert.ok(sumMetric(await a.metrics(), 'ciliate_kube_bridge_store_writes_total') > 10);
    const revisionBefore = (await env.store.spec.status()).values;

    // The leader dies without a word; the standby waits out the lease (3 s) and takes over.
    const killedAt = Date.now();
    await a.kill('SIGKILL');
    await waitLeader(b, 15_000);
    const takeover = Date.now() - killedAt;
    assert.ok(takeover >= 2500, `not before the lease expired (${takeover} ms)`);
    assert.ok(takeover < 10_000, `soon after it expired (${takeover} ms)`);

    await env.kube.kubectl(['delete', 'service', 'lb-9', '-n', 'app']);
    await env.kube.kubectl(['create', 'service', 'clusterip', 'after', '-n', 'app', '--tcp=80:80']);
    await env.store.setStatus(
      { kind: 'Service', namespace: 'app', name: 'lb-1' },
      {
        loadBalancer: { ingress: [{ ip: '10.0.6.11' }] },
      },
    );
    await waitFor(
      'the new leader to carry on',
      async () => {
        const names = (await env.store.list('Service', 'app')).map((s) => s.object.metadata.name);
        const lb = (
          await env.kube.kubectl([
            'get',
            'svc',
            'lb-1',
            '-n',
            'app',
            '-o',
            'jsonpath={.status.loadBalancer}',
          ])
        ).stdout;
        return !names.includes('lb-9') && names.includes('after') && lb.includes('10.0.6.11')
          ? true
          : undefined;
      },
      { timeoutMs: 15_000 },
    );
    assert.ok((await b.metric('ciliate_kube_bridge_store_writes_total')) > 0);
    assert.ok((await env.store.spec.status()).values >= revisionBefore);
    const after = JSON.parse(
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
    ) as { spec: { holderIdentity: string; leaseTransitions: number } };
    assert.match(after.spec.holderIdentity, /^bridge-b_/);
    assert.equal(after.spec.leaseTransitions, 1);
  });

  it('a leader stopped politely hands over at once', async () => {
    const b = bridges[1]!;
    const c = await spawnBridge({
      kubeconfig: env.kube.kubeconfig,
      nats: env.nats,
      node: 'bridge-c',
      leaseDuration: '30s',
    });
    bridges.push(c);
    await waitReady(c);
    const stoppedAt = Date.now();
    await b.kill('SIGTERM');
    await waitLeader(c, 10_000);
    assert.ok(Date.now() - stoppedAt < 5000, 'the lease was released, not waited out');
  });
});
