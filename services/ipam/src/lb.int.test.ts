import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { parseManifests } from '@ciliate/resources';
import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import { ResourceStore } from '@ciliate/store';
import { waitFor, type NodeProcess } from '@ciliate/testkit';
import type { NatsConnection } from '@nats-io/transport-node';

import { ipamClient, seedManifestsDir, startIpam } from './testing.int-helpers.js';

interface SvcStatus {
  loadBalancer?: { ingress?: Array<{ ip?: string }> };
  conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
}

function service(
  namespace: string,
  name: string,
  annotations: Record<string, string> = {},
  type = 'LoadBalancer',
) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, annotations },
    spec: { type, selector: { app: name }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
  };
}

describe('LB-IPAM through the resource store (seed manifests)', () => {
  let nats: SecureNats;
  let nc: NatsConnection;
  let store: ResourceStore;
  let ipam: NodeProcess;
  let c: ReturnType<typeof ipamClient>;
  before(async () => {
    nats = await startSecureNats();
    // Pools and Services come from Kubernetes through the kube-bridge, which creates the store.
    nc = await nats.connect({ role: 'kube-bridge' });
    store = await ResourceStore.open(nc);
    c = ipamClient(nats);
    ipam = await startIpam(nats, ['--resync-interval', '1s']);
  });
  after(async () => {
    await ipam?.kill('SIGKILL');
    await c?.close();
    await nc?.close();
    await nats?.close();
  });

  const status = (ns: string, name: string): Promise<SvcStatus | undefined> =>
    store.getStatus({ kind: 'Service', namespace: ns, name }) as Promise<SvcStatus | undefined>;
  const ingressOf = async (ns: string, name: string): Promise<string | undefined> =>
    (await status(ns, name))?.loadBalancer?.ingress?.[0]?.ip;
  const condition = async (ns: string, name: string) =>
    (await status(ns, name))?.conditions?.find((c) => c.type === 'cilium.io/IPAMRequestSatisfied');

  it('gives plex 10.0.6.14 and smtp-relay 10.0.6.15, another pool address to a third, and clear conditions', async () => {
    const dir = seedManifestsDir();
    for (const file of ['05-lb-ippool.yaml', '07-lb-services.yaml']) {
      const parsed = parseManifests(readFileSync(join(dir, file), 'utf8'), file);
      if (!parsed.ok) assert.fail(JSON.stringify(parsed.errors));
      for (const obj of parsed.objects) await store.apply(obj);
    }
    await waitFor('plex to get 10.0.6.14', async () =>
      (await ingressOf('media', 'plex')) === '10.0.6.14' ? true : undefined,
    );
    await waitFor('smtp-relay to get 10.0.6.15', async () =>
      (await ingressOf('mail', 'smtp-relay')) === '10.0.6.15' ? true : undefined,
    );
    assert.equal((await condition('media', 'plex'))?.status, 'True');

    await store.apply(service('web', 'frontend'));
    const third = await waitFor('frontend to get an address', () => ingressOf('web', 'frontend'));
    assert.match(third, /^10\.0\.6\.\d+$/);
    assert.ok(!['10.0.6.14', '10.0.6.15'].includes(third));

    await store.apply(service('web', 'outside', { 'lbipam.cilium.io/ips': '192.168.77.1' }));
    const outside = await waitFor('a condition on outside', () => condition('web', 'outside'));
    assert.equal(outside.status, 'False');
    assert.match(outside.message, /192\.168\.77\.1/);
    assert.equal(await ingressOf('web', 'outside'), undefined);

    await store.apply(service('web', 'taken', { 'lbipam.cilium.io/ips': '10.0.6.14' }));
    const taken = await waitFor('a condition on taken', () => condition('web', 'taken'));
    assert.equal(taken.status, 'False');
    assert.match(`${taken.reason} ${taken.message}`, /10\.0\.6\.14|already/i);

    // The pool reports its counts in its conditions.
    const poolStatus = (await store.getStatus({
      kind: 'CiliumLoadBalancerIPPool',
      namespace: '',
      name: 'default-pool',
    })) as { conditions?: Array<{ type: string; message: string }> } | undefined;
    assert.ok(poolStatus?.conditions?.some((c) => c.type === 'cilium.io/IPsUsed'));

    // Deleting plex frees 10.0.6.14: the Service that asked for it gets it.
    await store.delete({ kind: 'Service', namespace: 'media', name: 'plex' });
    await waitFor('taken to get 10.0.6.14 once plex is gone', async () =>
      (await ingressOf('web', 'taken')) === '10.0.6.14' ? true : undefined,
    );

    // A Service that stops being a LoadBalancer loses its address.
    await store.apply(service('web', 'frontend', {}, 'ClusterIP'));
    await waitFor('frontend to lose its ingress', async () =>
      (await ingressOf('web', 'frontend')) === undefined ? true : undefined,
    );

    const st = await c.status();
    const pool = st.pools.find((p) => p.pool === 'default-pool');
    assert.ok(pool);
    assert.equal(pool.capacity, 256);
    assert.equal(pool.used, 2); // smtp-relay and taken
    assert.equal(pool.available, 254);
    assert.equal(pool.family, 'ipv4');
  });
});
