import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { IpamStatusReplySchema } from '@ciliate/contracts';
import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import { ResourceStore } from '@ciliate/store';
import { spawnNode, waitFor, type NodeProcess } from '@ciliate/testkit';
import type { NatsConnection } from '@nats-io/transport-node';

import { ipamClient, owner, startIpam } from './testing.int-helpers.js';

const CLI = join(dirname(fileURLToPath(import.meta.resolve('@ciliate/cli'))), 'main.js');

/** Runs the CLI as an operator: the admin's credentials from the environment. */
async function cli(
  nats: SecureNats,
  args: string[],
): Promise<{ code: number | null; out: string }> {
  const p = spawnNode(CLI, args, {
    env: { CILIATE_CONTEXT_FILE: '/nonexistent/context.json', ...nats.env({ role: 'admin' }) },
  });
  const { code } = await p.exited;
  return { code, out: p.output() };
}

describe('ciliate ipam status', () => {
  let nats: SecureNats;
  let nc: NatsConnection;
  let ipam: NodeProcess;
  let c: ReturnType<typeof ipamClient>;
  before(async () => {
    nats = await startSecureNats({ nodes: ['status-node'] });
    // Pools come from Kubernetes through the kube-bridge, which creates the store.
    nc = await nats.connect({ role: 'kube-bridge' });
    await ResourceStore.open(nc);
    c = ipamClient(nats);
    ipam = await startIpam(nats, ['--cluster-pool-ipv4-cidr', '10.30.0.0/16']);
  });
  after(async () => {
    await ipam?.kill('SIGKILL');
    await c?.close();
    await nc?.close();
    await nats?.close();
  });

  it('shows pools with capacity, used, available and conflicts, and nodes with their CIDRs', async () => {
    const store = await ResourceStore.open(nc);
    const pool = (name: string, cidr: string) => ({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumLoadBalancerIPPool',
      metadata: { name },
      spec: { blocks: [{ cidr }] },
    });
    await store.apply(pool('lb-a', '10.0.6.0/24'));
    await store.apply(pool('lb-b', '10.0.6.128/25'));
    await c.allocate({ node: 'status-node', owner: owner('web') });

    const json = await waitFor('both pools in the status', async () => {
      const r = await cli(nats, ['ipam', 'status', '-o', 'json']);
      assert.equal(r.code, 0, r.out);
      const parsed = IpamStatusReplySchema.parse(JSON.parse(r.out));
      return parsed.pools.length === 2 ? parsed : undefined;
    });
    assert.equal(json.mode, 'cluster-pool');
    assert.deepEqual(
      json.clusterPool.map((p) => [p.family, p.capacity, p.used]),
      [['ipv4', 256, 1]],
    );
    const node = json.nodes.find((n) => n.node === 'status-node');
    assert.ok(node);
    assert.match(node.cidrs.ipv4 ?? '', /^10\.30\.\d+\.0\/24$/);
    assert.equal(node.used, 2); // router and web
    assert.equal(node.capacity, 254);
    const conflicting = json.pools.filter((p) => p.conflicting);
    assert.equal(conflicting.length, 1, JSON.stringify(json.pools));

    const table = await cli(nats, ['ipam', 'status']);
    assert.equal(table.code, 0, table.out);
    assert.match(table.out, /POOL\s+FAMILY\s+KIND\s+CAPACITY\s+USED\s+AVAILABLE\s+CONFLICT/);
    assert.match(table.out, /cluster-pool\s+ipv4/);
    assert.match(table.out, /status-node\s+10\.30\.\d+\.0\/24/);

    const bad = await cli(nats, ['ipam', 'frobnicate']);
    assert.equal(bad.code, 2);
  });
});
