// Privileged-test harness for the datapath service: a real nats-server secured as deployments run
// it (mutual TLS, one nkey user per principal), the IPAM and identity services spawned from their
// dist/main.js, nodes as network namespaces on one bridge segment, each with a ciliate-datapath
// process, and pods made by running bin/ciliate-cni as a runtime does, with their Pod objects in
// the resource store. Every service and every test client connects as the principal it is or
// plays. Everything is removed at exit, also when a test fails.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ensureBpffs } from '@ciliate/bpf';
import type { Principal } from '@ciliate/contracts';
import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import { ResourceStore } from '@ciliate/store';
import {
  atExit,
  inNetns,
  spawnNode,
  waitFor,
  type NetScope,
  type Netns,
  type NodeProcess,
} from '@ciliate/testkit';
import type { NatsConnection } from '@nats-io/transport-node';

import type { CniResult } from '../cni/result.js';
import { PLUGIN, REFERENCE_PLUGINS, runPluginIn, type PluginRun } from './harness.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
export const DATAPATH_MAIN = here('../main.js');
const IPAM_MAIN = here('../../../ipam/dist/main.js');
const IDENTITY_MAIN = here('../../../identity/dist/main.js');

export const CLUSTER_POOL = '10.240.0.0/16';

export interface ServiceProc {
  proc: NodeProcess;
  httpAddress: string;
}

