// What crosses the datapath's trust boundaries, against the real thing: hostile bytes written
// straight to a running agent's CNI socket (namespaces outside the places runtimes use, the
// node's own namespace behind a symlink, an oversized line, malformed JSON, missing fields, a
// GC without its list) each answered with a CNI error naming the field while the agent keeps
// its pods and goes on serving; its state directory, files and socket owner-only, also when an
// older agent left them readable; and, through the service on two nodes with IPAM, CiliumNodes
// carrying a foreign pod CIDR, a default route and a route wide enough to act as one, refused,
// logged once, counted, with every good route left as it was.
import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { NetScope, atExit, waitFor } from '@ciliate/testkit';

import { Cluster, readyz, type ClusterNode, type Pod } from './testing/cluster.js';
import {
  PLUGIN,
  REFERENCE_PLUGINS,
  makeNode,
  ping,
  runCni,
  startAgent,
  type RunningAgent,
  type TestNode,
} from './testing/harness.js';

const modeOf = (p: string) => statSync(p).mode & 0o777;

/** Writes `bytes` on the socket and reads until the agent closes the connection. */
function rawRequest(socketPath: string, bytes: string | Buffer): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const s = createConnection(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer on ${socketPath}: ${buf}`));
    }, 30_000);
    s.on('data', (d) => (buf += d.toString()));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(buf);
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      // the agent stops reading a line it refused: the rest of ours may meet a closed socket
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    s.write(bytes);
  });
}

const errorOf = (reply: string) => {
  const r = JSON.parse(reply) as { ok: boolean; error?: { code: number; msg: string } };
  assert.equal(r.ok, false, reply);
  return r.error!;
};

describe('CNI socket of a running agent: hostile requests', () => {
  const scope = new NetScope();
  let node: TestNode;
  let agent: RunningAgent;
  let pod: { ns: string; ip: string };
  const links = mkdtempSync(join(tmpdir(), 'ciliate-boundary-'));
  const forgetLinks = atExit(() => rmSync(links, { recursive: true, force: true }));

  const conf = () => ({
    cniVersion: '1.1.0',
    name: 'ciliate',
    type: 'ciliate-cni',
    socketPath: node.socketPath,
  });
  const env = (command: string, id: string, netns?: string) => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: netns,
    CNI_IFNAME: 'eth0',
    CNI_PATH: REFERENCE_PLUGINS,
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${id}`,
  });
  const request = (over: Record<string, unknown>) =>
    JSON.stringify({
      v: 1,
      command: 'ADD',
      containerId: 'raw-1',
      ifname: 'eth0',
      args: { raw: { K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'raw-1' } },
      config: conf(),
      ...over,
    }) + '\n';
  const stateFiles = () => readdirSync(join(node.stateDir, 'endpoints')).sort();
  const hostVeths = async () =>
    (JSON.parse(await node.ns.ip(['-j', 'link', 'show'])) as { ifname: string }[])
      .map((l) => l.ifname)
      .filter((n) => n.startsWith('lxc'));

  before(async () => {
    node = await makeNode(scope, '10.232.0.0/24', '192.168.232.1');
    // what an older agent left: readable by everyone
    mkdirSync(join(node.stateDir, 'endpoints'), { recursive: true });
    chmodSync(node.stateDir, 0o755);
    chmodSync(join(node.stateDir, 'endpoints'), 0o755);
    writeFileSync(join(node.stateDir, 'endpoints', 'torn.json'), '{', { mode: 0o644 });
    writeFileSync(join(node.stateDir, 'notes'), '', { mode: 0o644 });
    agent = await startAgent(node);
    const ns = await scope.netns('pod');
    const r = await runCni(node, PLUGIN, env('ADD', 'keep-1', `/var/run/netns/${ns.name}`), conf());
    assert.equal(r.code, 0, `ADD keep-1: ${r.stdout} ${r.stderr}`);
    const ips = (r.json as { ips: { address: string }[] }).ips;
    pod = { ns: ns.name, ip: ips[0]!.address.split('/')[0]! };
  });

  after(async () => {
    try {
      await agent?.stop('SIGKILL');
    } finally {
      await scope.close();
      node?.remove();
      rmSync(links, { recursive: true, force: true });
      forgetLinks();
    }
  });

  it('state directory, files and socket are owner-only, also what was left readable', () => {
    assert.equal(modeOf(node.stateDir), 0o700);
    assert.equal(modeOf(join(node.stateDir, 'endpoints')), 0o700);
    assert.equal(modeOf(join(node.stateDir, 'endpoints', 'torn.json')), 0o600);
    assert.equal(modeOf(join(node.stateDir, 'endpoints', 'keep-1@eth0.json')), 0o600);
    assert.equal(modeOf(join(node.stateDir, 'pod-pool.json')), 0o600);
    assert.equal(modeOf(join(node.stateDir, 'notes')), 0o600);
    assert.equal(modeOf(node.socketPath), 0o600);
    assert.ok(statSync(node.socketPath).isSocket());
  });

  it('CNI_NETNS outside the places runtimes use: code 4 naming it, from the socket and the plugin', async () => {
    const nodeNs = `/var/run/netns/${node.ns.name}`;
    symlinkSync(nodeNs, join(links, 'to-node'));
    symlinkSync('/etc/hosts', join(links, 'to-etc'));
    const before = { files: stateFiles(), veths: await hostVeths() };
    const cases: [string, RegExp][] = [
      [
        '/etc/passwd',
        /must be a namespace in \/var\/run\/netns, \/run\/netns, \/proc\/<pid>\/ns\/net/,
      ],
      ['/var/run/netns/../../etc/hosts', /leads to \/etc\/hosts/],
      [join(links, 'to-etc'), /leads to \/etc\/hosts/],
      [nodeNs, /node's own network namespace/],
      [join(links, 'to-node'), /node's own network namespace/],
      ['/proc/self/ns/net', /node's own network namespace/],
      [`/proc/${agent.proc.child.pid}/ns/mnt`, /must be a namespace in/],
      ['relative/netns', /must be an absolute path/],
    ];
    for (const [netns, msg] of cases) {
      const e = errorOf(await rawRequest(node.socketPath, request({ netns })));
      assert.equal(e.code, 4, `${netns}: ${e.msg}`);
      assert.match(e.msg, /^CNI_NETNS: Invalid value: /, netns);
      assert.match(e.msg, msg, netns);
    }
    // the plugin (its native front hands the whole invocation to the agent): the same check
    for (const netns of ['/etc/passwd', nodeNs, join(links, 'to-node')]) {
      const r = await runCni(node, PLUGIN, env('ADD', 'plugin-bad', netns), conf());
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.json?.code, 4, r.stdout);
      assert.match(String(r.json?.msg), /^CNI_NETNS: /);
    }
    // nothing was wired, leased or recorded for any of them
    assert.deepEqual(stateFiles(), before.files);
    assert.deepEqual(await hostVeths(), before.veths);
  });

  it('an oversized line, malformed JSON and missing fields each get a clear error', async () => {
    const big = errorOf(await rawRequest(node.socketPath, Buffer.alloc(3 << 20, 0x20)));
    assert.equal(big.code, 6);
    assert.match(big.msg, /longer than 1048576 bytes/);
    const bad = errorOf(await rawRequest(node.socketPath, '{"v":1,"command":\n'));
    assert.equal(bad.code, 6);
    assert.match(bad.msg, /^request: /);
    const missing = errorOf(await rawRequest(node.socketPath, '{"v":1,"command":"ADD"}\n'));
    assert.equal(missing.code, 4);
    assert.match(missing.msg, /^CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS: Required value/);
    const path = errorOf(
      await rawRequest(
        node.socketPath,
        request({ containerId: '../../etc/x', netns: '/var/run/netns/x' }),
      ),
    );
    assert.equal(path.code, 4);
    assert.match(path.msg, /^CNI_CONTAINERID/);
    const version = errorOf(await rawRequest(node.socketPath, request({ v: 0 })));
    assert.equal(version.code, 1);
  });

  it('a raw GC without its list, or a DEL pointed elsewhere, leaves the pod as it was', async () => {
    const gc = errorOf(
      await rawRequest(
        node.socketPath,
        request({ command: 'GC', containerId: undefined, ifname: undefined }),
      ),
    );
    assert.equal(gc.code, 7);
    assert.match(gc.msg, /^cni\.dev\/valid-attachments: Required value for GC/);
    const del = errorOf(
      await rawRequest(
        node.socketPath,
        request({ command: 'DEL', containerId: 'keep-1', netns: '/etc/passwd' }),
      ),
    );
    assert.equal(del.code, 4);
    assert.ok(stateFiles().includes('keep-1@eth0.json'), 'the endpoint is still recorded');
    assert.ok(await ping(pod.ns, '192.168.232.1'), 'and the pod still reaches its node');
  });

  it('the agent keeps serving: STATUS, a new pod, the lab-style DEL', async () => {
    assert.equal(agent.proc.child.exitCode, null);
    const status = await runCni(
      node,
      PLUGIN,
      { ...env('STATUS', 'x'), CNI_CONTAINERID: undefined },
      conf(),
    );
    assert.equal(status.code, 0, status.stdout);
    const ns = await scope.netns('pod');
    const path = `/var/run/netns/${ns.name}`;
    // a symlink to a pod's namespace leads to an allowed place: accepted
    const link = join(links, 'to-pod');
    symlinkSync(path, link);
    const add = await runCni(node, PLUGIN, env('ADD', 'after-1', link), conf());
    assert.equal(add.code, 0, add.stdout);
    const check = await runCni(node, PLUGIN, env('CHECK', 'after-1', link), conf());
    assert.equal(check.code, 0, check.stdout);
    // DEL of a namespace that is gone already (the link now leads nowhere) is fine, as
    // runtimes need
    await node.ns.exec('ip', ['netns', 'del', ns.name]).catch(() => undefined);
    const del = await runCni(node, PLUGIN, env('DEL', 'after-1', link), conf());
    assert.equal(del.code, 0, del.stdout);
    assert.ok(!stateFiles().includes('after-1@eth0.json'));
  });
});

