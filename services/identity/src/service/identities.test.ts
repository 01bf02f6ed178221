// The service's allocator over the in-memory KV fake: replicas with lagging mirrors (and the
// mirror shortcut for the first binding read) still give one number per label set.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CiliateError, labelSetKey, labelsFromStrings } from '@ciliate/contracts';
import { ConfigError } from '@ciliate/runtime';
import fc from 'fast-check';

import {
  type KvOp,
  type KvResult,
  auditIdentityStore,
  bindingKeyForLabels,
  decodeBindingRecord,
  leaseKey,
  referenceKey,
  type BindingRecord,
  defaultLabelFilter,
  MemoryKv,
} from '@ciliate/identity-core';
import { IdentityAllocator } from './identities.js';
import type { KvExecutor } from './kv.js';
import { IdentityMirror } from './mirror.js';
import { resolveIdentityConfig } from './service.js';

/** Each operation takes a turn of the event loop, so concurrent allocations interleave. */
class SlowKv implements KvExecutor {
  constructor(readonly kv: MemoryKv) {}
  async execute(op: KvOp): Promise<KvResult> {
    await new Promise((r) => setImmediate(r));
    return this.kv.execute(op);
  }
}

/** A mirror fed from the store in order, but late by a random few milliseconds. */
function laggingMirror(kv: MemoryKv, maxLagMs: number): IdentityMirror {
  const mirror = new IdentityMirror();
  const queue: [string, string | undefined, number][] = [];
  let scheduled = false;
  kv.onChange((key, value, revision) => {
    queue.push([key, value, revision]);
    if (scheduled) return;
    scheduled = true;
    setTimeout(() => {
      scheduled = false;
      for (const [k, v, r] of queue.splice(0)) mirror.apply(k, v, r, false);
    }, Math.random() * maxLagMs);
  });
  return mirror;
}

function replica(kv: MemoryKv, range = { min: 256, max: 65535 }, lag = 5): IdentityAllocator {
  return new IdentityAllocator({
    executor: new SlowKv(kv),
    mirror: laggingMirror(kv, lag),
    mirrorSynced: () => true,
    range,
    clusterName: 'default',
    filter: defaultLabelFilter(),
    deadlineMs: 10_000,
    nodeLeaseTtlMs: 60_000,
  });
}

const setOf = (k: number): string[] => [`k8s:app=a${k}`, 'k8s:io.kubernetes.pod.namespace=t'];

describe('IdentityAllocator', () => {
  it('gives one number per label set across replicas with lagging mirrors', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(3), fc.nat(5)), { minLength: 8, maxLength: 40 }),
        async (requests) => {
          const kv = new MemoryKv();
          const replicas = [replica(kv), replica(kv), replica(kv, undefined, 0)];
          const got = await Promise.all(
            requests.map(([r, k], i) =>
              replicas[r % 3]!.allocate({ node: `node-${i % 4}`, labels: setOf(k) }).then(
                (a) => [k, a.id] as const,
              ),
            ),
          );
          const byset = new Map<number, Set<number>>();
          for (const [k, id] of got) byset.set(k, (byset.get(k) ?? new Set()).add(id));
          for (const ids of byset.values()) assert.equal(ids.size, 1);
          assert.equal(new Set([...byset.values()].map((s) => [...s][0])).size, byset.size);
          const audit = auditIdentityStore(kv.entries().map(([k, e]) => [k, e.value] as const));
          assert.deepEqual(audit.violations, []);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('writes the node lease before its hold: the binding it creates, or a reference', async () => {
    const kv = new MemoryKv();
    const order: string[] = [];
    kv.onChange((key) => order.push(key.split('.')[0]!));
    const a = replica(kv, undefined, 0);
    const r = await a.allocate({ node: 'node-a', labels: setOf(1) });
    assert.equal(r.isNew, true);
    assert.ok(order.indexOf('lease') < order.indexOf('labels'));
    assert.ok(kv.get(leaseKey('node-a')) !== undefined);
    const binding = (): BindingRecord =>
      decodeBindingRecord(
        kv.get(bindingKeyForLabels(labelSetKey(labelsFromStrings(setOf(1)))))!.value,
      );
    // The creating node holds the number through the binding: no reference key.
    assert.equal(binding().holder, 'node-a');
    assert.equal(kv.get(referenceKey(r.id, 'node-a')), undefined);
    // Another node asking for the same set writes a reference.
    const again = await a.allocate({ node: 'node-b', labels: setOf(1) });
    assert.equal(again.id, r.id);
    assert.ok(kv.get(referenceKey(r.id, 'node-b')) !== undefined);
    assert.deepEqual(await a.release({ node: 'node-a', id: r.id }), { id: r.id, released: true });
    assert.equal(binding().holder, undefined);
    assert.deepEqual(await a.release({ node: 'node-a', id: r.id }), { id: r.id, released: false });
    assert.deepEqual(await a.release({ node: 'node-b', id: r.id }), { id: r.id, released: true });
    assert.equal(kv.get(referenceKey(r.id, 'node-b')), undefined);
    assert.deepEqual(await a.release({ node: 'node-b', id: r.id }), { id: r.id, released: false });
  });

  it('answers exhaustion and bad label sets with coded errors naming the field', async () => {
    const kv = new MemoryKv();
    const a = replica(kv, { min: 256, max: 257 }, 0);
    await a.allocate({ node: 'n', labels: setOf(1) });
    await a.allocate({ node: 'n', labels: setOf(2) });
    await assert.rejects(a.allocate({ node: 'n', labels: setOf(3) }), (e: unknown) => {
      assert.ok(e instanceof CiliateError);
      assert.equal(e.code, 'exhausted');
      return true;
    });
    for (const [labels, field] of [
      [['k8s:a=1', 'k8s:a=2'], 'labels[1]'],
      [['reserved:nope'], 'labels'],
      [['cidr:10.0.0.0/8'], 'labels'],
      [[], 'labels'],
    ] as const) {
      await assert.rejects(a.allocate({ node: 'n', labels: [...labels] }), (e: unknown) => {
        assert.ok(e instanceof CiliateError);
        assert.equal(e.code, 'bad_request');
        assert.equal(e.field, field, e.message);
        return true;
      });
    }
    await assert.rejects(
      a.allocate({
        node: 'n',
        namespace: 'x',
        podLabels: { 'io.kubernetes.pod.namespace': 'y', a: 'b;' },
      }),
      (e: unknown) => e instanceof CiliateError && e.field === 'podLabels["a"].value',
    );
  });
});

