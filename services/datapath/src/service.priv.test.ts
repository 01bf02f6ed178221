// The datapath service end to end: two nodes (network namespaces on one bridge segment), a real
// nats-server, the IPAM and identity services and a ciliate-datapath per node, pods made by the
// CNI plugin exactly as a runtime makes them. Pods reach each other on one node and across
// nodes, in native routing and in VXLAN mode; CiliumEndpoints, identities and ipcache entries
// come and go with the pods; the service killed mid-stream, and NATS stopped for ten seconds,
// never stall a TCP stream between nodes for a second.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Datapath } from '@ciliate/bpf';
import {
  BpfIpcacheListReplySchema,
  EndpointListReplySchema,
  IdentityListReplySchema,
  datapathSubjects,
  IpcacheReplySchema,
  buckets,
  identitySubject,
  identityNodeSubject,
  ipamNodeSubject,
  IpamAllocateReplySchema,
  type IpcacheRecord,
} from '@ciliate/contracts';
import { createRpcClient, disabledTracing } from '@ciliate/runtime';
import { NetScope, sleep, waitFor } from '@ciliate/testkit';
import { Kvm } from '@nats-io/kv';

import {
  echoServer,
  ping,
  PLUGIN,
  REFERENCE_PLUGINS,
  runPluginIn,
  tcpEcho,
} from './testing/harness.js';
import {
  Cluster,
  readyz,
  tcpStream,
  udpEcho,
  type ClusterNode,
  type Pod,
} from './testing/cluster.js';

interface CepView {
  metadata: { name: string; namespace: string };
  status?: {
    id?: number;
    identity?: { id?: number; labels?: string[] };
    networking?: { addressing?: { ipv4?: string }[]; node?: string };
    state?: string;
  };
}

