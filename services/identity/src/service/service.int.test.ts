// The identity service against a real nats-server with mutual TLS and per-principal rights, run
// as a child process with its own credentials. Node-scoped calls are made as the named node's
// datapath, cluster-wide ones and direct reads of the buckets as an operator (the admin).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  CiliateError,
  IdentityAllocateReplySchema,
  IdentityHeartbeatReplySchema,
  IdentityInfoSchema,
  IdentityListReplySchema,
  IdentityReleaseReplySchema,
  IpcacheRecordSchema,
  IpcacheReplySchema,
  buckets,
  type IdentityEndpoint,
  labelSetKey,
  labelsFromStrings,
} from '@ciliate/contracts';
import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import { ResourceStore } from '@ciliate/store';
import { sleep, spawnNode, waitFor } from '@ciliate/testkit';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { z } from 'zod';

import {
  ipcacheKey,
  auditIdentityStore,
  bindingKeyForLabels,
  leaseKey,
  referenceKey,
} from '@ciliate/identity-core';
import {
  IDENTITY,
  MAIN,
  bucketEntries,
  bucketValue,
  identityClient,
  startIdentity,
  type IdentityClient,
  type IdentityProcess,
} from './testing.int-helpers.js';

/** The nodes whose datapath the tests play. */
const NODES = [
  'node-a',
  'node-b',
  'node-c',
  'node-gone',
  'node-alive',
  'node-f',
  'node-capped',
  'n',
];