describe('caps on what a node may make the service keep', () => {
  /** An allocator whose mirror follows the store at once, with small caps. */
  function capped(kv: MemoryKv): IdentityAllocator {
    const mirror = new IdentityMirror();
    kv.onChange((key, value, revision) => mirror.apply(key, value, revision, false));
    return new IdentityAllocator({
      executor: new SlowKv(kv),
      mirror,
      mirrorSynced: () => true,
      range: { min: 256, max: 65535 },
      clusterName: 'default',
      filter: defaultLabelFilter(),
      deadlineMs: 10_000,
      nodeLeaseTtlMs: 60_000,
      limits: { maxNodes: 2, maxHoldsPerNode: 2 },
    });
  }
  const refused = (message: RegExp) => (e: unknown) => {
    assert.ok(e instanceof CiliateError, String(e));
    assert.equal(e.code, 'exhausted');
    assert.equal(e.field, 'node');
    assert.match(e.message, message);
    return true;
  };

  it('refuses a node one identity more than it may hold, until it releases one', async () => {
    const kv = new MemoryKv();
    const a = capped(kv);
    const first = await a.allocate({ node: 'n1', labels: setOf(1) });
    await a.allocate({ node: 'n1', labels: setOf(2) });
    await assert.rejects(
      a.allocate({ node: 'n1', labels: setOf(3) }),
      refused(/^node: Too many identities: "n1" holds 2, the limit is 2/),
    );
    assert.equal(kv.get(bindingKeyForLabels(labelSetKey(labelsFromStrings(setOf(3))))), undefined);
    // What it holds already it may ask for again; another node is not held back by n1.
    assert.equal((await a.allocate({ node: 'n1', labels: setOf(1) })).id, first.id);
    assert.equal((await a.allocate({ node: 'n2', labels: setOf(3) })).reserved, false);
    await a.release({ node: 'n1', id: first.id });
    assert.equal((await a.allocate({ node: 'n1', labels: setOf(3) })).reserved, false);
  });

  it('refuses a node more than the cap on nodes, and never a known node', async () => {
    const kv = new MemoryKv();
    const a = capped(kv);
    await a.heartbeat({ node: 'n1' });
    await a.allocate({ node: 'n2', labels: setOf(1) });
    await assert.rejects(
      a.heartbeat({ node: 'n3' }),
      refused(/^node: Too many nodes: 2 nodes have a lease, the limit is 2; "n3"/),
    );
    await assert.rejects(a.allocate({ node: 'n3', labels: setOf(1) }), refused(/Too many nodes/));
    assert.equal(kv.get(leaseKey('n3')), undefined, 'no lease written for the refused node');
    assert.equal((await a.heartbeat({ node: 'n1' })).renewed, true);
    await a.allocate({ node: 'n1', labels: setOf(2) });
    // Once a node's lease is collected, another node may take its place.
    kv.execute({ op: 'delete', key: leaseKey('n1') });
    assert.equal((await a.heartbeat({ node: 'n3' })).renewed, false);
  });
});

describe('identity settings', () => {
  it('names the setting of a bad cluster name, ID or range', () => {
    const base = { clusterName: 'default', clusterId: 0, maxConnectedClusters: '255' as const };
    assert.deepEqual(resolveIdentityConfig(base).range, { min: 256, max: 65535 });
    assert.deepEqual(resolveIdentityConfig({ ...base, clusterName: 'east', clusterId: 3 }).range, {
      min: 3 << 16,
      max: (4 << 16) - 1,
    });
    const bad = (
      over: Partial<typeof base> & { identityRange?: string },
      setting: string,
    ): void => {
      assert.throws(
        () => resolveIdentityConfig({ ...base, ...over }),
        (e: unknown) => e instanceof ConfigError && e.setting === setting,
      );
    };
    bad({ clusterName: 'Not_A_Name' }, 'clusterName');
    bad({ clusterId: 7 }, 'clusterName');
    bad({ clusterName: 'east', clusterId: 256 }, 'clusterId');
    bad({ identityRange: '10-300' }, 'identityRange');
    bad({ identityRange: '400-300' }, 'identityRange');
  });
});
