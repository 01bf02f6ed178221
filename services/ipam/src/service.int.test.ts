import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { CiliateError, ipamNodeSubject } from '@ciliate/contracts';
import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import { ResourceStore } from '@ciliate/store';
import { sleep, waitFor, type NodeProcess } from '@ciliate/testkit';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';

import { ipamClient, owner, startIpam } from './testing.int-helpers.js';

const IpamAny = z.unknown();

async function failure(p: Promise<unknown>): Promise<CiliateError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CiliateError, `expected a CiliateError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the request to fail');
}

describe('IPAM service: pod addresses and node CIDRs over NATS', () => {
  let nats: SecureNats;
  let nc: NatsConnection;
  let ipam: NodeProcess;
  let store: ResourceStore;
  let c: ReturnType<typeof ipamClient>;
  before(async () => {
    // Nodes call IPAM as their datapath; Kubernetes' objects come through the kube-bridge, which
    // creates the store.
    nats = await startSecureNats({ nodes: ['worker-a', 'worker-b', 'worker-c', 'node-2'] });
    nc = await nats.connect({ role: 'kube-bridge' });
    store = await ResourceStore.open(nc);
    c = ipamClient(nats);
    ipam = await startIpam(nats, [
      '--cluster-pool-ipv4-cidr',
      '10.20.0.0/16',
      '--cluster-pool-ipv4-mask-size',
      '28',
      '--resync-interval',
      '300ms',
    ]);
  });
  after(async () => {
    await ipam?.kill('SIGKILL');
    await c?.close();
    await nc?.close();
    await nats?.close();
  });

  it('gives a retried allocate (same owner) the same address, and a CNI-style error when full', async () => {
    const first = await c.allocate({ node: 'worker-a', owner: owner('web-0') });
    assert.equal(first.created, true);
    assert.match(first.ips.ipv4 ?? '', /^10\.20\.\d+\.\d+$/);
    assert.equal(first.cidrs.ipv4?.endsWith('/28'), true);
    // The pods' gateway travels in the reply, so that agents need no IPAM code to know it.
    assert.equal(first.gateways?.ipv4, firstHostOf(first.cidrs.ipv4));
    assert.notEqual(first.ips.ipv4, first.gateways?.ipv4);
    const again = await c.allocate({ node: 'worker-a', owner: owner('web-0') });
    assert.deepEqual(again.ips, first.ips);
    assert.equal(again.created, false);

    // A /28 offers 14 addresses; the router holds one; web-0 one: 12 more fit.
    const got = new Set([first.ips.ipv4]);
    for (let i = 1; i <= 12; i++) {
      const r = await c.allocate({ node: 'worker-a', owner: owner(`web-${i}`) });
      assert.ok(!got.has(r.ips.ipv4), `duplicate ${r.ips.ipv4}`);
      got.add(r.ips.ipv4);
    }
    const full = await failure(c.allocate({ node: 'worker-a', owner: owner('web-13') }));
    assert.equal(full.code, 'exhausted');
    assert.match(full.message, /RANGE_FULL/);

    // Release then allocate succeeds; a retried release is not an error.
    const rel = await c.release({ node: 'worker-a', owner: owner('web-3') });
    assert.ok(rel.released.ipv4);
    assert.deepEqual((await c.release({ owner: owner('web-3') }, 'worker-a')).released, {});
    const after = await c.allocate({ node: 'worker-a', owner: owner('web-13') });
    assert.equal(after.ips.ipv4, rel.released.ipv4);

    const listed = await c.list('worker-a');
    assert.equal(listed.allocations.length, 14);
    assert.equal(new Set(listed.allocations.map((a) => a.ip)).size, 14);
    assert.ok(listed.allocations.some((a) => a.owner === 'router'));
  });

  it('names the field of a bad request', async () => {
    const raw = await c.datapath('worker-a');
    const allocate = ipamNodeSubject('allocate', 'worker-a');
    const slash = await failure(
      raw.request(allocate, { node: 'worker-a', owner: { ...owner('x'), pod: 'a/b' } }, IpamAny),
    );
    assert.equal(slash.code, 'bad_request');
    assert.equal(slash.field, 'owner.pod');
    const fam = await failure(
      raw.request(allocate, { node: 'worker-a', owner: owner('x'), family: 'ipv7' }, IpamAny),
    );
    assert.equal(fam.field, 'family');
    const node = await failure(
      raw.request(allocate, { node: 'Worker_A', owner: owner('x') }, IpamAny),
    );
    assert.equal(node.code, 'bad_request');
    assert.equal(node.field, 'node');
    const v6 = await failure(c.allocate({ node: 'worker-a', owner: owner('x'), family: 'ipv6' }));
    assert.equal(v6.code, 'not_found');
    assert.match(v6.message, /NO_CIDR/);
  });

  it('carves node CIDRs and records them on the CiliumNode', async () => {
    const a = await c.nodeCidrs('worker-b');
    const b = await c.nodeCidrs('worker-c');
    assert.equal(a.mode, 'cluster-pool');
    assert.notEqual(a.cidrs.ipv4, b.cidrs.ipv4);
    assert.deepEqual(a.gateways, { ipv4: firstHostOf(a.cidrs.ipv4!) });
    assert.deepEqual((await c.nodeCidrs('worker-b')).cidrs, a.cidrs);
    const cn = await waitFor('CiliumNode worker-b', async () =>
      store.get({ kind: 'CiliumNode', namespace: '', name: 'worker-b' }),
    );
    assert.deepEqual((cn.object as { spec: { ipam: { podCIDRs: string[] } } }).spec.ipam.podCIDRs, [
      a.cidrs.ipv4,
    ]);
  });

  it("releases a deleted node's CIDR only after the initial sync, and frees addresses of pods that are gone", async () => {
    const node = (name: string) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name } });
    await store.apply(node('node-1'));
    await store.apply(node('node-2'));
    await store.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'alive', namespace: 'default' },
      spec: { containers: [{ name: 'c', image: 'busybox' }], nodeName: 'node-2' },
    });
    const cidr1 = await waitFor('node-1 to get a CIDR', async () => {
      const cn = await store.get({ kind: 'CiliumNode', namespace: '', name: 'node-1' });
      return (cn?.object as { spec?: { ipam?: { podCIDRs?: string[] } } } | undefined)?.spec?.ipam
        ?.podCIDRs?.[0];
    });
    const alive = await c.allocate({ node: 'node-2', owner: owner('alive') });
    const ghost = await c.allocate({ node: 'node-2', owner: owner('ghost') });

    await store.delete({ kind: 'Node', namespace: '', name: 'node-1' });
    await sleep(1500); // several resyncs: no source has marked the store synced yet
    let status = await c.status();
    assert.ok(status.nodes.some((n) => n.node === 'node-1' && n.cidrs.ipv4 === cidr1));
    assert.ok((await c.list('node-2')).allocations.some((a) => a.ip === ghost.ips.ipv4));

    await store.markSourceSynced('kubernetes');
    await waitFor('node-1 to be released', async () => {
      status = await c.status();
      return status.nodes.some((n) => n.node === 'node-1') ? undefined : true;
    });
    await waitFor('the CiliumNode of node-1 to be deleted', async () =>
      (await store.get({ kind: 'CiliumNode', namespace: '', name: 'node-1' })) ? undefined : true,
    );
    // The nodes without a Node object (worker-*) count as gone too once synced.
    await waitFor('ghost to be freed', async () => {
      const l = await c.list('node-2');
      return l.allocations.some((a) => a.ip === ghost.ips.ipv4) ? undefined : l;
    });
    const l = await c.list('node-2');
    assert.ok(l.allocations.some((a) => a.ip === alive.ips.ipv4));
    assert.match(ipam.output(), /pods\.leak_freed/);
  });

  it('exports the pool, latency, exhaustion and drift metrics', async () => {
    const address = ipam
      .jsonLines<{ event?: string; address?: string }>()
      .find((l) => l.event === 'http.listening')?.address;
    assert.ok(address);
    const text = await waitFor('the cluster pool gauges', async () => {
      const t = await (await fetch(`http://${address}/metrics`)).text();
      return /ciliate_ipam_pool_capacity\{[^}]*pool="cluster-pool"/.test(t) ? t : undefined;
    });
    assert.match(text, /ciliate_ipam_pool_capacity\{[^}]*pool="cluster-pool"[^}]*\} 4096/);
    assert.match(text, /ciliate_ipam_pool_available\{/);
    assert.match(
      text,
      /ciliate_ipam_allocation_duration_seconds_count\{[^}]*kind="pod"[^}]*\} [1-9]/,
    );
    assert.match(text, /ciliate_ipam_exhausted_total\{[^}]*pool="pod-cidr"[^}]*\} 1/);
    assert.match(text, /ciliate_ipam_drift_total\{[^}]*kind="pod_ip"[^}]*\} [1-9]/);
    assert.match(text, /ciliate_ipam_conflicts_total/);
  });
});

/** The first host address of an IPv4 CIDR, written out here so the test does not use the core. */
function firstHostOf(cidr: string): string {
  const [net, len] = cidr.split('/');
  const n = net!.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  assert.ok(Number(len) <= 30, `${cidr} has host addresses`);
  const h = n + 1;
  return [h >>> 24, (h >>> 16) & 255, (h >>> 8) & 255, h & 255].join('.');
}
