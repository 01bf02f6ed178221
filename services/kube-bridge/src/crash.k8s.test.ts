// The bridge SIGKILLed in the middle of a stream of creates, updates and deletes, the stream going
// on while it is down (including deletes, and a name deleted and created again), then restarted:
// the store converges to exactly what the API holds. No lost delete, no leftover, and objects from
// other sources untouched.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import type { KubeObject } from '@ciliate/resources';
import { sleep, waitFor } from '@ciliate/testkit';

import { importedByBridge } from './convert.js';
import { KubeApiError } from './kube/client.js';
import {
  spawnBridge,
  startEnv,
  waitLeader,
  waitReady,
  type BridgeProcess,
  type TestEnv,
} from './testing.k8s-helpers.js';

type Snapshot = Map<string, { uid: string; labels: string }>;

describe('kube-bridge: killed mid-stream and restarted', () => {
  let env: TestEnv;
  const bridges: BridgeProcess[] = [];

  before(async () => {
    env = await startEnv({ crds: false });
  });
  after(async () => {
    for (const b of bridges) await b.kill();
    await env?.close();
  });

  const apiSnapshot = async (): Promise<Snapshot> => {
    const out: Snapshot = new Map();
    for (const [kind, path] of [
      ['Namespace', '/api/v1/namespaces'],
      ['Service', '/api/v1/services'],
    ] as const) {
      const list = await env.admin.list<KubeObject>(path);
      for (const o of list.items) {
        const ns = kind === 'Namespace' ? '' : (o.metadata.namespace ?? '');
        out.set(`${kind}/${ns}/${o.metadata.name}`, {
          uid: o.metadata.uid ?? '',
          labels: JSON.stringify(o.metadata.labels ?? {}),
        });
      }
    }
    return out;
  };

  const storeSnapshot = async (): Promise<Snapshot> => {
    const out: Snapshot = new Map();
    for (const { object: o } of await env.store.list()) {
      if (!importedByBridge(o)) continue;
      out.set(`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, {
        uid: o.metadata.uid ?? '',
        labels: JSON.stringify(o.metadata.labels ?? {}),
      });
    }
    return out;
  };

  const same = (a: Snapshot, b: Snapshot): boolean =>
    a.size === b.size &&
    [...a].every(([k, v]) => b.get(k)?.uid === v.uid && b.get(k)?.labels === v.labels);

  it("converges to exactly the API's state", async () => {
    const start = (): Promise<BridgeProcess> =>
      spawnBridge({
        kubeconfig: env.kube.kubeconfig,
        nats: env.nats,
        kindRetryPeriod: '30s',
      });
    const first = await start();
    bridges.push(first);
    await waitLeader(first);
    await waitReady(first);

    // Not from Kubernetes: must survive everything below.
    await env.store.apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'local', namespace: 'churn' },
      spec: { ports: [{ port: 9 }] },
    });

    await env.admin.request('POST', '/api/v1/namespaces', { metadata: { name: 'churn' } });
    await env.admin.request('POST', '/api/v1/namespaces', { metadata: { name: 'doomed' } });
    const svcPath = '/api/v1/namespaces/churn/services';
    const create = (name: string, gen = 0): Promise<unknown> =>
      env.admin.request('POST', svcPath, {
        metadata: { name, labels: { gen: String(gen) } },
        spec: { ports: [{ port: 80 }], selector: { app: name } },
      });
    const relabel = (name: string, gen: number): Promise<unknown> =>
      env.admin.request(
        'PATCH',
        `${svcPath}/${name}`,
        { metadata: { labels: { gen: String(gen) } } },
        'application/merge-patch+json',
      );
    const remove = async (name: string): Promise<void> => {
      try {
        await env.admin.request('DELETE', `${svcPath}/${name}`);
      } catch (err) {
        if (!(err instanceof KubeApiError && err.status === 404)) throw err;
      }
    };

    const live = new Set<string>();
    let step = 0;
    // One operation of the stream: mostly creates, with updates and deletes of earlier objects.
    const op = async (): Promise<void> => {
      step++;
      const name = `svc-${step}`;
      await create(name, step);
      live.add(name);
      if (step % 3 === 0) {
        const victim = `svc-${step - 2}`;
        await remove(victim);
        live.delete(victim);
      }
      if (step % 5 === 0 && live.has(`svc-${step - 1}`))
        await relabel(`svc-${step - 1}`, step * 10);
    };

    for (let i = 0; i < 60; i++) await op();
    // Killed while the stream runs: some events are in flight, some not yet written.
    const stream = (async () => {
      for (let i = 0; i < 60; i++) await op();
    })();
    await sleep(150);
    await first.kill('SIGKILL');
    await stream;

    // While no bridge runs: deletes of objects the store holds, and a name recreated (new uid).
    const before = await storeSnapshot();
    const heldByStore = [...before.keys()]
      .filter((k) => k.startsWith('Service/churn/svc-'))
      .slice(0, 10);
    assert.ok(heldByStore.length > 0, 'the first bridge had imported some of the stream');
    for (const key of heldByStore.slice(0, 5)) {
      const name = key.split('/')[2]!;
      await remove(name);
      live.delete(name);
    }
    const recreated = heldByStore[6]!.split('/')[2]!;
    await remove(recreated);
    await create(recreated, 999);
    live.add(recreated);
    for (let i = 0; i < 20; i++) await op();
    // A namespace deleted for good: no controller here removes its `kubernetes` finalizer, so the
    // test does, the way the namespace controller would.
    await env.admin.request('DELETE', '/api/v1/namespaces/doomed');
    await env.admin.request('PUT', '/api/v1/namespaces/doomed/finalize', {
      metadata: { name: 'doomed' },
      spec: { finalizers: [] },
    });

    const second = await start();
    bridges.push(second);
    await waitLeader(second, 30_000);
    let api = await apiSnapshot();
    await waitFor(
      "the store to hold exactly the API's objects",
      async () => {
        api = await apiSnapshot();
        return same(api, await storeSnapshot()) ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    const store = await storeSnapshot();
    assert.deepEqual([...store.keys()].sort(), [...api.keys()].sort());
    for (const key of heldByStore.slice(0, 5))
      assert.equal(store.has(key), false, `no lost delete: ${key}`);
    const apiRecreated = api.get(`Service/churn/${recreated}`);
    assert.equal(
      store.get(`Service/churn/${recreated}`)?.uid,
      apiRecreated?.uid,
      'the new incarnation',
    );
    assert.notEqual(before.get(`Service/churn/${recreated}`)?.uid, apiRecreated?.uid);
    assert.ok(before.has('Namespace//doomed'));
    assert.equal(store.has('Namespace//doomed'), false, 'no lost delete of a namespace');
    assert.ok(
      await env.store.get({ kind: 'Service', namespace: 'churn', name: 'local' }),
      'an object from another source survives',
    );
    assert.equal(
      [...live].filter((n) => !store.has(`Service/churn/${n}`)).length,
      0,
      'every live object is in the store',
    );
  });
});