for (const routing of ['native', 'vxlan'] as const) {
  describe(`datapath service, two nodes, ${routing} routing`, () => {
    const scope = new NetScope();
    const cluster = new Cluster(scope, routing);
    let a: ClusterNode;
    let b: ClusterNode;
    let a1: Pod;
    let a2: Pod;
    let b1: Pod;

    const ceps = async () =>
      (await cluster.store.list('CiliumEndpoint', 'default')).map((r) => r.object as CepView);
    const ipcacheRecords = async (): Promise<Map<string, IpcacheRecord>> => {
      const kv = await new Kvm(cluster.viewer).open(buckets.ipcache());
      const out = new Map<string, IpcacheRecord>();
      for await (const k of await kv.keys()) {
        const e = await kv.get(k);
        if (e && e.operation === 'PUT') {
          const r = e.json<IpcacheRecord>();
          out.set(r.prefix, r);
        }
      }
      return out;
    };
    const bpfIpcache = (node: ClusterNode) => {
      const dp = Datapath.load({ pinDir: node.pinDir, objects: ['lxc'] });
      try {
        return new Map([...dp.ipcache.entries()].map(([k, v]) => [k.prefix, v]));
      } finally {
        dp.close();
      }
    };
    const endpointIds = (node: ClusterNode) => {
      const dp = Datapath.load({ pinDir: node.pinDir, objects: ['lxc'] });
      try {
        return [...dp.endpoints.entries()].map(([k, v]) => `${k.ip}:${v.endpointId}`).sort();
      } finally {
        dp.close();
      }
    };

    before(async () => {
      await cluster.start(2);
      [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
      a1 = await cluster.addPod(a, 'web-a1', { app: 'web' });
      a2 = await cluster.addPod(a, 'db-a2', { app: 'db' });
      b1 = await cluster.addPod(b, 'web-b1', { app: 'web' });
    });

    after(async () => {
      await cluster.close();
    });

    it('pods get addresses from their node pod CIDR and the router as gateway', () => {
      const netA = a1.ip.split('.').slice(0, 3).join('.');
      assert.equal(a2.ip.split('.').slice(0, 3).join('.'), netA, 'same node, same /24');
      assert.notEqual(b1.ip.split('.').slice(0, 3).join('.'), netA, 'other node, other /24');
      assert.equal(a1.result.ips![0]!.gateway, `${netA}.1`);
    });

    it('ICMP on one node, across nodes, and to the nodes', async () => {
      assert.ok(await ping(a1.ns.name, a2.ip), 'a1 -> a2 (same node)');
      assert.ok(await ping(a1.ns.name, b1.ip), 'a1 -> b1 (across nodes)');
      assert.ok(await ping(b1.ns.name, a2.ip), 'b1 -> a2 (across nodes)');
      assert.ok(await ping(a1.ns.name, a.ip), 'a1 -> its node');
      assert.ok(await ping(a1.ns.name, b.ip), 'a1 -> the other node');
    });

    it('TCP and UDP on one node and across nodes', async () => {
      const tcp = await echoServer(b1.ns.name, 7000);
      const udp = await echoServer(b1.ns.name, 7001, 'udp');
      const tcpA = await echoServer(a2.ns.name, 7000);
      try {
        assert.ok(await tcpEcho(a1.ns.name, b1.ip, 7000, 300_000), 'TCP a1 -> b1');
        assert.ok(await tcpEcho(a1.ns.name, a2.ip, 7000, 300_000), 'TCP a1 -> a2');
        assert.equal(await udpEcho(a2.ns.name, b1.ip, 7001, 5), 5, 'UDP a2 -> b1');
      } finally {
        tcp.stop();
        udp.stop();
        tcpA.stop();
      }
    });

    it('CiliumEndpoints, identities and ipcache entries appear for every pod', async () => {
      const list = await waitFor('three CiliumEndpoints', async () => {
        const l = await ceps();
        return l.length === 3 && l.every((c) => c.status?.state === 'ready') ? l : undefined;
      });
      const byName = new Map(list.map((c) => [c.metadata.name, c]));
      for (const p of [a1, a2, b1]) {
        const c = byName.get(p.name);
        assert.ok(c, p.name);
        assert.equal(c.status?.networking?.addressing?.[0]?.ipv4, p.ip);
        assert.equal(c.status?.networking?.node, p.node.name);
        assert.ok((c.status?.identity?.id ?? 0) >= 256, 'a global identity');
        assert.ok(c.status?.identity?.labels?.includes('k8s:app=' + p.name.split('-')[0]));
        assert.ok((c.status?.id ?? 0) >= 1);
      }
      // same labels, same identity across nodes; other labels, another one
      assert.equal(
        byName.get('web-a1')?.status?.identity?.id,
        byName.get('web-b1')?.status?.identity?.id,
      );
      assert.notEqual(
        byName.get('web-a1')?.status?.identity?.id,
        byName.get('db-a2')?.status?.identity?.id,
      );
      const rpc = createRpcClient(cluster.viewer, disabledTracing);
      const ids = await rpc.request(identitySubject('list'), {}, IdentityListReplySchema);
      const web = ids.identities.find((i) => i.id === byName.get('web-a1')?.status?.identity?.id);
      assert.deepEqual(web?.nodes.sort(), ['node-a', 'node-b']);

      const records = await waitFor('ipcache records of the pods', async () => {
        const r = await ipcacheRecords();
        return [a1, a2, b1].every((p) => r.has(`${p.ip}/32`)) ? r : undefined;
      });
      assert.equal(records.get(`${b1.ip}/32`)?.hostIP, b.ip);
      // node A's BPF ipcache mirrors the bucket: b1 with its identity (and node B as tunnel
      // endpoint in VXLAN mode), node B as remote-node, itself as host
      const m = await waitFor('node A mirrors b1', () => {
        const m = bpfIpcache(a);
        return m.get(`${b1.ip}/32`) ? m : undefined;
      });
      assert.equal(m.get(`${b1.ip}/32`)?.identity, byName.get('web-b1')?.status?.identity?.id);
      assert.equal(m.get(`${b1.ip}/32`)?.tunnelEndpoint, routing === 'vxlan' ? b.ip : null);
      assert.equal(m.get(`${b.ip}/32`)?.identity, 6);
      assert.equal(m.get(`${a.ip}/32`)?.identity, 1);

      // the node-scoped endpoints `ciliate endpoint list` and `bpf ipcache list` read
      const eps = await rpc.request(
        datapathSubjects.endpoint('node-a', 'endpoint-list'),
        {},
        EndpointListReplySchema,
      );
      const a1Info = eps.endpoints.find((e) => e.pod === 'web-a1');
      assert.equal(a1Info?.ipv4, a1.ip);
      assert.equal(a1Info?.identity, byName.get('web-a1')?.status?.identity?.id);
      assert.ok(a1Info?.labels.includes('k8s:app=web'), JSON.stringify(a1Info?.labels));
      assert.deepEqual(eps.endpoints.map((e) => e.pod).sort(), ['db-a2', 'web-a1']);
      const ipc = await rpc.request(
        datapathSubjects.endpoint('node-b', 'ipcache-list'),
        {},
        BpfIpcacheListReplySchema,
      );
      assert.ok(ipc.entries.some((e) => e.prefix === `${a1.ip}/32`));
    });

    it('CiliumNodes carry pod CIDRs and addresses; routes lead to the other node', async () => {
      const cn = await waitFor('both CiliumNodes with addresses', async () => {
        const l = (await cluster.store.list('CiliumNode')).map(
          (r) =>
            r.object as {
              metadata: { name: string };
              spec: { addresses?: { type: string; ip: string }[]; ipam?: { podCIDRs?: string[] } };
            },
        );
        return l.length === 2 && l.every((n) => n.spec.addresses?.length && n.spec.ipam?.podCIDRs)
          ? l
          : undefined;
      });
      const cnB = cn.find((n) => n.metadata.name === 'node-b')!;
      assert.deepEqual(cnB.spec.addresses, [{ type: 'InternalIP', ip: b.ip }]);
      const routes = JSON.parse(await a.ns.ip(['-j', 'route', 'show', 'proto', '193'])) as {
        dst: string;
        gateway?: string;
        dev: string;
      }[];
      assert.equal(routes.length, 1);
      assert.equal(routes[0]!.dst, cnB.spec.ipam!.podCIDRs![0]);
      if (routing === 'native') assert.equal(routes[0]!.gateway, b.ip);
      else assert.equal(routes[0]!.dev, 'cilium_vxlan');
    });

    it('DEL removes the CiliumEndpoint, the ipcache entry everywhere and the identity reference', async () => {
      const r = await cluster.delPod(a2);
      assert.equal(r.code, 0, r.stdout);
      await waitFor('the CiliumEndpoint of db-a2 gone', async () =>
        (await ceps()).some((c) => c.metadata.name === 'db-a2') ? undefined : true,
      );
      await waitFor('the ipcache record of db-a2 gone', async () =>
        (await ipcacheRecords()).has(`${a2.ip}/32`) ? undefined : true,
      );
      await waitFor('node B no longer maps db-a2', () =>
        bpfIpcache(b).has(`${a2.ip}/32`) ? undefined : true,
      );
      const rpc = createRpcClient(cluster.viewer, disabledTracing);
      const ids = await rpc.request(identitySubject('list'), {}, IdentityListReplySchema);
      const db = ids.identities.find((i) => i.labels.includes('k8s:app=db'));
      assert.ok(!db || !db.nodes.includes('node-a'), 'node A no longer references db');
      assert.equal((await cluster.delPod(a2)).code, 0, 'DEL twice');
    });

    it('STATUS: ready while IPAM answers, 50 naming IPAM while it does not', async (t) => {
      const status = () =>
        runPluginIn(
          a.ns.name,
          PLUGIN,
          { CNI_COMMAND: 'STATUS', CNI_PATH: REFERENCE_PLUGINS },
          { ...cluster.conf(a), cniVersion: '1.1.0' },
        );
      const ok = await status();
      assert.equal(ok.code, 0, ok.stdout);
      // IPAM stopped (not killed): its subscriptions stay, requests go unanswered
      const pid = cluster.ipam.proc.child.pid!;
      process.kill(pid, 'SIGSTOP');
      t.after(() => process.kill(pid, 'SIGCONT'));
      const down = await status();
      process.kill(pid, 'SIGCONT');
      assert.equal(down.code, 1, down.stdout);
      assert.equal(down.json?.code, 50, down.stdout);
      assert.match(String(down.json?.msg), /cannot tell whether pod addresses are left: IPAM list/);
      const again = await status();
      assert.equal(again.code, 0, again.stdout);
    });

    it('the service killed and restarted mid-stream: no stall, no endpoint lost', async (t) => {
      const before = endpointIds(a);
      // left by a run of node a's datapath that died before it could clean up, made with its
      // credentials: swept after the restart
      const nodeA = { role: 'datapath', node: a.name } as const;
      const rpc = createRpcClient(await cluster.connect(nodeA), disabledTracing);
      const storeA = await cluster.storeAs(nodeA);
      // The claim was legitimate when made: IPAM gave the ghost pod its address on node a.
      const ghost = await rpc.request(
        ipamNodeSubject('allocate', a.name),
        {
          node: a.name,
          owner: { namespace: 'default', pod: 'ghost', containerID: 'c-ghost', ifname: 'eth0' },
        },
        IpamAllocateReplySchema,
      );
      const ghostIp = ghost.ips.ipv4!;
      await rpc.request(
        identityNodeSubject('ipcache-upsert', a.name),
        {
          prefix: `${ghostIp}/32`,
          identity: 300,
          hostIP: a.ip,
          source: 'local',
          ownerKey: 'pod/default/ghost',
        },
        IpcacheReplySchema,
      );
      await storeA.apply({
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumEndpoint',
        metadata: { name: 'ghost', namespace: 'default' },
      });
      await storeA.setStatus(
        { kind: 'CiliumEndpoint', namespace: 'default', name: 'ghost' },
        { id: 99, networking: { addressing: [{ ipv4: ghostIp }], node: a.name }, state: 'ready' },
      );
      const server = await echoServer(b1.ns.name, 7100);
      try {
        const stream = tcpStream(a1.ns.name, b1.ip, 7100, 8000);
        await sleep(1000);
        await a.svc!.proc.kill('SIGKILL');
        await b.svc!.proc.kill('SIGKILL');
        await sleep(500);
        await Promise.all([cluster.startDatapath(a), cluster.startDatapath(b)]);
        const r = await stream.result;
        assert.ok(r.ok, r.error);
        assert.ok(r.maxGapMs < 1000, `longest stall ${r.maxGapMs} ms`);
        t.diagnostic(`${routing} restart: longest stall ${r.maxGapMs} ms`);
        assert.ok(r.bytes > 100_000, `${r.bytes} bytes echoed`);
      } finally {
        server.stop();
      }
      assert.deepEqual(endpointIds(a), before, 'every endpoint restored as it was');
      const restored = a
        .svc!.proc.jsonLines<{ event?: string; restored?: { restored: number; removed: number } }>()
        .find((l) => l.event === 'datapath.ready')?.restored;
      assert.deepEqual(restored, { restored: 1, removed: 0 });
      assert.ok(await ping(a1.ns.name, b1.ip), 'still connected after the restart');
      await waitFor('the stale CiliumEndpoint and ipcache claim swept', async () =>
        !(await ceps()).some((c) => c.metadata.name === 'ghost') &&
        !(await ipcacheRecords()).has(`${ghostIp}/32`)
          ? true
          : undefined,
      );
      assert.deepEqual(
        (await ceps()).map((c) => c.metadata.name).sort(),
        ['web-a1', 'web-b1'],
        'CiliumEndpoints kept',
      );
    });

    it('NATS stopped for ten seconds: no stall; ADD fails fast with code 11; all catches up', async (t) => {
      const server = await echoServer(b1.ns.name, 7200);
      try {
        const stream = tcpStream(a1.ns.name, b1.ip, 7200, 14_000);
        await sleep(1000);
        await cluster.nats.server.stop();
        const started = Date.now();
        await cluster.putPod('late', { app: 'late' }).catch(() => undefined);
        const podNs = await scope.netns('pod');
        const add = await cluster.cni(
          a,
          cluster.env('ADD', 'c-late-1', 'late', `/var/run/netns/${podNs.name}`),
        );
        const took = Date.now() - started;
        assert.notEqual(add.code, 0);
        assert.equal(add.json?.code, 11, add.stdout);
        assert.match(String(add.json?.msg), /no answer within/);
        assert.ok(took < 15_000, `ADD answered after ${took} ms`);
        assert.ok(await ping(a1.ns.name, b1.ip), 'pods keep talking without NATS');
        await sleep(Math.max(0, 10_000 - (Date.now() - started)));
        await cluster.nats.server.start();
        const r = await stream.result;
        assert.ok(r.ok, r.error);
        assert.ok(r.maxGapMs < 1000, `longest stall ${r.maxGapMs} ms`);
        t.diagnostic(`${routing} NATS outage: longest stall ${r.maxGapMs} ms`);
      } finally {
        server.stop();
      }
      await waitFor(
        'both datapath services ready again',
        async () =>
          (await readyz(a.svc!.httpAddress)) && (await readyz(b.svc!.httpAddress))
            ? true
            : undefined,
        { timeoutMs: 30_000 },
      );
      const late = await waitFor(
        'ADD to work again',
        async () => {
          try {
            return await cluster.addPod(a, 'late2', { app: 'late' });
          } catch {
            return undefined;
          }
        },
        { timeoutMs: 30_000 },
      );
      assert.ok(await ping(b1.ns.name, late.ip), 'the new pod is reachable across nodes');
      const cep = await waitFor('its CiliumEndpoint', async () =>
        (await ceps()).find((c) => c.metadata.name === 'late2'),
      );
      // the mirror on node B follows the bucket again after the reconnect
      await waitFor('node B maps the new pod with its identity', () =>
        bpfIpcache(b).get(`${late.ip}/32`)?.identity === cep.status?.identity?.id
          ? true
          : undefined,
      );
    });
  });
}
