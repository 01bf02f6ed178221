// Three IPAM replicas on a three-server NATS cluster (KV replicated three times), sixteen clients
// allocating and releasing, while replicas are SIGKILLed and restarted at random. A client whose
// request fails (the replica died under it) retries the same owner, as a CNI plugin retries ADD
// and DEL. Checked: no address is ever held by two owners at once, what the clients hold equals
// what the KV holds, and nothing but the router addresses is left once every owner is released.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { CiliateError, buckets, ipamKeys } from '@ciliate/contracts';
import { startSecureNatsCluster, type SecureNatsCluster } from '@ciliate/runtime/testing';
import { ResourceStore } from '@ciliate/store';
import { sleep, type NodeProcess } from '@ciliate/testkit';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

import type { NodePodIpsState } from '@ciliate/ipam-core';
import { ipamClient, owner, startIpam } from './testing.int-helpers.js';

const DURATION_MS = Number(process.env.IPAM_CHAOS_MS ?? 60_000);
const CLIENTS = 16;
const NODES = ['chaos-a', 'chaos-b', 'chaos-c', 'chaos-d'];

describe('IPAM replicas killed at random (three-server NATS cluster)', () => {
  let nats: SecureNatsCluster;
  let nc: NatsConnection;
  let client: ReturnType<typeof ipamClient>;
  const replicas: Array<NodeProcess | undefined> = [];
  const env = { CILIATE_KV_REPLICAS: '3' };
  before(async () => {
    // The clients play the nodes' datapaths; the test reads the bucket as an operator (admin).
    nats = await startSecureNatsCluster({ nodes: NODES });
    nc = await nats.connect();
    // The store's buckets are the kube-bridge's (or an operator's) to create, as in the lab.
    await ResourceStore.open(nc, { replicas: 3 });
    client = ipamClient(nats, 2_000);
  });
  after(async () => {
    for (const r of replicas) await r?.kill('SIGKILL');
    await client?.close();
    await nc?.close();
    await nats?.close();
  });

  it('never double-books and leaks nothing', { timeout: DURATION_MS + 120_000 }, async () => {
    // The first replica creates the replicated bucket; the others start together.
    replicas.push(await startIpam(nats, [], env));
    replicas.push(...(await Promise.all([1, 2].map(() => startIpam(nats, [], env)))));

    const holder = new Map<string, string>(); // ip -> owner pod, while held
    const duplicates: string[] = [];
    let allocations = 0;
    let releases = 0;
    let retries = 0;
    let stop = false;

    const retry = async <T>(what: () => Promise<T>): Promise<T> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await what();
        } catch (err) {
          const code = err instanceof CiliateError ? err.code : 'internal';
          if (!['timeout', 'unavailable', 'conflict', 'internal'].includes(code) || attempt > 200) {
            throw err;
          }
          retries++;
          await sleep(50);
        }
      }
    };

    const runClient = async (c: number): Promise<void> => {
      const mine = new Map<string, { node: string; ip: string }>();
      let seq = 0;
      while (!stop) {
        if (mine.size < 6 && (mine.size === 0 || Math.random() < 0.55)) {
          const pod = `p${c}-${seq++}`;
          const node = NODES[(c + seq) % NODES.length]!;
          const r = await retry(() => client.allocate({ node, owner: owner(pod) }));
          const ip = r.ips.ipv4!;
          const other = holder.get(ip);
          if (other !== undefined && other !== pod) duplicates.push(`${ip}: ${other} and ${pod}`);
          holder.set(ip, pod);
          mine.set(pod, { node, ip });
          allocations++;
        } else {
          const [pod, { node, ip }] = [...mine.entries()][Math.floor(Math.random() * mine.size)]!;
          // From the moment the release is sent the address may be freed and handed out again,
          // even if this client never sees the answer (replica killed, reply timed out).
          if (holder.get(ip) === pod) holder.delete(ip);
          const r = await retry(() => client.release({ node, owner: owner(pod) }));
          // A retried release finds nothing: the first attempt landed before the replica died.
          if (r.released.ipv4 !== undefined) assert.equal(r.released.ipv4, ip);
          mine.delete(pod);
          releases++;
        }
      }
      for (const [pod, { node, ip }] of mine) {
        if (holder.get(ip) === pod) holder.delete(ip);
        await retry(() => client.release({ node, owner: owner(pod) }));
        releases++;
      }
    };

    let kills = 0;
    const chaos = (async () => {
      while (!stop) {
        await sleep(1_000 + Math.random() * 2_000);
        if (stop) break;
        const i = Math.floor(Math.random() * replicas.length);
        await replicas[i]?.kill('SIGKILL');
        replicas[i] = undefined;
        kills++;
        await sleep(300 + Math.random() * 1_000);
        replicas[i] = await startIpam(nats, [], env);
      }
    })();

    const clients = Array.from({ length: CLIENTS }, (_, c) => runClient(c));
    await sleep(DURATION_MS);
    stop = true;
    await chaos;
    await Promise.all(clients);

    assert.deepEqual(duplicates, []);
    assert.ok(allocations > 500, `only ${allocations} allocations in ${DURATION_MS} ms`);

    const kv = await new Kvm(nc).open(buckets.ipam());
    const left: string[] = [];
    const seen = new Set<string>();
    for await (const key of await kv.keys(`${ipamKeys.podIpsPrefix}>`)) {
      const e = await kv.get(key);
      if (!e || e.operation !== 'PUT') continue;
      const doc = e.json<NodePodIpsState>();
      for (const a of doc.ipv4?.allocations ?? []) {
        assert.ok(!seen.has(a.ip), `address ${a.ip} held twice in the KV`);
        seen.add(a.ip);
        if (a.owner !== 'router') left.push(`${key} ${a.owner} ${a.ip}`);
      }
    }
    assert.deepEqual(left, [], 'allocations left after every owner was released');
    assert.equal(holder.size, 0);
    // A restart takes a second or two on a loaded machine: about one kill every 3-6 s.
    assert.ok(kills >= Math.floor(DURATION_MS / 10_000), `only ${kills} kills`);
    console.log(JSON.stringify({ allocations, releases, retries, kills, durationMs: DURATION_MS }));
  });
});
