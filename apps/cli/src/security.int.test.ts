// The services on a nats-server configured as the lab and deployments run it (mutual TLS, one
// nkey user per component, rights from contracts' permission table): each works with its own
// credentials, and a node's credentials cannot act for another node, write what it does not own
// or read what it does not need; strangers are refused; a viewer reads and changes nothing.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import {
  CiliateError,
  IdentityAllocateReplySchema,
  IdentityListReplySchema,
  IpamAllocateReplySchema,
  IpcacheReplySchema,
  buckets,
  identityNodeSubject,
  identitySubject,
  ipamKeys,
  ipamNodeSubject,
  ipamSubject,
  IpamListReplySchema,
  IpamNodeCidrsReplySchema,
  kvSubjectPrefix,
  type Principal,
} from '@ciliate/contracts';
import { createRpcClient, disabledTracing, natsConnectionOptions } from '@ciliate/runtime';
import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import { ResourceStore } from '@ciliate/store';
import { spawnNode, waitFor, type NodeProcess } from '@ciliate/testkit';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';

const IDENTITY = fileURLToPath(import.meta.resolve('@ciliate/identity/main'));
const IPAM = fileURLToPath(import.meta.resolve('@ciliate/ipam/main'));

const NODE_A: Principal = { role: 'datapath', node: 'node-a' };
const NODE_B: Principal = { role: 'datapath', node: 'node-b' };
const VIEWER: Principal = { role: 'viewer' };

async function refused(p: Promise<unknown>, code: string, field?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CiliateError, String(err));
    assert.equal(err.code, code, err.message);
    if (field !== undefined) assert.equal(err.field, field, err.message);
    return true;
  });
}