interface CiliumNodeView {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [k: string]: unknown };
  spec?: { addresses?: { type: string; ip: string }[]; ipam?: { podCIDRs?: string[] } };
}

describe('datapath service: routes only from what IPAM gave each node', () => {
  const scope = new NetScope();
  const cluster = new Cluster(scope, 'native');
  let a: ClusterNode;
  let b: ClusterNode;
  let cidrA: string;
  let cidrB: string;

  const ourRoutes = async (n: ClusterNode) =>
    (
      JSON.parse(await n.ns.ip(['-j', '-4', 'route', 'show', 'proto', '193'])) as {
        dst: string;
        gateway?: string;
      }[]
    )
      .map((r) => `${r.dst} via ${r.gateway ?? '-'}`)
      .sort();
  const allRoutes = async (n: ClusterNode) =>
    (JSON.parse(await n.ns.ip(['-j', 'route', 'show', 'table', 'all'])) as unknown[])
      .map((r) => JSON.stringify(r))
      .sort();
  const refusals = (n: ClusterNode) =>
    n
      .svc!.proc.jsonLines<{ event?: string; node?: string; field?: string; reason?: string }>()
      .filter((l) => l.event === 'routes.refused')
      .map((l) => `${l.node} ${l.field} ${l.reason}`);
  const metric = async (n: ClusterNode, what: string, reason: string) => {
    const text = await (await fetch(`http://${n.svc!.httpAddress}/metrics`)).text();
    const line = text
      .split('\n')
      .find(
        (l) =>
          l.startsWith('ciliate_datapath_refused_total{') &&
          l.includes(`what="${what}"`) &&
          l.includes(`reason="${reason}"`),
      );
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };
  const ciliumNode = async (name: string) =>
    (await cluster.store.get({ kind: 'CiliumNode', namespace: '', name }))?.object as
      CiliumNodeView | undefined;
  const hostile = (name: string, ip: string, podCIDRs: string[]) =>
    cluster.store.apply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNode',
      metadata: { name },
      spec: { addresses: [{ type: 'InternalIP', ip }], ipam: { podCIDRs } },
    });

  before(async () => {
    await cluster.start(2);
    [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
    cidrA = await waitFor(
      'node-a CIDR',
      async () => (await ciliumNode(a.name))?.spec?.ipam?.podCIDRs?.[0],
    );
    cidrB = await waitFor(
      'node-b CIDR',
      async () => (await ciliumNode(b.name))?.spec?.ipam?.podCIDRs?.[0],
    );
    await waitFor('routes between the nodes', async () =>
      (await ourRoutes(a)).includes(`${cidrB} via ${b.ip}`) &&
      (await ourRoutes(b)).includes(`${cidrA} via ${a.ip}`)
        ? true
        : undefined,
    );
  });

  after(async () => {
    await cluster.close();
  });

  it('refuses a foreign CIDR, a default route and a default by halves; good routes stay', async () => {
    const before = { a: await allRoutes(a), b: await allRoutes(b) };
    await hostile('evil-foreign', '192.168.240.77', ['10.99.0.0/24']);
    await hostile('evil-default', '192.168.240.78', ['0.0.0.0/0']);
    // node-b's own CiliumNode, with a route wide enough to take most traffic added to it, written
    // with node-b's datapath credentials (which may write that one CiliumNode)
    const own = await ciliumNode(b.name);
    const storeB = await cluster.storeAs({ role: 'datapath', node: b.name });
    await storeB.apply({
      ...own!,
      metadata: { name: b.name },
      spec: { ...own!.spec, ipam: { podCIDRs: [cidrB, '0.0.0.0/1'] } },
    });
    const expected = [
      'evil-foreign spec.ipam.podCIDRs[0] not_assigned',
      'evil-default spec.ipam.podCIDRs[0] default_route',
      `${b.name} spec.ipam.podCIDRs[1] too_short`,
    ];
    await waitFor('node-a to refuse the three', () =>
      expected.every((e) => refusals(a).includes(e)) ? true : undefined,
    );
    // a later change makes another pass; what was refused before is not logged again
    await hostile('evil-later', '192.168.240.79', ['10.98.0.0/24']);
    await waitFor('node-a to refuse the later one', () =>
      refusals(a).includes('evil-later spec.ipam.podCIDRs[0] not_assigned') ? true : undefined,
    );
    for (const e of expected) assert.equal(refusals(a).filter((r) => r === e).length, 1, e);
    const line = a
      .svc!.proc.jsonLines<{ event?: string; node?: string; msg?: string; value?: string }>()
      .find((l) => l.event === 'routes.refused' && l.node === 'evil-default');
    assert.equal(line?.value, '0.0.0.0/0');
    assert.match(
      line?.msg ?? '',
      /^CiliumNode evil-default: spec\.ipam\.podCIDRs\[0\]: "0\.0\.0\.0\/0": a default route/,
    );

    // the routes of both nodes are exactly what they were: no default, no foreign, none lost
    assert.deepEqual(await ourRoutes(a), [`${cidrB} via ${b.ip}`]);
    assert.deepEqual(await ourRoutes(b), [`${cidrA} via ${a.ip}`]);
    assert.deepEqual(await allRoutes(a), before.a);
    assert.deepEqual(await allRoutes(b), before.b);
    assert.equal((await a.ns.ip(['route', 'show', 'default'])).trim(), '');

    // counted, and the services serve on
    assert.ok((await metric(a, 'route', 'not_assigned')) >= 2);
    assert.ok((await metric(a, 'route', 'default_route')) >= 1);
    assert.ok((await metric(a, 'route', 'too_short')) >= 1);
    for (const n of [a, b]) {
      assert.equal(n.svc!.proc.child.exitCode, null, `${n.name} runs`);
      assert.ok(await readyz(n.svc!.httpAddress), `${n.name} ready`);
    }
  });

  it('pods still reach each other across the nodes over the good routes', async () => {
    const pa: Pod = await cluster.addPod(a, 'web-a', { app: 'web' });
    const pb: Pod = await cluster.addPod(b, 'web-b', { app: 'web' });
    assert.ok(await ping(pa.ns.name, pb.ip), 'a -> b');
    assert.ok(await ping(pb.ns.name, pa.ip), 'b -> a');
    assert.deepEqual(await ourRoutes(a), [`${cidrB} via ${b.ip}`]);
  });

  it('the service refuses CNI requests for its node namespace, counted', async () => {
    const before = await metric(a, 'cni_request', 'netns');
    const e = errorOf(
      await rawRequest(
        a.socketPath,
        JSON.stringify({
          v: 1,
          command: 'ADD',
          containerId: 'raw-a',
          ifname: 'eth0',
          netns: `/var/run/netns/${a.ns.name}`,
          args: { raw: {} },
          config: cluster.conf(a),
        }) + '\n',
      ),
    );
    assert.equal(e.code, 4);
    assert.match(e.msg, /^CNI_NETNS: .*node's own network namespace/);
    assert.equal(await metric(a, 'cni_request', 'netns'), before + 1);
  });

  it("the service's state and socket are owner-only", () => {
    for (const n of [a, b]) {
      assert.equal(modeOf(n.stateDir), 0o700);
      assert.equal(modeOf(join(n.stateDir, 'endpoints')), 0o700);
      for (const f of readdirSync(join(n.stateDir, 'endpoints')))
        assert.equal(modeOf(join(n.stateDir, 'endpoints', f)), 0o600, f);
      assert.equal(modeOf(n.socketPath), 0o600);
    }
  });
});
