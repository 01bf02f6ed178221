// Three identity replicas on a three-server NATS cluster with replicated buckets, 32 concurrent
// allocators asking for overlapping label sets while replicas are SIGKILLed and restarted at
// random: every caller of one label set gets the same number and the store holds no duplicate.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  CiliateError,
  IdentityAllocateReplySchema,
  labelSetKey,
  labelsFromStrings,
} from '@ciliate/contracts';
import { startSecureNatsCluster, type SecureNatsCluster } from '@ciliate/runtime/testing';
import { ResourceStore } from '@ciliate/store';
import { sleep } from '@ciliate/testkit';
import type { NatsConnection } from '@nats-io/transport-node';

import { auditIdentityStore, parseKey } from '@ciliate/identity-core';
import {
  bucketEntries,
  identityClient,
  startIdentity,
  type IdentityClient,
  type IdentityProcess,
} from './testing.int-helpers.js';

const ALLOCATORS = 32;
const KILLS = 5;
// Allocators pick from a window of label sets that slides every STEP_MS, so new sets keep being
// asked for by many allocators at the same instant throughout the kills.
const WINDOW = 8;
const STEP_MS = 100;
const RETRYABLE = new Set(['timeout', 'unavailable', 'conflict']);
// The allocators play the datapaths of these nodes, each with its own node's credentials.
const NODES = Array.from({ length: 8 }, (_, i) => `node-${i}`);

function labelSet(k: number): string[] {
  return [`k8s:app=app-${k}`, 'k8s:io.kubernetes.pod.namespace=chaos', `k8s:tier=t${k % 3}`];
}

describe('identity replicas under SIGKILL on a NATS cluster', () => {
  let nats: SecureNatsCluster;
  let admin: NatsConnection;
  let client: IdentityClient;
  const replicas: (IdentityProcess | undefined)[] = [];

  const env = (i: number): Record<string, string> => ({
    CILIATE_KV_REPLICAS: '3',
    CILIATE_NODE: `identity-${i}`,
    CILIATE_HTTP_ADDRESS: '127.0.0.1:0',
    CILIATE_MIRROR_CILIUMIDENTITIES: 'false',
    CILIATE_LOG_LEVEL: 'info',
  });

  before(async () => {
    nats = await startSecureNatsCluster({ nodes: NODES });
    admin = await nats.connect();
    // The store's buckets are the kube-bridge's (or an operator's) to create, as in the lab.
    await ResourceStore.open(admin, { replicas: 3 });
    // The first one creates the replicated buckets; the others open them.
    replicas[0] = await startIdentity(nats, env(0));
    const rest = await Promise.all([1, 2].map((i) => startIdentity(nats, env(i))));
    replicas[1] = rest[0];
    replicas[2] = rest[1];
    client = identityClient(nats);
  });

  after(async () => {
    await client?.close();
    await admin?.close().catch(() => undefined);
    for (const r of replicas) await r?.proc.kill('SIGKILL');
    await nats?.close();
  });

  it('gives every caller of one label set the same number, with zero duplicates in the store', async () => {
    const answers = new Map<number, Set<number>>();
    const failures: string[] = [];
    let ok = 0;
    let retried = 0;
    let kills = 0;
    const start = Date.now();
    // Allocators run until the chaos loop has done its kills, however long restarts take.
    let running = true;

    const allocator = async (i: number): Promise<void> => {
      while (running) {
        const k = Math.floor((Date.now() - start) / STEP_MS) + Math.floor(Math.random() * WINDOW);
        try {
          const r = await client.call(
            'allocate',
            { node: NODES[i % NODES.length], labels: labelSet(k) },
            IdentityAllocateReplySchema,
            3000,
          );
          let seen = answers.get(k);
          if (seen === undefined) answers.set(k, (seen = new Set()));
          seen.add(r.id);
          ok++;
        } catch (err) {
          if (err instanceof CiliateError && RETRYABLE.has(err.code)) {
            retried++;
            await sleep(20);
            continue;
          }
          failures.push(err instanceof Error ? err.message : String(err));
          return;
        }
      }
    };

    const chaos = async (): Promise<void> => {
      while (kills < KILLS) {
        await sleep(400 + Math.random() * 900);
        const i = Math.floor(Math.random() * 3);
        await replicas[i]!.proc.kill('SIGKILL');
        kills++;
        replicas[i] = undefined;
        await sleep(100 + Math.random() * 400);
        replicas[i] = await startIdentity(nats, env(i), { waitSynced: false });
      }
      await sleep(1000);
      running = false;
    };

    await Promise.all([chaos(), ...Array.from({ length: ALLOCATORS }, (_, i) => allocator(i))]);

    assert.deepEqual(failures, [], 'only retryable errors');
    assert.equal(kills, KILLS);
    assert.ok(ok >= 200, `enough allocations went through (${ok}, ${retried} retried)`);
    assert.ok(answers.size >= 50, `many label sets were allocated (${answers.size})`);

    for (const [k, ids] of answers) {
      assert.equal(ids.size, 1, `label set ${k} got one number, not ${[...ids].join(', ')}`);
    }
    const byNumber = new Map<number, number>();
    for (const [k, ids] of answers) {
      const id = [...ids][0]!;
      assert.equal(byNumber.get(id), undefined, `sets ${byNumber.get(id)} and ${k} share ${id}`);
      byNumber.set(id, k);
    }

    const entries = await bucketEntries(admin);
    const audit = auditIdentityStore(entries);
    assert.deepEqual(audit.violations, []);
    // Every set the callers got is bound in the store to exactly the number they got.
    const bindings = new Map<string, number>();
    for (const [key, value] of entries) {
      if (parseKey(key)?.kind === 'binding') {
        const b = JSON.parse(value) as { id: number; labels: string };
        assert.equal(bindings.has(b.labels), false, `one binding per label set: ${b.labels}`);
        bindings.set(b.labels, b.id);
      }
    }
    for (const [k, ids] of answers) {
      assert.equal(bindings.get(labelSetKey(labelsFromStrings(labelSet(k)))), [...ids][0]);
    }
    console.log(
      JSON.stringify({
        event: 'chaos.summary',
        allocations: ok,
        retried,
        kills,
        sets: answers.size,
        bound: audit.bound,
        orphanedReservations: audit.reservations.length,
      }),
    );
  });
});
