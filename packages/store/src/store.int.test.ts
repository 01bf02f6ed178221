import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { CiliateError, buckets, resourceKey } from '@ciliate/contracts';
import { Counter, Registry, createLogger } from '@ciliate/runtime';
import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import type { KubeObject } from '@ciliate/resources';
import { Kvm } from '@nats-io/kv';
import { waitFor } from '@ciliate/testkit';
import type { NatsConnection } from '@nats-io/transport-node';

import { Informer, type InformerEvent } from './informer.js';
import { ResourceStore, type RawEvent } from './store.js';

const ns = (name: string, labels: Record<string, string> = {}): unknown => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});
const svc = (name: string, port = 80): unknown => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'app' },
  spec: { type: 'ClusterIP', ports: [{ port, protocol: 'TCP' }], selector: { app: name } },
});

describe('resource store on JetStream KV', () => {
  let nats: SecureNats;
  let nc: NatsConnection;
  let store: ResourceStore;
  before(async () => {
    nats = await startSecureNats();
    // The kube-bridge owns the store: it creates the buckets and writes every kind.
    nc = await nats.connect({ role: 'kube-bridge' });
    store = await ResourceStore.open(nc);
  });
  after(async () => {
    await nc.close();
    await nats.close();
  });

  it('stores, reads, lists and deletes objects with revisions, uid and generation', async () => {
    const a = await store.apply(svc('web'));
    assert.equal(a.changed, true);
    assert.equal(a.object.metadata.resourceVersion, String(a.revision));
    assert.equal(a.object.metadata.generation, 1);
    const uid = a.object.metadata.uid;
    assert.ok(uid);

    const same = await store.apply(svc('web'));
    assert.equal(same.changed, false, 'an unchanged apply writes nothing');
    assert.equal(same.revision, a.revision);

    const b = await store.apply(svc('web', 8080));
    assert.ok(b.revision > a.revision);
    assert.equal(b.object.metadata.uid, uid, 'uid survives updates');
    assert.equal(b.object.metadata.generation, 2);

    await store.setStatus(
      { kind: 'Service', namespace: 'app', name: 'web' },
      { loadBalancer: { ingress: [{ ip: '10.0.6.1' }] } },
    );
    const got = await store.get<
      KubeObject & { status?: unknown; spec: { ports: { port: number }[] } }
    >({ kind: 'Service', namespace: 'app', name: 'web' });
    assert.equal(got?.object.spec.ports[0]!.port, 8080);
    assert.deepEqual(got?.object.status, { loadBalancer: { ingress: [{ ip: '10.0.6.1' }] } });

    await store.apply(svc('api'));
    assert.deepEqual(
      (await store.list('Service', 'app')).map((s) => s.object.metadata.name),
      ['api', 'web'],
    );
    assert.equal(await store.delete({ kind: 'Service', namespace: 'app', name: 'web' }), true);
    assert.equal(await store.delete({ kind: 'Service', namespace: 'app', name: 'web' }), false);
    assert.equal(await store.get({ kind: 'Service', namespace: 'app', name: 'web' }), undefined);
    assert.equal(
      await store.getStatus({ kind: 'Service', namespace: 'app', name: 'web' }),
      undefined,
      'status goes with the object',
    );

    const again = await store.apply(svc('web'));
    assert.notEqual(again.object.metadata.uid, uid, 'a recreated object is a new object');
  });

  it('keeps the identity a source owns (keepMetadata): a recreated Kubernetes object is a new one', async () => {
    const fromApi = (uid: string, generation?: number): unknown => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'kube-owned',
        uid,
        creationTimestamp: '2025-01-02T03:04:05Z',
        ...(generation !== undefined ? { generation } : {}),
      },
    });
    const ref = { kind: 'Namespace', namespace: '', name: 'kube-owned' };
    const a = await store.apply(fromApi('uid-1', 4), { keepMetadata: true });
    assert.equal(a.object.metadata.uid, 'uid-1');
    assert.equal(a.object.metadata.creationTimestamp, '2025-01-02T03:04:05Z');
    assert.equal(a.object.metadata.generation, 4, "the source's generation");
    const b = await store.apply(fromApi('uid-2'), { keepMetadata: true });
    assert.equal(b.object.metadata.uid, 'uid-2', 'not the stored uid');
    assert.equal(typeof b.object.metadata.generation, 'number', 'counted when the source has none');
    const c = await store.apply(fromApi('uid-3'));
    assert.equal(c.object.metadata.uid, 'uid-2', 'without keepMetadata the stored identity wins');
    await store.delete(ref);
  });

  it('writes from a known view without a read, and a stale view is a conflict', async () => {
    const ns = (label: string): unknown => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'viewed', labels: { v: label } },
    });
    const a = await store.apply(ns('1'), { known: { object: undefined, revision: 0 } });
    const b = await store.apply(ns('2'), { known: { object: a.object, revision: a.revision } });
    assert.ok(b.revision > a.revision);
    await assert.rejects(
      store.apply(ns('3'), { known: { object: a.object, revision: a.revision } }),
      (err: unknown) => err instanceof CiliateError && err.code === 'conflict',
    );
    await assert.rejects(
      store.apply(ns('3'), { known: { object: undefined, revision: 0 } }),
      (err: unknown) => err instanceof CiliateError && err.code === 'conflict',
    );
    await store.delete({ kind: 'Namespace', namespace: '', name: 'viewed' });
  });

  it('refuses invalid objects with the field path, and unsupported kinds as not supported', async () => {
    await assert.rejects(
      store.apply({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'x', namespace: 'app' },
        spec: { ports: [{ port: 70000 }] },
      }),
      (err: unknown) => {
        assert.ok(err instanceof CiliateError);
        assert.equal(err.code, 'bad_request');
        assert.equal(err.field, 'spec.ports[0].port');
        return true;
      },
    );
    await assert.rejects(
      store.apply({
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumEnvoyConfig',
        metadata: { name: 'x', namespace: 'app' },
        spec: {},
      }),
      (err: unknown) => {
        assert.ok(err instanceof CiliateError);
        assert.equal(err.code, 'not_supported');
        return true;
      },
    );
  });

  it('compare-and-set: a write against a stale revision is a conflict', async () => {
    const a = await store.apply(ns('cas'));
    await store.apply(ns('cas', { changed: 'yes' }), { expectRevision: a.revision });
    await assert.rejects(
      store.apply(ns('cas', { changed: 'again' }), { expectRevision: a.revision }),
      /conflict|is at revision/,
    );
    assert.equal((await store.apply(ns('cas'))).changed, true, 'a plain apply re-reads and wins');
    await assert.rejects(
      store.apply(ns('brand-new'), { expectRevision: 5 }),
      (e: unknown) => e instanceof CiliateError && e.code === 'conflict',
    );
    await store.apply(ns('brand-new-2'), { expectRevision: 0 });
  });

  it('a watch resumed from a revision sees every change after it, deletes included', async () => {
    await store.apply(ns('w1'));
    const seen: RawEvent[] = [];
    const first = await store.watch({ kind: 'Namespace' }, {}, (e) => seen.push(e));
    await first.synced;
    const resumeFrom = first.revision + 1;
    await first.stop();

    // While nobody watches: a create, an update, a delete.
    await store.apply(ns('w2'));
    await store.apply(ns('w1', { v: '2' }));
    await store.delete({ kind: 'Namespace', namespace: '', name: 'w2' });

    const resumed: RawEvent[] = [];
    const second = await store.watch({ kind: 'Namespace' }, { fromRevision: resumeFrom }, (e) =>
      resumed.push(e),
    );
    await second.synced;
    await second.stop();
    const names = resumed.map((e) => `${e.ref.name}:${e.value === undefined ? 'deleted' : 'put'}`);
    assert.ok(names.includes('w1:put'), names.join(','));
    assert.ok(names.includes('w2:deleted'), `the delete is seen: ${names.join(',')}`);
    assert.ok(resumed.every((e) => e.revision >= resumeFrom));
  });

  it('an informer signals initial sync (also when empty), then delivers changes', async () => {
    const empty = new Informer(store, { kind: 'CiliumNode' });
    await empty.start();
    assert.equal(empty.synced, true);
    assert.deepEqual(empty.list(), []);
    await empty.stop();

    await store.apply(svc('one'));
    const events: InformerEvent<{ metadata: { name: string } }>[] = [];
    const inf = new Informer(store, { kind: 'Service', namespace: 'app' }).on((e) =>
      events.push(e),
    );
    await inf.start();
    assert.ok(inf.get('app', 'one'));
    assert.ok(events.some((e) => e.type === 'ADDED' && e.object.metadata.name === 'one'));
    await store.apply(svc('one', 9090));
    await store.delete({ kind: 'Service', namespace: 'app', name: 'one' });
    await waitFor('the delete', () =>
      events.some((e) => e.type === 'DELETED' && e.object.metadata.name === 'one')
        ? true
        : undefined,
    );
    assert.ok(events.some((e) => e.type === 'MODIFIED' && e.object.metadata.name === 'one'));
    inf.resync();
    assert.ok(events.some((e) => e.type === 'RESYNC'));
    await inf.stop();
  });

  it('the watch survives a NATS restart and misses nothing', async () => {
    const events: InformerEvent<{ metadata: { name: string } }>[] = [];
    const inf = new Informer(store, { kind: 'Namespace' }).on((e) => events.push(e));
    await inf.start();
    await nats.server.stop();
    await nats.server.start();
    await waitFor(
      'reconnect',
      async () => {
        try {
          await store.apply(ns('after-restart'));
          return true;
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    await store.delete({ kind: 'Namespace', namespace: '', name: 'after-restart' });
    await waitFor(
      'events after the restart',
      () =>
        events.some((e) => e.type === 'DELETED' && e.object.metadata.name === 'after-restart')
          ? true
          : undefined,
      { timeoutMs: 20_000 },
    );
    await inf.stop();
  });

  it('an informer parses objects with their schema: an invalid stored object is counted and logged, the last valid version kept', async () => {
    const registry = new Registry();
    const metrics = {
      invalidObjects: new Counter({
        name: 'inv',
        help: 'x',
        labelNames: ['kind'],
        registers: [registry],
      }),
      handlerErrors: new Counter({
        name: 'herr',
        help: 'x',
        labelNames: ['kind'],
        registers: [registry],
      }),
    };
    const lines: { event?: string; reason?: string }[] = [];
    const log = createLogger({
      component: 'test',
      node: 'n',
      instanceId: () => 'i',
      level: 'warn',
      destination: { write: (l: string) => lines.push(JSON.parse(l) as never) },
    });
    await store.apply(svc('typed', 80));
    const inf = new Informer(store, { kind: 'Service', namespace: 'app', log, metrics });
    let handled = 0;
    inf.on(() => {
      handled++;
      throw new Error('a handler bug');
    });
    await inf.start();
    // typed: the schema's defaulted fields are there without a cast
    assert.equal(inf.get('app', 'typed')?.spec.ports?.[0]?.port, 80);
    const raw = await new Kvm(nc).open(buckets.resources());
    const key = resourceKey({ kind: 'Service', namespace: 'app', name: 'typed' });
    await raw.put(
      key,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'typed', namespace: 'app' },
        spec: { ports: [{ port: 'eighty' }] },
      }),
    );
    await waitFor('the invalid object counted', async () => {
      const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'inv');
      return m?.values[0]?.value === 1 ? true : undefined;
    });
    assert.equal(inf.invalid, 1);
    assert.equal(inf.get('app', 'typed')?.spec.ports?.[0]?.port, 80, 'last valid version kept');
    assert.ok(
      lines.some((l) => l.event === 'informer.invalid_object' && /port/.test(l.reason ?? '')),
    );
    const herr = (await registry.getMetricsAsJSON()).find((x) => x.name === 'herr');
    assert.equal(herr?.values[0]?.value, handled);
    assert.ok(lines.some((l) => l.event === 'informer.handler_failed'));
    await store.apply(svc('typed', 81));
    await waitFor('valid again', () =>
      inf.get('app', 'typed')?.spec.ports?.[0]?.port === 81 ? true : undefined,
    );
    assert.equal(inf.invalid, 0);
    await inf.stop();
  });
});
