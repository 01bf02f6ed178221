// The CNI plugin executable run as a container runtime runs it, against a running agent on a
// node namespace: results, pod connectivity through the BPF programs, CHECK, idempotent DEL,
// GC, agent restart, spec errors, a chain with Debian's portmap and bandwidth, and a loop of
// pods that must leave nothing behind.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Datapath } from '@ciliate/bpf';
import { NetScope, type Netns } from '@ciliate/testkit';

import { hostIfname } from './endpoints/manager.js';
import type { CniResult } from './cni/result.js';
import {
  PLUGIN,
  REFERENCE_PLUGINS,
  echoServer,
  makeNode,
  ping,
  poolLeases,
  runCni,
  startAgent,
  tcpEcho,
  type PluginRun,
  type RunningAgent,
  type TestNode,
} from './testing/harness.js';

const POD_CIDR = '10.231.0.0/24';
const GATEWAY = '10.231.0.1';
const NODE_IP = '192.168.231.1';

for (const attachMode of ['tc', 'tcx'] as const)
  describe(`CNI plugin against a running agent (${attachMode})`, () => {
    const scope = new NetScope();
    let node: TestNode;
    let agent: RunningAgent;
    let dp: Datapath;

    const conf = (extra: Record<string, unknown> = {}) => ({
      cniVersion: '1.1.0',
      name: 'ciliate',
      type: 'ciliate-cni',
      socketPath: node.socketPath,
      ...extra,
    });
    const env = (
      command: string,
      id: string,
      ns?: Netns | string,
      extra: Record<string, string> = {},
    ) => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS:
        ns === undefined ? undefined : typeof ns === 'string' ? ns : `/var/run/netns/${ns.name}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: REFERENCE_PLUGINS,
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${id}`,
      ...extra,
    });
    const cni = (e: Record<string, string | undefined>, c: unknown = conf()) =>
      runCni(node, PLUGIN, e, c);
    const ok = (r: PluginRun, what: string) =>
      assert.equal(r.code, 0, `${what}: exit ${r.code}: ${r.stdout} ${r.stderr}`);
    const hostLinks = async () =>
      (JSON.parse(await node.ns.ip(['-j', 'link', 'show'])) as { ifname: string }[])
        .map((l) => l.ifname)
        .filter((n) => n.startsWith('lxc'));

    async function addPod(id: string): Promise<{ ns: Netns; result: CniResult; ip: string }> {
      const ns = await scope.netns('pod');
      const r = await cni(env('ADD', id, ns));
      ok(r, `ADD ${id}`);
      const result = r.json as unknown as CniResult;
      return { ns, result, ip: result.ips![0]!.address.split('/')[0]! };
    }

    before(async () => {
      node = await makeNode(scope, POD_CIDR, NODE_IP, { attachMode });
      agent = await startAgent(node);
      dp = Datapath.load({ pinDir: node.pinDir, objects: ['lxc'] });
    });

    after(async () => {
      try {
        dp?.close();
        await agent?.stop('SIGKILL');
      } finally {
        await scope.close();
        node?.remove();
      }
    });

    it('VERSION lists the supported versions and echoes the config version', async () => {
      const r = await cni({ CNI_COMMAND: 'VERSION' }, conf({ cniVersion: '1.0.0' }));
      ok(r, 'VERSION');
      assert.equal(r.json?.cniVersion, '1.0.0');
      const versions = r.json?.supportedVersions as string[];
      assert.ok(versions.includes('1.0.0') && versions.includes('1.1.0'));
    });

    it('a bad environment is code 4 naming the variable; an unsupported cniVersion code 1', async () => {
      const noNetns = await cni(env('ADD', 'c-bad', undefined));
      assert.notEqual(noNetns.code, 0);
      assert.equal(noNetns.json?.code, 4);
      assert.match(String(noNetns.json?.msg), /CNI_NETNS/);
      const longIf = await cni({
        ...env('ADD', 'c-bad', '/var/run/netns/x'),
        CNI_IFNAME: 'a'.repeat(16),
      });
      assert.equal(longIf.json?.code, 4);
      assert.match(String(longIf.json?.msg), /^CNI_IFNAME/);
      const noCmd = await cni({ ...env('ADD', 'c-bad', '/x'), CNI_COMMAND: undefined });
      assert.equal(noCmd.json?.code, 4);
      const v = await cni(env('ADD', 'c-bad', '/var/run/netns/x'), conf({ cniVersion: '0.2.0' }));
      assert.notEqual(v.code, 0);
      assert.equal(v.json?.code, 1);
      const decode = await cni(env('ADD', 'c-bad', '/x'), '{"cniVersion":');
      assert.equal(decode.json?.code, 6);
      const noName = await cni(env('ADD', 'c-bad', '/x'), conf({ name: undefined }));
      assert.equal(noName.json?.code, 7);
    });

    it('STATUS is ready while the agent serves', async () => {
      ok(await cni({ CNI_COMMAND: 'STATUS', CNI_PATH: REFERENCE_PLUGINS }), 'STATUS');
    });

    let a: Awaited<ReturnType<typeof addPod>>;
    let b: Awaited<ReturnType<typeof addPod>>;

    it('ADD: the result lists the host veth and the container interface with its sandbox', async () => {
      a = await addPod('pod-a');
      b = await addPod('pod-b');
      const r = a.result;
      assert.equal(r.cniVersion, '1.1.0');
      const [host, cont] = r.interfaces!;
      assert.equal(host!.name, hostIfname('pod-a', 'eth0'));
      assert.equal(host!.sandbox, undefined);
      assert.equal(cont!.name, 'eth0');
      assert.equal(cont!.sandbox, `/var/run/netns/${a.ns.name}`);
      assert.equal(r.ips!.length, 1);
      assert.equal(r.ips![0]!.interface, 1);
      assert.equal(r.ips![0]!.gateway, GATEWAY);
      assert.match(r.ips![0]!.address, /^10\.231\.0\.\d+\/32$/);
      assert.deepEqual(r.routes, [{ dst: '0.0.0.0/0', gw: GATEWAY }]);
      // what the result says is what exists
      const inPod = JSON.parse(await a.ns.ip(['-j', 'addr', 'show', 'dev', 'eth0'])) as {
        address: string;
        mtu: number;
        addr_info: { local: string }[];
      }[];
      assert.equal(inPod[0]!.address, cont!.mac);
      assert.equal(inPod[0]!.mtu, cont!.mtu);
      assert.ok(inPod[0]!.addr_info.some((x) => x.local === a.ip));
      const onNode = JSON.parse(await node.ns.ip(['-j', 'link', 'show', 'dev', host!.name])) as {
        address: string;
      }[];
      assert.equal(onNode[0]!.address, host!.mac);
      const entry = dp.endpoints.get({ ip: a.ip });
      assert.ok(entry, 'endpoint map entry');
      assert.equal(entry.mac, cont!.mac);
      assert.equal(entry.nodeMac, host!.mac);
      assert.equal(entry.identity, 5, 'the documented default identity: init');
    });

    it('two pods added this way ping and talk TCP through the BPF programs; they reach the node', async () => {
      assert.ok(await ping(a.ns.name, b.ip), 'a -> b');
      assert.ok(await ping(b.ns.name, a.ip), 'b -> a');
      const server = await echoServer(b.ns.name, 8080);
      try {
        assert.ok(await tcpEcho(a.ns.name, b.ip, 8080), 'TCP a -> b');
      } finally {
        server.stop();
      }
      assert.ok(await ping(a.ns.name, NODE_IP), 'pod -> node');
      const ct = [...dp.ct4.keys()].filter(
        (k) => k.saddr === a.ip && k.daddr === b.ip && k.dport === 8080,
      );
      assert.ok(ct.length > 0, 'the TCP flow went through conntrack of the endpoint programs');
    });

    it('CHECK after ADD succeeds and fails once the default route is removed by hand', async () => {
      ok(await cni(env('CHECK', 'pod-a', a.ns), conf({ prevResult: a.result })), 'CHECK');
      await a.ns.ip(['route', 'del', 'default']);
      const r = await cni(env('CHECK', 'pod-a', a.ns), conf({ prevResult: a.result }));
      assert.notEqual(r.code, 0);
      assert.match(String(r.json?.msg), /default route/);
      await a.ns.ip(['route', 'add', 'default', 'via', GATEWAY, 'dev', 'eth0']);
      ok(await cni(env('CHECK', 'pod-a', a.ns)), 'CHECK after repair');
    });

    it('ADD again for the same attachment fails and leaks no address', async () => {
      const before = poolLeases(node).length;
      const r = await cni(env('ADD', 'pod-a', a.ns));
      assert.notEqual(r.code, 0);
      assert.match(String(r.json?.msg), /already exists/);
      assert.equal(poolLeases(node).length, before);
    });

    it('the agent restarts (SIGKILL) without touching traffic and re-adopts its endpoints', async () => {
      await agent.stop('SIGKILL');
      assert.ok(await ping(a.ns.name, b.ip), 'forwarding with no agent');
      agent = await startAgent(node);
      assert.deepEqual(agent.ready.restored, { restored: 2, removed: 0 });
      assert.ok(await ping(a.ns.name, b.ip), 'forwarding after the restart');
      ok(await cni(env('CHECK', 'pod-b', b.ns)), 'CHECK after the restart');
    });

    it('a restart cleans up a pod whose netns went away meanwhile and re-programs a lost map entry', async () => {
      const e = await addPod('pod-e');
      await agent.stop('SIGKILL');
      await node.ns.exec('ip', ['netns', 'del', e.ns.name]);
      dp.endpoints.delete({ ip: b.ip });
      agent = await startAgent(node);
      assert.deepEqual(agent.ready.restored, { restored: 2, removed: 1 });
      assert.ok(
        !poolLeases(node).some((l) => l.ip === e.ip),
        "the vanished pod's address released",
      );
      assert.equal(dp.endpoints.get({ ip: e.ip }), undefined);
      assert.ok(dp.endpoints.get({ ip: b.ip }), 'the lost entry is back');
      assert.ok(await ping(a.ns.name, b.ip), 'and traffic flows');
    });

    it('DEL twice succeeds and removes veth, map entry, state and address', async () => {
      ok(await cni(env('DEL', 'pod-b', b.ns), conf({ prevResult: b.result })), 'DEL');
      ok(await cni(env('DEL', 'pod-b', b.ns)), 'DEL again');
      assert.equal(dp.endpoints.get({ ip: b.ip }), undefined);
      assert.ok(!(await hostLinks()).includes(hostIfname('pod-b', 'eth0')));
      assert.ok(!poolLeases(node).some((l) => l.ip === b.ip));
      assert.ok(!existsSync(join(node.stateDir, 'endpoints', 'pod-b@eth0.json')));
      assert.equal(
        (JSON.parse(await b.ns.ip(['-j', 'link', 'show'])) as unknown[]).length,
        1,
        'only lo left in the pod',
      );
    });

    it('ADD into a netns that does not exist is code 4 naming CNI_NETNS and leaks nothing', async () => {
      const before = poolLeases(node).length;
      const r = await cni(env('ADD', 'pod-ghost', '/var/run/netns/ciliate-no-such-netns'));
      assert.notEqual(r.code, 0);
      assert.equal(r.json?.code, 4);
      assert.match(String(r.json?.msg), /^CNI_NETNS/);
      assert.equal(poolLeases(node).length, before);
      assert.ok(!(await hostLinks()).includes(hostIfname('pod-ghost', 'eth0')));
    });

    it('DEL after the netns is deleted succeeds and releases the address', async () => {
      const c = await addPod('pod-c');
      await c.ns.exec('true', []);
      await node.ns.exec('ip', ['netns', 'del', c.ns.name]).catch(() => undefined);
      ok(await cni(env('DEL', 'pod-c', undefined)), 'DEL without netns');
      assert.ok(!poolLeases(node).some((l) => l.ip === c.ip), 'address released');
      assert.equal(dp.endpoints.get({ ip: c.ip }), undefined);
      ok(await cni(env('DEL', 'never-added', undefined)), 'DEL of an unknown container');
    });

    it('GC removes attachments not in cni.dev/valid-attachments (legacy key too)', async () => {
      const d = await addPod('pod-d');
      ok(
        await cni(
          { CNI_COMMAND: 'GC', CNI_PATH: REFERENCE_PLUGINS },
          conf({ 'cni.dev/valid-attachments': [{ containerID: 'pod-a', ifname: 'eth0' }] }),
        ),
        'GC',
      );
      assert.equal(dp.endpoints.get({ ip: d.ip }), undefined, 'stale endpoint gone');
      assert.ok(!poolLeases(node).some((l) => l.ip === d.ip), 'stale address released');
      assert.ok(dp.endpoints.get({ ip: a.ip }), 'valid endpoint kept');
      assert.ok(await ping(a.ns.name, NODE_IP), 'valid endpoint still works');
      ok(
        await cni(
          { CNI_COMMAND: 'GC', CNI_PATH: REFERENCE_PLUGINS },
          conf({ 'cni.dev/attachments': [{ containerID: 'pod-a', ifname: 'eth0' }] }),
        ),
        'GC with the legacy key',
      );
      assert.ok(dp.endpoints.get({ ip: a.ip }));
    });

    it('50 pods created and deleted in a loop leave no veth, map entry or address behind', async () => {
      const pods: { id: string; ns: Netns }[] = [];
      for (let i = 0; i < 50; i++) {
        const id = `loop-${i}`;
        const ns = await scope.netns('lp');
        ok(await cni(env('ADD', id, ns)), `ADD ${id}`);
        pods.push({ id, ns });
      }
      assert.equal(poolLeases(node).length, 1 + 1 + 50, 'router + pod-a + 50');
      for (const p of pods) ok(await cni(env('DEL', p.id, p.ns)), `DEL ${p.id}`);
      assert.deepEqual(await hostLinks(), [hostIfname('pod-a', 'eth0')]);
      assert.deepEqual(
        [...dp.endpoints.keys()].map((k) => k.ip),
        [a.ip],
      );
      assert.deepEqual(
        poolLeases(node)
          .map((l) => l.owner)
          .sort(),
        ['default/pod-a/pod-a/eth0', 'router'],
      );
      assert.deepEqual(readdirSync(join(node.stateDir, 'endpoints')), ['pod-a@eth0.json']);
      if (attachMode === 'tcx') {
        const aIndex = dp.endpoints.get({ ip: a.ip })!.ifindex;
        assert.deepEqual(
          readdirSync(join(node.pinDir, 'links')).sort(),
          [`lxc-${aIndex}-egress`, `lxc-${aIndex}-ingress`],
          'only pod-a keeps pinned tcx links',
        );
      }
    });
    it('20 parallel ADDs get unique addresses; parallel DELs release them all', async () => {
      const ids = Array.from({ length: 20 }, (_, i) => `par-${i}`);
      const nss = await Promise.all(ids.map(() => scope.netns('pp')));
      const runs = await Promise.all(ids.map((id, i) => cni(env('ADD', id, nss[i]))));
      runs.forEach((r, i) => ok(r, `ADD ${ids[i]}`));
      const ips = runs.map((r) => (r.json as unknown as CniResult).ips![0]!.address);
      assert.equal(new Set(ips).size, ids.length, 'no address handed out twice');
      const dels = await Promise.all(ids.map((id, i) => cni(env('DEL', id, nss[i]))));
      dels.forEach((r, i) => ok(r, `DEL ${ids[i]}`));
      assert.equal(poolLeases(node).length, 2, 'router + pod-a');
    });

    it('STATUS is 50 when the agent is unreachable', async () => {
      const r = await cni(
        { CNI_COMMAND: 'STATUS', CNI_PATH: REFERENCE_PLUGINS },
        conf({ socketPath: `${node.dir}/nobody.sock` }),
      );
      assert.notEqual(r.code, 0);
      assert.equal(r.json?.code, 50);
      const add = await cni(
        env('ADD', 'c-x', '/var/run/netns/x'),
        conf({ socketPath: `${node.dir}/nobody.sock` }),
      );
      assert.equal(add.json?.code, 11, 'ADD: try again later');
    });
  });
