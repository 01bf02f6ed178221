// 200 pods created and deleted through the datapath SERVICE (real nats-server, IPAM and identity
// services, the CNI executable run as a runtime runs it), ten at a time with label sets shared
// between them: afterwards no veth, route, endpoints map entry, state file, address lease,
// identity reference, ipcache claim or CiliumEndpoint of theirs is left.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

import { Datapath } from '@ciliate/bpf';
import {
  IdentityListReplySchema,
  IpamListReplySchema,
  buckets,
  identitySubject,
  ipamSubject,
  type IpcacheRecord,
} from '@ciliate/contracts';
import { createRpcClient, disabledTracing } from '@ciliate/runtime';
import { NetScope, waitFor } from '@ciliate/testkit';
import { Kvm } from '@nats-io/kv';

import { ping } from './testing/harness.js';
import { Cluster, type Pod } from './testing/cluster.js';

const execFileP = promisify(execFile);
const PODS = Number(process.env.DATAPATH_CHURN_PODS ?? 200);
const BATCH = 10;

describe('datapath service: pods created and deleted in a loop leave nothing behind', () => {
  const scope = new NetScope();
  const cluster = new Cluster(scope, 'native');

  before(() => cluster.start(1), { timeout: 120_000 });
  after(() => cluster.close());

  it(`${PODS} pods, ${BATCH} at a time`, { timeout: 600_000 }, async () => {
    const node = cluster.nodes[0]!;
    const rpc = createRpcClient(cluster.viewer, disabledTracing);
    const seen: Pod[] = [];
    for (let done = 0; done < PODS; done += BATCH) {
      const pods = await Promise.all(
        Array.from({ length: Math.min(BATCH, PODS - done) }, (_, i) =>
          cluster.addPod(node, `churn-${done + i}`, { app: `set${(done + i) % 4}` }),
        ),
      );
      // every batch is really wired: the node reaches the first pod
      assert.ok(await ping(node.ns.name, pods[0]!.ip), `node reaches ${pods[0]!.name}`);
      await Promise.all(
        pods.map(async (p) => {
          const r = await cluster.delPod(p);
          assert.equal(r.code, 0, `DEL ${p.name}: ${r.stdout} ${r.stderr}`);
          // the runtime removes the sandbox after DEL (the scope's own undo then finds nothing)
          await execFileP('ip', ['netns', 'del', p.ns.name]);
        }),
      );
      seen.push(...pods);
    }
    const ips = new Set(seen.map((p) => p.ip));
    assert.ok(ips.size > BATCH, 'addresses were reused across batches or spread');

    // host veths and routes of the pods
    const links = await node.ns.ip(['-o', 'link', 'show']);
    assert.deepEqual(
      links.split('\n').filter((l) => /: lxc/.test(l)),
      [],
      'no host veth left',
    );
    const routes = await node.ns.ip(['-4', 'route', 'show']);
    const podRoutes = routes.split('\n').filter((l) => ips.has(l.split(' ')[0] ?? ''));
    assert.deepEqual(podRoutes, [], 'no route to a deleted pod left');

    // endpoints map and state files
    const dp = Datapath.load({ pinDir: node.pinDir, objects: ['lxc'] });
    try {
      const left = [...dp.endpoints.keys()].filter((k) => ips.has(k.ip));
      assert.deepEqual(left, [], 'no endpoints map entry left');
      const flows = [...dp.ct4.keys()].filter((k) => ips.has(k.saddr) || ips.has(k.daddr));
      assert.deepEqual(flows, [], 'no conntrack entry of a deleted pod left');
    } finally {
      dp.close();
    }
    let files: string[] = [];
    try {
      files = readdirSync(join(node.stateDir, 'endpoints'));
    } catch {
      files = [];
    }
    assert.deepEqual(files, [], 'no endpoint state file left');

    // address leases at the IPAM service: only the router address
    const leases = await rpc.request(ipamSubject('list'), { node: node.name }, IpamListReplySchema);
    assert.deepEqual(
      leases.allocations.filter((a) => a.owner.includes('/')).map((a) => `${a.owner} ${a.ip}`),
      [],
      'no address lease left',
    );

    // identity references of this node, ipcache claims and CiliumEndpoints: published
    // asynchronously, so they are awaited
    await waitFor('no identity referenced by the node', async () => {
      const ids = await rpc.request(identitySubject('list'), {}, IdentityListReplySchema);
      return ids.identities.some((i) => !i.reserved && i.nodes.includes(node.name))
        ? undefined
        : true;
    });
    const kv = await new Kvm(cluster.viewer).open(buckets.ipcache());
    await waitFor('no ipcache record of a deleted pod', async () => {
      for await (const k of await kv.keys()) {
        const e = await kv.get(k);
        if (e?.operation === 'PUT' && ips.has(e.json<IpcacheRecord>().prefix.split('/')[0]!))
          return undefined;
      }
      return true;
    });
    await waitFor('no CiliumEndpoint left', async () =>
      (await cluster.store.list('CiliumEndpoint')).length === 0 ? true : undefined,
    );
  });
});