/** Spawns a service's main and waits for `service.started` (and `extra`, when given). */
export async function startService(
  what: string,
  main: string,
  env: Record<string, string>,
  extra?: string,
): Promise<ServiceProc> {
  const proc = spawnNode(main, [], {
    env: {
      CILIATE_HTTP_ADDRESS: '127.0.0.1:0',
      CILIATE_LOG_LEVEL: process.env.DATAPATH_TEST_LOG_LEVEL ?? 'info',
      ...env,
    },
  });
  try {
    const httpAddress = await waitFor(
      `${what} to start`,
      () => {
        if (proc.child.exitCode !== null) throw new Error(`${what} exited: ${proc.output()}`);
        const lines = proc.jsonLines<{ event?: string; address?: string }>();
        if (!lines.some((l) => l.event === 'service.started')) return undefined;
        if (extra && !lines.some((l) => l.event === extra)) return undefined;
        return lines.find((l) => l.event === 'http.listening')?.address ?? '';
      },
      { timeoutMs: 45_000 },
    );
    return { proc, httpAddress };
  } catch (err) {
    await proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- ${what} ---\n${proc.output().slice(-4000)}`);
  }
}

export async function readyz(httpAddress: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${httpAddress}/readyz`, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

export interface ClusterNode {
  name: string;
  ns: Netns;
  ip: string;
  pinDir: string;
  stateDir: string;
  socketPath: string;
  env: Record<string, string>;
  svc?: ServiceProc;
}

export interface Pod {
  name: string;
  node: ClusterNode;
  ns: Netns;
  containerId: string;
  ip: string;
  result: CniResult;
}

const nodeName = (i: number): string => `node-${String.fromCharCode(97 + i)}`;

export class Cluster {
  nats!: SecureNats;
  /** A viewer's connection: what tests only read (lists, buckets, node endpoints). */
  viewer!: NatsConnection;
  /**
   * The resource store as the kube-bridge writes it: Nodes and Pods, and whatever else a test
   * has arrive through Kubernetes.
   */
  store!: ResourceStore;
  ipam!: ServiceProc;
  identity!: ServiceProc;
  readonly nodes: ClusterNode[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'ciliate-dps-'));
  private readonly forgetDir = atExit(() => rmSync(this.dir, { recursive: true, force: true }));
  private readonly pins: string[] = [];
  private readonly forgetPins = atExit(() => this.removePins());
  private readonly conns: NatsConnection[] = [];

  constructor(
    readonly scope: NetScope,
    readonly routing: 'native' | 'vxlan',
  ) {}

  private removePins(): void {
    for (const p of this.pins) rmSync(p, { recursive: true, force: true });
  }

  /** A connection as `p`, closed with the cluster: for what a test does as that principal. */
  async connect(p: Principal): Promise<NatsConnection> {
    const nc = await this.nats.connect(p);
    this.conns.push(nc);
    return nc;
  }

  /** The resource store as `p` writes it (the buckets exist: the kube-bridge made them). */
  async storeAs(p: Principal): Promise<ResourceStore> {
    return ResourceStore.open(await this.connect(p));
  }

  async start(nodeCount = 2): Promise<void> {
    this.nats = await startSecureNats({
      nodes: Array.from({ length: nodeCount }, (_, i) => nodeName(i)),
    });
    this.viewer = await this.connect({ role: 'viewer' });
    // the kube-bridge owns the store's buckets and mirrors Nodes and Pods into them
    this.store = await this.storeAs({ role: 'kube-bridge' });
    this.ipam = await startService('ciliate-ipam', IPAM_MAIN, {
      ...this.nats.env({ role: 'ipam' }),
      CILIATE_NODE: 'ipam-0',
      CILIATE_CLUSTER_POOL_IPV4_CIDR: CLUSTER_POOL,
      CILIATE_CLUSTER_POOL_IPV4_MASK_SIZE: '24',
      CILIATE_IPAM_LEASE_TTL: '1s',
    });
    this.identity = await startService(
      'ciliate-identity',
      IDENTITY_MAIN,
      { ...this.nats.env({ role: 'identity' }), CILIATE_NODE: 'identity-0' },
      'identity.synced',
    );
    const hub = await this.scope.netns('seg');
    await this.scope.bridge('br0', hub.name);
    for (let i = 0; i < nodeCount; i++) {
      const name = nodeName(i);
      const ns = await this.scope.netns('node');
      for (const [k, v] of [
        ['net.ipv4.ip_forward', '1'],
        ['net.ipv6.conf.all.disable_ipv6', '1'],
        ['net.ipv6.conf.default.disable_ipv6', '1'],
      ]) {
        await ns.exec('sysctl', ['-q', '-w', `${k}=${v}`]);
      }
      const port = this.scope.uniqueName('up');
      const tmp = this.scope.uniqueName('eth');
      await this.scope.veth({ name: tmp, netns: ns.name }, { name: port, netns: hub.name });
      await this.scope.attachToBridge(port, 'br0', hub.name);
      await ns.ip(['link', 'set', tmp, 'down']);
      await ns.ip(['link', 'set', tmp, 'name', 'eth0']);
      const ip = `192.168.240.${i + 1}`;
      await ns.ip(['addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      await ns.ip(['link', 'set', 'eth0', 'up']);
      await ns.ip(['link', 'set', 'lo', 'up']);
      const pinDir = `/sys/fs/bpf/ciliate-test-dps-${randomBytes(3).toString('hex')}`;
      ensureBpffs('/sys/fs/bpf', pinDir);
      this.pins.push(pinDir);
      const dir = join(this.dir, name);
      const node: ClusterNode = {
        name,
        ns,
        ip,
        pinDir,
        stateDir: join(dir, 'state'),
        socketPath: join(dir, 'cni.sock'),
        env: {
          ...this.nats.env({ role: 'datapath', node: name }),
          CILIATE_NODE: name,
          CILIATE_DATAPATH_NETNS: ns.name,
          CILIATE_DATAPATH_ROUTING: this.routing,
          CILIATE_DATAPATH_PIN_DIR: pinDir,
          CILIATE_DATAPATH_STATE_DIR: join(dir, 'state'),
          CILIATE_DATAPATH_SOCKET_PATH: join(dir, 'cni.sock'),
        },
      };
      // whoever runs the nodes creates their Node objects (IPAM keeps CIDRs of existing nodes)
      await this.store.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name } });
      this.nodes.push(node);
    }
    await Promise.all(this.nodes.map((n) => this.startDatapath(n)));
  }

  async startDatapath(node: ClusterNode): Promise<ServiceProc> {
    node.svc = await startService(`ciliate-datapath ${node.name}`, DATAPATH_MAIN, node.env);
    return node.svc;
  }

  async close(): Promise<void> {
    const steps: (() => unknown)[] = [
      ...this.nodes.map((n) => () => n.svc?.proc.kill('SIGKILL')),
      () => this.ipam?.proc.kill('SIGKILL'),
      () => this.identity?.proc.kill('SIGKILL'),
      ...this.conns.map((nc) => () => nc.close()),
      () => this.nats?.close(),
      () => this.scope.close(),
      () => {
        this.removePins();
        this.forgetPins();
        rmSync(this.dir, { recursive: true, force: true });
        this.forgetDir();
      },
    ];
    for (const step of steps) {
      try {
        await step();
      } catch {
        // every step runs: one failure must not leave the rest behind
      }
    }
  }

  async putPod(name: string, labels: Record<string, string>, namespace = 'default'): Promise<void> {
    await this.store.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, labels },
      spec: { containers: [{ name: 'main', image: 'example/app' }] },
    });
  }

  conf(node: ClusterNode): Record<string, unknown> {
    return {
      cniVersion: '1.0.0',
      name: 'ciliate',
      type: 'ciliate-cni',
      socketPath: node.socketPath,
    };
  }

  env(
    command: string,
    containerId: string,
    pod: string,
    netns?: string,
    namespace = 'default',
  ): Record<string, string | undefined> {
    return {
      CNI_COMMAND: command,
      CNI_CONTAINERID: containerId,
      CNI_NETNS: netns,
      CNI_IFNAME: 'eth0',
      CNI_PATH: `${fileURLToPath(new URL('../../bin', import.meta.url))}:${REFERENCE_PLUGINS}`,
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
    };
  }

  /** Runs the plugin in the node's namespace, as a runtime would. */
  cni(node: ClusterNode, env: Record<string, string | undefined>): Promise<PluginRun> {
    return runPlugin(node.ns.name, env, this.conf(node));
  }

  /** A Pod object, then CNI ADD for it on `node`. */
  async addPod(node: ClusterNode, name: string, labels: Record<string, string>): Promise<Pod> {
    await this.putPod(name, labels);
    const ns = await this.scope.netns('pod');
    const containerId = `c${randomBytes(8).toString('hex')}`;
    const r = await this.cni(node, this.env('ADD', containerId, name, `/var/run/netns/${ns.name}`));
    if (r.code !== 0) throw new Error(`ADD ${name} on ${node.name}: ${r.stdout} ${r.stderr}`);
    const result = r.json as unknown as CniResult;
    return { name, node, ns, containerId, ip: result.ips![0]!.address.split('/')[0]!, result };
  }

  async delPod(pod: Pod): Promise<PluginRun> {
    return this.cni(
      pod.node,
      this.env('DEL', pod.containerId, pod.name, `/var/run/netns/${pod.ns.name}`),
    );
  }
}

