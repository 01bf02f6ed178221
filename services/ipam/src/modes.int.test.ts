import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { CiliateError } from '@ciliate/contracts';
import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import { ResourceStore } from '@ciliate/store';
import { waitFor, type NodeProcess } from '@ciliate/testkit';
import type { NatsConnection } from '@nats-io/transport-node';

import { IPAM, ipamClient, owner, startIpam } from './testing.int-helpers.js';

describe('IPAM modes: kubernetes (Node.spec.podCIDRs) and dual stack', () => {
  let nats: SecureNats;
  let nc: NatsConnection;
  let c: ReturnType<typeof ipamClient>;
  const procs: NodeProcess[] = [];
  before(async () => {
    // Nodes call IPAM as their datapath (unknown-node too: a node the cluster does not know);
    // Kubernetes' objects come through the kube-bridge.
    nats = await startSecureNats({ nodes: ['k8s-node', 'unknown-node'] });
    nc = await nats.connect({ role: 'kube-bridge' });
    c = ipamClient(nats);
  });
  after(async () => {
    for (const p of procs) await p.kill('SIGKILL');
    await c?.close();
    await nc?.close();
    await nats?.close();
  });

  it('kubernetes mode takes Node.spec.podCIDRs, records them, and refuses unknown nodes', async () => {
    const store = await ResourceStore.open(nc);
    await store.apply({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'k8s-node' },
      spec: { podCIDRs: ['10.244.3.0/24', 'fd00:10:244:3::/120'] },
    });
    const p = await startIpam(nats, ['--ipam-mode', 'kubernetes', '--enable-ipv6', 'true']);
    procs.push(p);
    const cidrs = await c.nodeCidrs('k8s-node');
    assert.equal(cidrs.mode, 'kubernetes');
    assert.deepEqual(cidrs.podCIDRs, ['10.244.3.0/24', 'fd00:10:244:3::/120']);
    const a = await c.allocate({ node: 'k8s-node', owner: owner('dual') });
    assert.match(a.ips.ipv4 ?? '', /^10\.244\.3\./);
    assert.match(a.ips.ipv6 ?? '', /^fd00:10:244:3::/);
    const v6only = await c.allocate({ node: 'k8s-node', owner: owner('v6'), family: 'ipv6' });
    assert.equal(v6only.ips.ipv4, undefined);
    await waitFor('the CiliumNode', async () => {
      const cn = await store.get({ kind: 'CiliumNode', namespace: '', name: 'k8s-node' });
      const got = (cn?.object as { spec?: { ipam?: { podCIDRs?: string[] } } } | undefined)?.spec
        ?.ipam?.podCIDRs;
      return got?.length === 2 ? got : undefined;
    });
    try {
      await c.allocate({ node: 'unknown-node', owner: owner('x') });
      assert.fail('expected not_found');
    } catch (err) {
      assert.ok(err instanceof CiliateError);
      assert.equal(err.code, 'not_found');
      assert.match(err.message, /unknown-node/);
    }
    await p.kill('SIGKILL');
  });

  it('refuses a bad pool setting at start, naming the flag', async () => {
    const { spawnNode } = await import('@ciliate/testkit');
    const { MAIN } = await import('./testing.int-helpers.js');
    const p = spawnNode(MAIN, ['--cluster-pool-ipv4-mask-size', '31'], {
      env: { ...nats.env(IPAM), CILIATE_HTTP_ADDRESS: '127.0.0.1:0' },
    });
    procs.push(p);
    const { code } = await p.exited;
    assert.equal(code, 2);
    assert.match(p.output(), /--cluster-pool-ipv4-mask-size/);
  });
});
