// Pod churn through the real plugin executable against a running agent: a pod deleted and
// recreated under the same name (new container id) gets a working endpoint, in either order of
// DEL and ADD; and 200 pods created and deleted concurrently in batches leave no veth, route,
// endpoints map entry, conntrack entry, address lease, state file or pinned link behind.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Datapath } from '@ciliate/bpf';
import { NetScope, type Netns } from '@ciliate/testkit';

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

const POD_CIDR = '10.234.0.0/23';
const NODE_IP = '192.168.234.1';
const PODS = 200;
const BATCH = 20;

describe('pod churn against a running agent (tcx)', () => {
  const scope = new NetScope();
  let node: TestNode;
  let agent: RunningAgent;
  let dp: Datapath;

  const conf = {
    cniVersion: '1.1.0',
    name: 'ciliate',
    type: 'ciliate-cni',
    socketPath: '',
  };
  const env = (command: string, id: string, ns: Netns | undefined, pod: string) => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: ns ? `/var/run/netns/${ns.name}` : undefined,
    CNI_IFNAME: 'eth0',
    CNI_PATH: REFERENCE_PLUGINS,
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=churn;K8S_POD_NAME=${pod}`,
  });
  const cni = (e: Record<string, string | undefined>) =>
    runCni(node, PLUGIN, e, { ...conf, socketPath: node.socketPath });
  const ok = (r: PluginRun, what: string) =>
    assert.equal(r.code, 0, `${what}: exit ${r.code}: ${r.stdout} ${r.stderr}`);
  const ipOf = (r: PluginRun) => (r.json as unknown as CniResult).ips![0]!.address.split('/')[0]!;

  /** What a pod leaves on the node, for the leak assertions. */
  async function footprint() {
    const links = (JSON.parse(await node.ns.ip(['-j', 'link', 'show'])) as { ifname: string }[])
      .map((l) => l.ifname)
      .filter((n) => n.startsWith('lxc'));
    const routes = (
      JSON.parse(await node.ns.ip(['-j', '-4', 'route', 'show', 'table', 'all'])) as {
        dst: string;
        dev?: string;
      }[]
    ).filter((r) => r.dst.startsWith('10.234.') || r.dev?.startsWith('lxc'));
    return {
      links,
      routes,
      endpoints: [...dp.endpoints.keys()].map((k) => k.ip),
      conntrack: [...dp.ct4.keys()].filter(
        (k) => k.saddr.startsWith('10.234.') || k.daddr.startsWith('10.234.'),
      ).length,
      leases: poolLeases(node).map((l) => l.owner),
      stateFiles: readdirSync(join(node.stateDir, 'endpoints')),
      pinnedLinks: readdirSync(join(node.pinDir, 'links')),
    };
  }

  before(async () => {
    node = await makeNode(scope, POD_CIDR, NODE_IP, { attachMode: 'tcx' });
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

  async function assertWorks(ns: Netns, ip: string, what: string): Promise<void> {
    assert.ok(await ping(node.ns.name, ip), `${what}: node -> pod`);
    assert.ok(await ping(ns.name, NODE_IP), `${what}: pod -> node`);
    const server = await echoServer(ns.name, 8080);
    try {
      assert.ok(await tcpEcho(node.ns.name, ip, 8080, 10_000), `${what}: TCP node -> pod`);
    } finally {
      server.stop();
    }
  }

  it('a pod deleted and recreated under the same name gets a working endpoint', async () => {
    const first = await scope.netns('rc');
    const a = await cni(env('ADD', 'web-0-c1', first, 'web-0'));
    ok(a, 'ADD web-0 (first container)');
    await assertWorks(first, ipOf(a), 'first incarnation');
    ok(await cni(env('DEL', 'web-0-c1', first, 'web-0')), 'DEL web-0 (first container)');
    await node.ns.exec('ip', ['netns', 'del', first.name]);

    const second = await scope.netns('rc');
    const b = await cni(env('ADD', 'web-0-c2', second, 'web-0'));
    ok(b, 'ADD web-0 (second container)');
    await assertWorks(second, ipOf(b), 'recreated after DEL');
    const entry = dp.endpoints.get({ ip: ipOf(b) });
    assert.ok(entry, 'map entry of the new container');

    // the runtime may start the new sandbox before the old one is torn down
    const third = await scope.netns('rc');
    const c = await cni(env('ADD', 'web-0-c3', third, 'web-0'));
    ok(c, 'ADD web-0 (third container, before the DEL of the second)');
    assert.notEqual(ipOf(c), ipOf(b), 'two live sandboxes, two addresses');
    ok(await cni(env('DEL', 'web-0-c2', second, 'web-0')), 'DEL web-0 (second container)');
    await assertWorks(third, ipOf(c), 'recreated before DEL of the previous one');
    ok(await cni(env('CHECK', 'web-0-c3', third, 'web-0')), 'CHECK the survivor');
    ok(await cni(env('DEL', 'web-0-c3', third, 'web-0')), 'DEL web-0 (third container)');
    const left = await footprint();
    assert.deepEqual(left.links, []);
    assert.deepEqual(left.endpoints, []);
    assert.deepEqual(left.leases, ['router']);
  });

  it(`${PODS} pods created and deleted concurrently in batches of ${BATCH} leave nothing behind`, async () => {
    for (let start = 0; start < PODS; start += BATCH) {
      const ids = Array.from({ length: BATCH }, (_, i) => `loop-${start + i}`);
      const nss = await Promise.all(ids.map(() => scope.netns('ch')));
      const adds = await Promise.all(ids.map((id, i) => cni(env('ADD', id, nss[i], id))));
      adds.forEach((r, i) => ok(r, `ADD ${ids[i]}`));
      const ips = adds.map(ipOf);
      assert.equal(new Set(ips).size, BATCH, 'no address handed out twice');
      const ids16 = ips.map((ip) => dp.endpoints.get({ ip })?.endpointId);
      assert.equal(new Set(ids16).size, BATCH, 'no endpoint id handed out twice');
      // traffic through one pod of the batch, so conntrack has entries to clean up
      assert.ok(await ping(nss[0]!.name, NODE_IP, 1), `pod ${ids[0]} reaches the node`);
      // half the batch loses its netns before the DEL, as when a runtime crashed
      await Promise.all(
        nss.slice(0, BATCH / 2).map((ns) => node.ns.exec('ip', ['netns', 'del', ns.name])),
      );
      const dels = await Promise.all(
        ids.map((id, i) => cni(env('DEL', id, i < BATCH / 2 ? undefined : nss[i], id))),
      );
      dels.forEach((r, i) => ok(r, `DEL ${ids[i]}`));
      await Promise.all(
        nss.slice(BATCH / 2).map((ns) => node.ns.exec('ip', ['netns', 'del', ns.name])),
      );
    }
    const left = await footprint();
    assert.deepEqual(left.links, [], 'no host veth');
    assert.deepEqual(left.routes, [], 'no route to a pod');
    assert.deepEqual(left.endpoints, [], 'no endpoints map entry');
    assert.equal(left.conntrack, 0, 'no conntrack entry for a pod address');
    assert.deepEqual(left.leases, ['router'], 'no address lease');
    assert.deepEqual(left.stateFiles, [], 'no state file');
    assert.deepEqual(left.pinnedLinks, [], 'no pinned tcx link');
  });
});