function runPlugin(
  netns: string,
  env: Record<string, string | undefined>,
  config: unknown,
): Promise<PluginRun> {
  return runPluginIn(netns, PLUGIN, env, config);
}

/** Sends `count` datagrams from `ns` and counts the echoes. */
export async function udpEcho(ns: string, host: string, port: number, count = 5): Promise<number> {
  const script = `
    const s = require('dgram').createSocket('udp4');
    let got = 0;
    s.on('message', () => { got++; if (got >= ${count}) { console.log(got); process.exit(0); } });
    for (let i = 0; i < ${count}; i++) setTimeout(() => s.send(Buffer.from('x' + i), ${port}, '${host}'), i * 50);
    setTimeout(() => { console.log(got); process.exit(0); }, 5000);`;
  try {
    const { stdout } = await inNetns(ns, process.execPath, ['-e', script], { timeoutMs: 15_000 });
    return Number(stdout.trim());
  } catch {
    return 0;
  }
}

export interface Stream {
  /** Resolves when the stream ends: the longest time without echoed data, and bytes echoed. */
  result: Promise<{ ok: boolean; maxGapMs: number; bytes: number; error?: string }>;
}

/**
 * A TCP stream from `ns` to an echo server: 256 bytes every 10 ms for `durationMs`, measuring
 * the longest gap between echoes.
 */
export function tcpStream(ns: string, host: string, port: number, durationMs: number): Stream {
  const script = `
    const s = require('net').connect(${port}, '${host}');
    let last = 0, maxGap = 0, bytes = 0, timer;
    const done = (ok, error) => { clearInterval(timer); console.log(JSON.stringify({ ok, maxGapMs: maxGap, bytes, error })); process.exit(0); };
    s.on('connect', () => {
      last = Date.now();
      timer = setInterval(() => { s.write(Buffer.alloc(256, 97)); const gap = Date.now() - last; if (gap > maxGap) maxGap = gap; }, 10);
      setTimeout(() => done(true), ${durationMs});
    });
    s.on('data', (d) => { const now = Date.now(); if (now - last > maxGap) maxGap = now - last; last = now; bytes += d.length; });
    s.on('error', (e) => done(false, e.message));
    s.on('close', () => done(false, 'closed'));`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const forget = atExit(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const result = new Promise<{ ok: boolean; maxGapMs: number; bytes: number; error?: string }>(
    (resolve) => {
      child.on('close', () => {
        forget();
        try {
          resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as never);
        } catch {
          resolve({ ok: false, maxGapMs: -1, bytes: 0, error: `no result: ${out}` });
        }
      });
    },
  );
  return { result };
}