async function rejectsWith(
  p: Promise<unknown>,
  code: string,
  field?: string,
  message?: RegExp,
): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CiliateError, `a CiliateError, not ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (field !== undefined) assert.equal(err.field, field, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  });
}

describe('the identity service', () => {
  let nats: SecureNats;
  let nc: NatsConnection;
  let client: IdentityClient;
  let call: <S extends z.ZodType>(
    ep: IdentityEndpoint,
    body: unknown,
    reply: S,
  ) => Promise<z.output<S>>;
  const running: IdentityProcess[] = [];
  const start = async (env: Record<string, string> = {}): Promise<IdentityProcess> => {
    const p = await startIdentity(nats, env);
    running.push(p);
    return p;
  };
  const stopAll = async (): Promise<void> => {
    for (const p of running.splice(0)) await p.proc.kill('SIGKILL');
  };
  const allocate = (node: string, labels: string[]) =>
    call('allocate', { node, labels }, IdentityAllocateReplySchema);
  const bound = async (labels: string[]): Promise<number | undefined> => {
    const v = await bucketValue(
      nc,
      buckets.identities(),
      bindingKeyForLabels(labelSetKey(labelsFromStrings(labels))),
    );
    return v === undefined ? undefined : (JSON.parse(v) as { id: number }).id;
  };

  before(async () => {
    nats = await startSecureNats({ nodes: NODES });
    nc = await nats.connect();
    // The store's buckets are the kube-bridge's (or an operator's) to create, as in the lab.
    await ResourceStore.open(nc);
    client = identityClient(nats);
    call = client.call;
  });
  after(async () => {
    await stopAll();
    await client?.close();
    await nc?.close();
    await nats?.close();
  });

  describe('numbers survive restarts', () => {
    after(stopAll);

    it('keeps every identity number across a SIGKILL and a restart', async () => {
      const p = await start();
      const sets = Array.from({ length: 24 }, (_, i) => [
        `k8s:app=keep-${i}`,
        'k8s:io.kubernetes.pod.namespace=restart',
      ]);
      const first = await Promise.all(sets.map((s) => allocate('node-a', s)));
      assert.ok(first.every((r) => r.isNew && !r.reserved));
      assert.equal(
        new Set(first.map((r) => r.id)).size,
        sets.length,
        'distinct sets, distinct numbers',
      );
      await p.proc.kill('SIGKILL');
      await start();
      const again = await Promise.all(sets.map((s) => allocate('node-b', s)));
      assert.deepEqual(
        again.map((r) => r.id),
        first.map((r) => r.id),
      );
      assert.ok(again.every((r) => !r.isNew));
      // The order of labels does not matter.
      const swapped = await allocate('node-c', [...sets[3]!].reverse());
      assert.equal(swapped.id, first[3]!.id);
      const looked = await call('lookup', { id: first[5]!.id }, IdentityInfoSchema);
      assert.deepEqual(looked.labels, [...sets[5]!].sort());
      assert.deepEqual(looked.nodes, ['node-a', 'node-b']);
      assert.equal(looked.references, 2);
      assert.deepEqual(auditIdentityStore(await bucketEntries(nc)).violations, []);
    });
  });

  describe('garbage collection by lease', () => {
    const GRACE = 1500;
    before(async () => {
      await start({
        CILIATE_IDENTITY_GC_GRACE: `${GRACE}ms`,
        CILIATE_IDENTITY_GC_INTERVAL: '100ms',
        CILIATE_IDENTITY_ALLOCATION_DEADLINE: '500ms',
        CILIATE_IDENTITY_KV_TIMEOUT: '1s',
        CILIATE_IDENTITY_NODE_LEASE_TTL: '30s',
        CILIATE_IDENTITY_GC_LEASE_TTL: '1s',
      });
    });
    after(stopAll);

    it('frees a label set released by all nodes after the grace period, not a moment before', async () => {
      const set = ['k8s:app=gc-released', 'k8s:io.kubernetes.pod.namespace=gc'];
      const a = await allocate('node-a', set);
      const b = await allocate('node-b', set);
      assert.equal(a.id, b.id);
      const r = await call('release', { node: 'node-a', id: a.id }, IdentityReleaseReplySchema);
      assert.deepEqual(r, { id: a.id, released: true });
      assert.deepEqual(
        await call('release', { node: 'node-a', id: a.id }, IdentityReleaseReplySchema),
        { id: a.id, released: false },
        'releasing twice is no error',
      );
      // node-b still holds it: well past the grace period it stays.
      await sleep(GRACE * 2.5);
      assert.equal(await bound(set), a.id);
      const info = await call('lookup', { id: a.id }, IdentityInfoSchema);
      assert.deepEqual(info.nodes, ['node-b']);

      await call('release', { node: 'node-b', labels: set }, IdentityReleaseReplySchema);
      const releasedAt = Date.now();
      while (Date.now() < releasedAt + GRACE - 150) {
        assert.equal(
          await bound(set),
          a.id,
          `still bound ${Date.now() - releasedAt}ms after release`,
        );
        await sleep(50);
      }
      await waitFor(
        'the identity to be freed',
        async () => ((await bound(set)) === undefined ? true : undefined),
        { timeoutMs: 15_000 },
      );
      assert.ok(Date.now() - releasedAt >= GRACE);
      // The release deletes the binding first, then the number.
      await waitFor('the number to be free again', async () =>
        (await bucketValue(nc, buckets.identities(), `id.${a.id}`)) === undefined
          ? true
          : undefined,
      );
      await rejectsWith(call('lookup', { id: a.id }, IdentityInfoSchema), 'not_found', 'id');
      assert.deepEqual(auditIdentityStore(await bucketEntries(nc)).violations, []);
    });

    it('frees a number reserved and never bound (its allocator died between its two writes)', async () => {
      // The replicas do not watch `id.*`; the GC finds reservations by listing the keys. The
      // reservation is written with a replica's credentials, as the one that died would have.
      const replica = await nats.connect(IDENTITY);
      try {
        const kv = await new Kvm(replica).open(buckets.identities());
        const labels = 'k8s:app=gc-orphan;k8s:io.kubernetes.pod.namespace=gc;';
        await kv.create('id.65000', JSON.stringify({ v: 1, id: 65000, labels }));
      } finally {
        await replica.close();
      }
      const reservedAt = Date.now();
      await waitFor(
        'the reservation to be freed',
        async () =>
          (await bucketValue(nc, buckets.identities(), 'id.65000')) === undefined
            ? true
            : undefined,
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      assert.ok(Date.now() - reservedAt >= GRACE, 'not before the grace period');
      assert.deepEqual(auditIdentityStore(await bucketEntries(nc)).violations, []);
    });

    it('drops the references of a node whose lease expires, and frees what only it held', async () => {
      const lonely = ['k8s:app=gc-lonely', 'k8s:io.kubernetes.pod.namespace=gc'];
      const shared = ['k8s:app=gc-shared', 'k8s:io.kubernetes.pod.namespace=gc'];
      const l = await allocate('node-gone', lonely);
      const s = await allocate('node-gone', shared);
      await allocate('node-alive', shared);
      // node-gone shortens its lease and then stops heartbeating; node-alive keeps going.
      const hb = await call(
        'heartbeat',
        { node: 'node-gone', ttlMs: 1000 },
        IdentityHeartbeatReplySchema,
      );
      assert.equal(hb.renewed, true);
      const expiresAt = hb.expiresAt;
      const alive = setInterval(() => {
        call('heartbeat', { node: 'node-alive', ttlMs: 1000 }, IdentityHeartbeatReplySchema).catch(
          () => undefined,
        );
      }, 250);
      try {
        while (Date.now() < expiresAt + GRACE - 150) {
          assert.equal(await bound(lonely), l.id, 'not freed before lease expiry + grace');
          await sleep(50);
        }
        await waitFor(
          'the lonely identity to be freed',
          async () => ((await bound(lonely)) === undefined ? true : undefined),
          { timeoutMs: 15_000 },
        );
        assert.equal(
          await bucketValue(nc, buckets.identities(), referenceKey(s.id, 'node-gone')),
          undefined,
          "the expired node's references are gone",
        );
        assert.equal(await bucketValue(nc, buckets.identities(), leaseKey('node-gone')), undefined);
        assert.equal(await bound(shared), s.id, 'what a live node holds stays');
        // Coming back, the node learns its references are gone.
        const back = await call('heartbeat', { node: 'node-gone' }, IdentityHeartbeatReplySchema);
        assert.equal(back.renewed, false);
      } finally {
        clearInterval(alive);
      }
    });
  });

  describe('garbage collection across a leader crash', () => {
    after(stopAll);

    it('a second replica takes the GC lease over and frees everything, with a sound store', async () => {
      const gcEnv = {
        CILIATE_IDENTITY_GC_GRACE: '300ms',
        CILIATE_IDENTITY_GC_INTERVAL: '100ms',
        CILIATE_IDENTITY_ALLOCATION_DEADLINE: '300ms',
        CILIATE_IDENTITY_KV_TIMEOUT: '700ms',
        CILIATE_IDENTITY_GC_LEASE_TTL: '600ms',
      };
      const first = await start({ ...gcEnv, CILIATE_NODE: 'identity-1' });
      await waitFor('identity-1 to lead', () =>
        first.proc.output().includes('"lease.acquired"') ? true : undefined,
      );
      await start({ ...gcEnv, CILIATE_NODE: 'identity-2' });
      const sets = Array.from({ length: 20 }, (_, i) => [
        `k8s:app=failover-${i}`,
        'k8s:io.kubernetes.pod.namespace=gc2',
      ]);
      const ids = await Promise.all(sets.map((set) => allocate('node-f', set)));
      await Promise.all(
        ids.map((r) => call('release', { node: 'node-f', id: r.id }, IdentityReleaseReplySchema)),
      );
      // The leader marks them and holds; it dies in the middle of that.
      await sleep(900);
      await first.proc.kill('SIGKILL');
      await waitFor(
        'every released identity to be freed by the new leader',
        async () => {
          for (const set of sets) if ((await bound(set)) !== undefined) return undefined;
          return true;
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
      await waitFor('the numbers to be deleted too', async () => {
        for (const r of ids) {
          if ((await bucketValue(nc, buckets.identities(), `id.${r.id}`)) !== undefined) {
            return undefined;
          }
        }
        return true;
      });
      assert.deepEqual(auditIdentityStore(await bucketEntries(nc)).violations, []);
      // A set asked for again gets a number again.
      const back = await allocate('node-f', sets[0]!);
      assert.equal(back.isNew, true);
    });
  });

  describe('requests', () => {
    before(async () => {
      await start({ CILIATE_IDENTITY_RANGE: '256-259', CILIATE_CLUSTER_NAME: 'c1' });
    });
    after(stopAll);

    it('answers exhaustion with the exhausted code, and keeps serving existing sets', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 4; i++) ids.push((await allocate('node-a', [`k8s:app=full-${i}`])).id);
      assert.deepEqual(
        [...ids].sort((x, y) => x - y),
        [256, 257, 258, 259],
      );
      await rejectsWith(
        allocate('node-a', ['k8s:app=one-too-many']),
        'exhausted',
        undefined,
        /exhausted/,
      );
      assert.equal((await allocate('node-b', ['k8s:app=full-2'])).id, ids[2]);
    });

    it('answers reserved identities without allocating', async () => {
      const host = await allocate('node-a', ['reserved:host']);
      assert.deepEqual(host, { id: 1, labels: ['reserved:host'], isNew: false, reserved: true });
      const world = await call('lookup', { labels: ['reserved:world'] }, IdentityInfoSchema);
      assert.equal(world.id, 2);
    });

    it('answers bad requests with bad_request naming the field', async () => {
      await rejectsWith(
        call('allocate', { labels: ['k8s:a=b'] }, IdentityAllocateReplySchema),
        'bad_request',
        'node',
      );
      await rejectsWith(
        call(
          'allocate',
          { node: 'n', labels: ['k8s:a=b'], namespace: 'x' },
          IdentityAllocateReplySchema,
        ),
        'bad_request',
        'labels',
      );
      await rejectsWith(allocate('n', ['k8s:ok=1', 'k8s:a=b;c']), 'bad_request', 'labels[1]');
      await rejectsWith(allocate('n', ['k8s:a=1', 'k8s:a=2']), 'bad_request', 'labels[1]');
      await rejectsWith(allocate('n', ['reserved:nonsense']), 'bad_request', 'labels');
      await rejectsWith(allocate('n', ['cidr:10.0.0.0/8']), 'bad_request', 'labels', /node-local/);
      await rejectsWith(
        call('allocate', { node: 'n', podLabels: { app: 'x' } }, IdentityAllocateReplySchema),
        'bad_request',
        'namespace',
      );
      await rejectsWith(
        call(
          'allocate',
          { node: 'n', namespace: 'x', podLabels: { app: 7 } },
          IdentityAllocateReplySchema,
        ),
        'bad_request',
        'podLabels.app',
      );
      await rejectsWith(
        allocate(
          'n',
          Array.from({ length: 513 }, (_, i) => `k8s:l${i}=v`),
        ),
        'bad_request',
        'labels',
        /at most 512 labels/,
      );
      await rejectsWith(call('lookup', {}, IdentityInfoSchema), 'bad_request', 'id');
      await rejectsWith(call('lookup', { id: 60000 }, IdentityInfoSchema), 'not_found', 'id');
      await rejectsWith(
        call('release', { node: 'n', labels: ['k8s:app=never'] }, IdentityReleaseReplySchema),
        'not_found',
        'labels',
      );
      await rejectsWith(
        call(
          'ipcache-upsert',
          { prefix: '10.0.0.0/33', identity: 300, source: 'k8s', ownerKey: 'pod/a/b' },
          IpcacheReplySchema,
        ),
        'bad_request',
        'prefix',
        /prefix length must be 0-32/,
      );
      await rejectsWith(
        call(
          'ipcache-upsert',
          { prefix: '10.0.0.1/32', identity: 300, source: 'nope', ownerKey: 'pod/a/b' },
          IpcacheReplySchema,
        ),
        'bad_request',
        'source',
      );
      // Still serving after all that.
      assert.equal((await allocate('n', ['k8s:app=full-0'])).reserved, false);
    });

    it('lists identities page by page with references', async () => {
      const page = await call('list', { limit: 12 }, IdentityListReplySchema);
      assert.equal(page.identities[0]!.id, 1);
      assert.ok(page.identities.length <= 12);
      const all = await call('list', {}, IdentityListReplySchema);
      const full0 = all.identities.find((i) => i.labels.includes('k8s:app=full-0'));
      assert.ok(full0 !== undefined);
      assert.ok(full0.references >= 1);
      assert.equal(all.total, all.identities.filter((i) => !i.reserved).length);
    });
  });

  describe('the ipcache and CiliumIdentity mirroring', () => {
    before(async () => {
      await start({ CILIATE_CLUSTER_NAME: 'c2' });
    });
    after(stopAll);

    it('publishes reserved world entries and the strongest claim per prefix as a KV view', async () => {
      const world = await waitFor('the world entry', () =>
        bucketValue(nc, buckets.ipcache(), ipcacheKey('0.0.0.0/0')),
      );
      assert.equal(IpcacheRecordSchema.parse(JSON.parse(world)).identity, 2);
      const k8s = await call(
        'ipcache-upsert',
        {
          prefix: '10.1.0.5',
          identity: 300,
          source: 'k8s',
          ownerKey: 'pod/a/web',
          hostIP: '192.168.0.2',
        },
        IpcacheReplySchema,
      );
      assert.equal(k8s.prefix, '10.1.0.5/32');
      assert.equal(k8s.changed, true);
      const local = await call(
        'ipcache-upsert',
        { prefix: '10.1.0.5/32', identity: 301, source: 'local', ownerKey: 'endpoint/node-a/12' },
        IpcacheReplySchema,
      );
      assert.equal(local.effective?.identity, 301);
      const weaker = await call(
        'ipcache-upsert',
        { prefix: '10.1.0.5/32', identity: 302, source: 'restored', ownerKey: 'restored/x' },
        IpcacheReplySchema,
      );
      assert.equal(weaker.changed, false);
      const rec = IpcacheRecordSchema.parse(
        JSON.parse((await bucketValue(nc, buckets.ipcache(), ipcacheKey('10.1.0.5/32')))!),
      );
      assert.equal(rec.identity, 301);
      assert.equal(rec.claims.length, 3);
      const after = await call(
        'ipcache-delete',
        { prefix: '10.1.0.5/32', ownerKey: 'endpoint/node-a/12' },
        IpcacheReplySchema,
      );
      assert.equal(after.effective?.identity, 300, 'the k8s claim shows through');
      assert.equal(after.effective?.hostIP, '192.168.0.2');
      await call(
        'ipcache-delete',
        { prefix: '10.1.0.5/32', ownerKey: 'pod/a/web' },
        IpcacheReplySchema,
      );
      const last = await call(
        'ipcache-delete',
        { prefix: '10.1.0.5/32', ownerKey: 'restored/x' },
        IpcacheReplySchema,
      );
      assert.equal(last.effective, null);
      assert.equal(await bucketValue(nc, buckets.ipcache(), ipcacheKey('10.1.0.5/32')), undefined);
    });

    it('derives pod identities with cluster, service account and namespace labels from the store', async () => {
      // Namespaces come from Kubernetes through the kube-bridge.
      const bridge = await nats.connect({ role: 'kube-bridge' });
      try {
        const store = await ResourceStore.open(bridge);
        await store.apply({
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: {
            name: 'team-a',
            labels: { team: 'a', 'kubernetes.io/metadata.name': 'team-a' },
          },
        });
      } finally {
        await bridge.close();
      }
      const expected = [
        'k8s:app=web',
        // As in Cilium: the namespace's own name label is part of the identity.
        'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=team-a',
        'k8s:io.cilium.k8s.namespace.labels.team=a',
        'k8s:io.cilium.k8s.policy.cluster=c2',
        'k8s:io.cilium.k8s.policy.serviceaccount=web-sa',
        'k8s:io.kubernetes.pod.namespace=team-a',
      ];
      const r = await waitFor('the namespace labels to be seen', async () => {
        const got = await call(
          'allocate',
          {
            node: 'node-a',
            namespace: 'team-a',
            serviceAccount: 'web-sa',
            podLabels: { app: 'web', 'pod-template-hash': '5d9f7c' },
          },
          IdentityAllocateReplySchema,
        );
        return got.labels.includes('k8s:io.cilium.k8s.namespace.labels.team=a') ? got : undefined;
      });
      // pod-template-hash is not identity-relevant.
      assert.deepEqual(r.labels, expected);
    });

    it('mirrors allocated identities as CiliumIdentity objects', async () => {
      const r = await allocate('node-a', ['k8s:app=mirrored', 'k8s:io.kubernetes.pod.namespace=m']);
      const store = await ResourceStore.open(nc);
      const obj = await waitFor('the CiliumIdentity', () =>
        store.get({ kind: 'CiliumIdentity', namespace: '', name: String(r.id) }),
      );
      assert.deepEqual(
        (obj.object as unknown as { 'security-labels': unknown })['security-labels'],
        {
          'k8s:app': 'mirrored',
          'k8s:io.kubernetes.pod.namespace': 'm',
        },
      );
      assert.equal(obj.object.metadata.labels?.['io.kubernetes.pod.namespace'], 'm');
    });

    it('exports ciliate_identity_* metrics', async () => {
      const p = running[running.length - 1]!;
      const text = await (await fetch(`http://${p.httpAddress}/metrics`)).text();
      for (const name of [
        'ciliate_identity_identities_in_use',
        'ciliate_identity_allocations_total',
        'ciliate_identity_frees_total',
        'ciliate_identity_collisions_avoided_total',
        'ciliate_identity_gc_runs_total',
      ]) {
        assert.match(text, new RegExp(`^${name}`, 'm'), name);
      }
    });
  });

  describe('caps on what a client may make the service keep', () => {
    let p: IdentityProcess;
    before(async () => {
      p = await start({
        CILIATE_IDENTITY_MAX_IPCACHE_CLAIMS: '3',
        CILIATE_IDENTITY_MAX_IDENTITIES_PER_NODE: '2',
      });
    });
    after(stopAll);
    const metric = async (labels: string): Promise<number | undefined> => {
      const text = await (await fetch(`http://${p.httpAddress}/metrics`)).text();
      const m = new RegExp(
        `^ciliate_identity_limited_total\\{limit="${labels}"[^}]*\\} (\\d+)$`,
        'm',
      ).exec(text);
      return m === null ? undefined : Number(m[1]);
    };

    it('refuses a claim by one owner more than --max-ipcache-claims on a prefix, keeping the prefix as it was', async () => {
      const claim = (owner: string, source = 'k8s', identity = 300) =>
        call(
          'ipcache-upsert',
          { prefix: '10.9.0.7', identity, source, ownerKey: owner },
          IpcacheReplySchema,
        );
      await claim('pod/a/one');
      await claim('pod/a/two');
      await claim('endpoint/n/3', 'local', 301);
      await rejectsWith(
        claim('pod/a/four', 'kube-apiserver', 302),
        'exhausted',
        'prefix',
        /^prefix: Too many claims: "10.9.0.7\/32" has 3 owners, the limit is 3; "pod\/a\/four" may claim it once another owner deletes its claim$/,
      );
      const stored = IpcacheRecordSchema.parse(
        JSON.parse((await bucketValue(nc, buckets.ipcache(), ipcacheKey('10.9.0.7/32')))!),
      );
      assert.equal(stored.identity, 301, 'the refused stronger claim did not take effect');
      assert.deepEqual(stored.claims.map((c) => c.ownerKey).sort(), [
        'endpoint/n/3',
        'pod/a/one',
        'pod/a/two',
      ]);
      // An owner with a claim may still change it; another prefix has its own count.
      assert.equal((await claim('pod/a/one', 'kube-apiserver', 303)).effective?.identity, 303);
      await call(
        'ipcache-upsert',
        { prefix: '10.9.0.8', identity: 300, source: 'k8s', ownerKey: 'pod/a/four' },
        IpcacheReplySchema,
      );
      await call(
        'ipcache-delete',
        { prefix: '10.9.0.7', ownerKey: 'pod/a/two' },
        IpcacheReplySchema,
      );
      assert.equal((await claim('pod/a/four')).prefix, '10.9.0.7/32');
      assert.equal(await metric('ipcache_claims'), 1);
    });

    it('refuses a node one identity more than --max-identities-per-node until it releases one', async () => {
      const sets = [1, 2, 3].map((i) => [
        `k8s:app=capped-${i}`,
        'k8s:io.kubernetes.pod.namespace=c',
      ]);
      const held = await Promise.all(sets.slice(0, 2).map((s) => allocate('node-capped', s)));
      // The cap is decided on the replica's mirror: wait until it has seen both holds.
      for (const r of held) {
        await waitFor('the hold in the mirror', async () => {
          const info = await call('lookup', { id: r.id }, IdentityInfoSchema);
          return info.nodes.includes('node-capped') ? true : undefined;
        });
      }
      await rejectsWith(
        allocate('node-capped', sets[2]!),
        'exhausted',
        'node',
        /^node: Too many identities: "node-capped" holds 2, the limit is 2/,
      );
      assert.equal(await bound(sets[2]!), undefined, 'nothing written for the refused set');
      assert.equal((await allocate('node-capped', sets[0]!)).id, held[0]!.id, 'asked again');
      await call('release', { node: 'node-capped', id: held[0]!.id }, IdentityReleaseReplySchema);
      const third = await waitFor('the release to be seen', () =>
        allocate('node-capped', sets[2]!).catch((err: unknown) => {
          if (err instanceof CiliateError && err.code === 'exhausted') return undefined;
          throw err;
        }),
      );
      assert.equal(third.reserved, false);
      assert.ok((await metric('holds_per_node'))! >= 1);
    });
  });

  it('refuses bad cluster settings at start, naming the setting', async () => {
    const run = async (
      env: Record<string, string>,
    ): Promise<{ code: number | null; out: string }> => {
      const p = spawnNode(MAIN, [], {
        env: { ...nats.env(IDENTITY), CILIATE_HTTP_ADDRESS: '127.0.0.1:0', ...env },
      });
      const { code } = await p.exited;
      return { code, out: p.output() };
    };
    const badName = await run({ CILIATE_CLUSTER_NAME: 'Bad_Name' });
    assert.equal(badName.code, 2, badName.out);
    assert.match(badName.out, /--cluster-name \(CILIATE_CLUSTER_NAME\)/);
    const idWithoutName = await run({ CILIATE_CLUSTER_ID: '3' });
    assert.equal(idWithoutName.code, 2);
    assert.match(idWithoutName.out, /--cluster-name.*needs a name other than "default"/);
    const badId = await run({ CILIATE_CLUSTER_NAME: 'east', CILIATE_CLUSTER_ID: '300' });
    assert.equal(badId.code, 2);
    assert.match(badId.out, /--cluster-id \(CILIATE_CLUSTER_ID\).*0-255/);
    const badRange = await run({ CILIATE_IDENTITY_RANGE: '100-300' });
    assert.equal(badRange.code, 2);
    assert.match(badRange.out, /--identity-range/);
  });
});