describe('NATS identities and least privilege', () => {
  let nats: SecureNats;
  const procs: NodeProcess[] = [];
  let admin: NatsConnection;
  let a: NatsConnection;
  let viewer: NatsConnection;

  before(async () => {
    nats = await startSecureNats([{ role: 'identity' }, { role: 'ipam' }, NODE_A, NODE_B, VIEWER]);
    // The store's buckets are the kube-bridge's (or an operator's) to create, as in the lab.
    admin = await nats.connect();
    await ResourceStore.open(admin);
    const common = { CILIATE_HTTP_ADDRESS: '127.0.0.1:0', CILIATE_NODE: 'control' };
    procs.push(
      spawnNode(IDENTITY, [], { env: { ...common, ...nats.env({ role: 'identity' }) } }),
      spawnNode(IPAM, [], {
        env: {
          ...common,
          ...nats.env({ role: 'ipam' }),
          CILIATE_CLUSTER_POOL_IPV4_CIDR: '10.80.0.0/16',
          CILIATE_CLUSTER_POOL_IPV4_MASK_SIZE: '24',
        },
      }),
    );
    for (const p of procs) {
      await waitFor(
        'a service to start with its own credentials',
        () => {
          if (p.child.exitCode !== null) throw new Error(`exited: ${p.output()}`);
          return p.output().includes('service.started') || undefined;
        },
        { timeoutMs: 30_000 },
      );
    }
    a = await nats.connect(NODE_A);
    viewer = await nats.connect(VIEWER);
    // IPAM answers once it has loaded the store.
    const rpc = createRpcClient(a, disabledTracing);
    await waitFor(
      'IPAM to answer node-a',
      () =>
        rpc
          .request(
            ipamNodeSubject('node-cidrs', 'node-a'),
            { node: 'node-a' },
            IpamNodeCidrsReplySchema,
          )
          .then(() => true)
          .catch(() => undefined),
      { timeoutMs: 30_000 },
    );
  });

  after(async () => {
    for (const nc of [admin, a, viewer]) await nc?.close().catch(() => undefined);
    for (const p of procs) await p.kill('SIGKILL');
    await nats?.close();
  });

  it("a node's datapath allocates and claims for itself, and only for itself", async () => {
    const rpc = createRpcClient(a, disabledTracing);
    const owner = { namespace: 'default', pod: 'web', containerID: 'c1', ifname: 'eth0' };
    const mine = await rpc.request(
      ipamNodeSubject('allocate', 'node-a'),
      { node: 'node-a', owner },
      IpamAllocateReplySchema,
    );
    const ip = mine.ips.ipv4!;
    assert.ok(ip.startsWith('10.80.'));
    // Another node's subject: the server refuses the publish, nothing reaches IPAM.
    await assert.rejects(
      rpc.request(
        ipamNodeSubject('allocate', 'node-b'),
        { node: 'node-b', owner },
        IpamAllocateReplySchema,
        { timeoutMs: 1500 },
      ),
    );
    // Its own subject with another node in the body: refused by the service, naming the field.
    await refused(
      rpc.request(
        ipamNodeSubject('allocate', 'node-a'),
        { node: 'node-b', owner },
        IpamAllocateReplySchema,
      ),
      'forbidden',
      'node',
    );
    const list = await createRpcClient(admin, disabledTracing).request(
      ipamSubject('list'),
      {},
      IpamListReplySchema,
    );
    assert.deepEqual(
      list.allocations.filter((x) => x.owner.startsWith('default/')).map((x) => x.node),
      ['node-a'],
    );
    // Its pod's address: accepted; an address IPAM did not give that pod, or another owner: not.
    const claim = { identity: 300, source: 'local', ownerKey: 'pod/default/web' };
    const ok = await rpc.request(
      identityNodeSubject('ipcache-upsert', 'node-a'),
      { ...claim, prefix: `${ip}/32` },
      IpcacheReplySchema,
    );
    assert.equal(ok.effective?.identity, 300);
    await refused(
      rpc.request(
        identityNodeSubject('ipcache-upsert', 'node-a'),
        { ...claim, prefix: '10.80.200.9/32' },
        IpcacheReplySchema,
      ),
      'forbidden',
      'prefix',
    );
    await refused(
      rpc.request(
        identityNodeSubject('ipcache-upsert', 'node-a'),
        { ...claim, prefix: '0.0.0.0/0' },
        IpcacheReplySchema,
      ),
      'forbidden',
      'prefix',
    );
    await refused(
      rpc.request(
        identityNodeSubject('ipcache-upsert', 'node-a'),
        { ...claim, prefix: `${ip}/32`, ownerKey: 'node/node-b' },
        IpcacheReplySchema,
      ),
      'forbidden',
      'ownerKey',
    );
    await refused(
      rpc.request(
        identityNodeSubject('ipcache-upsert', 'node-a'),
        { ...claim, prefix: `${ip}/32`, source: 'kube-apiserver' },
        IpcacheReplySchema,
      ),
      'forbidden',
      'source',
    );
    // The cluster-wide claim endpoint is not a node's to call.
    await assert.rejects(
      rpc.request(
        identitySubject('ipcache-upsert'),
        { ...claim, prefix: '10.80.200.9/32' },
        IpcacheReplySchema,
        {
          timeoutMs: 1500,
        },
      ),
    );
    const id = await rpc.request(
      identityNodeSubject('allocate', 'node-a'),
      { node: 'node-a', labels: ['k8s:app=web'] },
      IdentityAllocateReplySchema,
    );
    assert.ok(id.id >= 256);
  });

  it("a node's credentials cannot write the resource store or read state it does not need", async () => {
    const kvm = new Kvm(a);
    // Opening may bind without asking the server; reading is what the server refuses.
    await assert.rejects((async () => (await kvm.open(buckets.identities())).get('id.256'))());
    // Of IPAM's bucket, only the node CIDRs its routes are checked against, and only by a get
    // that names the key: not another key, not a get by request body, not a wider watch.
    const ipam = await kvm.open(buckets.ipam(), { allow_direct: true });
    assert.ok(await ipam.get(ipamKeys.nodeCidrs));
    await assert.rejects(ipam.get(ipamKeys.podIps('node-a')));
    await assert.rejects((async () => (await kvm.open(buckets.ipam())).get(ipamKeys.nodeCidrs))());
    // No consumer on IPAM's bucket at all, even one naming the allowed key: no watch of it.
    const prefix = kvSubjectPrefix(buckets.ipam());
    await assert.rejects(
      a.request(
        `$JS.API.CONSUMER.CREATE.KV_${buckets.ipam()}.sneaky.${prefix}${ipamKeys.nodeCidrs}`,
        JSON.stringify({
          stream_name: `KV_${buckets.ipam()}`,
          config: {
            name: 'sneaky',
            filter_subject: `${prefix}${ipamKeys.podIps('node-a')}`,
            deliver_policy: 'last_per_subject',
            ack_policy: 'none',
          },
        }),
        { timeout: 1500 },
      ),
      /Permissions Violation/,
    );
    // A write to a Pod's key is refused by the server: the publish never lands.
    const subject = `${kvSubjectPrefix(buckets.resources())}Pod.default.evil`;
    await assert.rejects(a.request(subject, new TextEncoder().encode('{}'), { timeout: 1500 }));
    const store = await new Kvm(admin).open(buckets.resources());
    assert.equal(await store.get('Pod.default.evil'), null);
  });

  it('refuses clients without credentials, with unknown ones, or without a client certificate', async () => {
    const files = nats.env(VIEWER);
    // No TLS, no nkey.
    await assert.rejects(connect({ servers: nats.server.url, timeout: 2000, reconnect: false }));
    // TLS but no client certificate.
    await assert.rejects(
      connect({
        servers: nats.url,
        tls: { caFile: files.CILIATE_NATS_TLS_CA! },
        timeout: 2000,
        reconnect: false,
      }),
    );
    // A valid certificate, but an nkey the server does not know.
    const { nkeys } = await import('@nats-io/transport-node');
    const stranger = nkeys.createUser();
    const dir = (await import('node:fs/promises')).mkdtemp;
    const tmp = await dir('/tmp/ciliate-stranger-');
    const seedFile = `${tmp}/seed`;
    await (
      await import('node:fs/promises')
    ).writeFile(seedFile, new TextDecoder().decode(stranger.getSeed()));
    try {
      await assert.rejects(
        connect({
          ...natsConnectionOptions({
            servers: nats.url,
            name: 'stranger',
            nkeySeedFile: seedFile,
            tlsCaFile: files.CILIATE_NATS_TLS_CA,
            tlsCertFile: files.CILIATE_NATS_TLS_CERT,
            tlsKeyFile: files.CILIATE_NATS_TLS_KEY,
          }),
          reconnect: false,
        }),
      );
    } finally {
      await (await import('node:fs/promises')).rm(tmp, { recursive: true, force: true });
    }
  });

  it('a viewer reads and cannot change anything', async () => {
    const rpc = createRpcClient(viewer, disabledTracing);
    const ids = await rpc.request(identitySubject('list'), {}, IdentityListReplySchema);
    assert.ok(ids.identities.some((i) => i.labels.includes('k8s:app=web')));
    await assert.rejects(
      rpc.request(
        identityNodeSubject('allocate', 'node-a'),
        { node: 'node-a', labels: ['k8s:app=viewer'] },
        IdentityAllocateReplySchema,
        { timeoutMs: 1500 },
      ),
    );
    const kv = await new Kvm(viewer).open(buckets.resources());
    await assert.rejects(kv.put('Pod.default.viewer', '{}'));
    // The services are still up and answering after every refusal.
    for (const p of procs) assert.equal(p.child.exitCode, null);
  });
});
