// Pods set up per second on one node and the time from CNI ADD to a reachable pod (a TCP
// connect from the node answered by the pod), for ciliate-cni against a running agent and, as
// the baseline, Debian's `ptp` plugin with `host-local` IPAM doing the same veth + address +
// route wiring without BPF. Both run as a runtime runs them (a process per call, env + stdin)
// in a node namespace, `concurrency` calls in flight; pod namespaces exist before the ADD, as
// a runtime's sandbox does.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { atExit, atExitKill, NetScope, type Netns } from '@ciliate/testkit';

import type { CniResult } from '../cni/result.js';
import {
  PLUGIN,
  REFERENCE_PLUGINS,
  makeNode,
  runCni,
  startAgent,
  type RunningAgent,
  type TestNode,
} from '../testing/harness.js';
import { args, intArg, percentile, report } from './common.js';

const PROBER = fileURLToPath(new URL('./prober.js', import.meta.url));
const PROBE_PORT = 9; // discard: nothing listens, the pod answers with a RST

interface Prober {
  reach(ip: string): Promise<void>;
  stop(): void;
}

function startProber(node: TestNode): Prober {
  const child: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', node.ns.name, process.execPath, PROBER],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const forget = atExitKill(child.pid!);
  const waiting = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const r = JSON.parse(line) as { ip: string; ok: boolean };
    const w = waiting.get(r.ip);
    waiting.delete(r.ip);
    if (r.ok) w?.resolve();
    else w?.reject(new Error(`${r.ip} never became reachable from the node`));
  });
  return {
    reach(ip) {
      return new Promise((resolve, reject) => {
        waiting.set(ip, { resolve, reject });
        child.stdin!.write(JSON.stringify({ ip, port: PROBE_PORT }) + '\n');
      });
    },
    stop() {
      child.kill('SIGKILL');
      forget();
    },
  };
}

interface Plugin {
  binary: string;
  conf: Record<string, unknown>;
}

export interface SetupFigures {
  podsPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  delPerSecond: number;
  /** CPU per pod during the ADDs: the plugin processes (with `ip netns exec`), and for ours
   * the agent, split into its own and that of the iproute2 processes it runs. */
  cpu: { plugin: number; agentSelf: number; agentChildren: number };
}

/** CPU (ms) of a process, [its own, its children's it has waited for] (proc(5) fields 14-17). */
function cpuMs(pid: number | 'self'): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  // f[0] is field 3; clock ticks are USER_HZ, 100 on Linux
  return [(f[11]! + f[12]!) * 10, (f[13]! + f[14]!) * 10];
}

const env = (command: string, id: string, ns: Netns) => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: id,
  CNI_NETNS: `/var/run/netns/${ns.name}`,
  CNI_IFNAME: 'eth0',
  CNI_PATH: REFERENCE_PLUGINS,
  CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${id}`,
});

async function pool<T>(
  items: T[],
  concurrency: number,
  fn: (t: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(workers);
}

/** Creates `pods` pods with `concurrency` ADDs in flight (after `warmup` untimed ones), then
 * deletes them all. */
async function measure(
  scope: NetScope,
  node: TestNode,
  plugin: Plugin,
  tag: string,
  pods: number,
  concurrency: number,
  agentPid?: number,
): Promise<SetupFigures> {
  const prober = startProber(node);
  try {
    const nss = await Promise.all(Array.from({ length: pods + 3 }, () => scope.netns('bp')));
    const ids = nss.map((_, i) => `${tag}-${i}`);
    const add = async (i: number): Promise<number> => {
      const t0 = performance.now();
      const r = await runCni(node, plugin.binary, env('ADD', ids[i]!, nss[i]!), plugin.conf);
      if (r.code !== 0) throw new Error(`ADD ${ids[i]}: exit ${r.code}: ${r.stdout} ${r.stderr}`);
      const ip = (r.json as unknown as CniResult).ips![0]!.address.split('/')[0]!;
      await prober.reach(ip);
      return performance.now() - t0;
    };
    // warm-up: page cache, JIT of the agent
    for (let i = pods; i < pods + 3; i++) await add(i);
    const lat: number[] = [];
    const idx = Array.from({ length: pods }, (_, i) => i);
    const cpu0 = { self: cpuMs('self'), agent: agentPid ? cpuMs(agentPid) : [0, 0] };
    const start = performance.now();
    await pool(idx, concurrency, async (i) => void lat.push(await add(i)));
    const wall = (performance.now() - start) / 1000;
    const cpu1 = { self: cpuMs('self'), agent: agentPid ? cpuMs(agentPid) : [0, 0] };
    const delStart = performance.now();
    await pool([...idx, pods, pods + 1, pods + 2], concurrency, async (i) => {
      const r = await runCni(node, plugin.binary, env('DEL', ids[i]!, nss[i]!), plugin.conf);
      if (r.code !== 0) throw new Error(`DEL ${ids[i]}: exit ${r.code}: ${r.stdout} ${r.stderr}`);
    });
    const delWall = (performance.now() - delStart) / 1000;
    return {
      podsPerSecond: pods / wall,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      max: Math.max(...lat),
      delPerSecond: (pods + 3) / delWall,
      cpu: {
        plugin: (cpu1.self[1] - cpu0.self[1]) / pods,
        agentSelf: (cpu1.agent[0]! - cpu0.agent[0]!) / pods,
        agentChildren: (cpu1.agent[1]! - cpu0.agent[1]!) / pods,
      },
    };
  } finally {
    prober.stop();
  }
}

export async function benchCiliate(pods: number, concurrency: number): Promise<SetupFigures> {
  const scope = new NetScope();
  let node: TestNode | undefined;
  let agent: RunningAgent | undefined;
  try {
    node = await makeNode(scope, '10.232.0.0/22', '192.168.232.1');
    agent = await startAgent(node);
    const conf = {
      cniVersion: '1.1.0',
      name: 'ciliate',
      type: 'ciliate-cni',
      socketPath: node.socketPath,
    };
    return await measure(
      scope,
      node,
      { binary: PLUGIN, conf },
      'cil',
      pods,
      concurrency,
      agent.proc.pid,
    );
  } finally {
    if (process.env.BENCH_TRACE) process.stderr.write(agent?.proc.output() ?? '');
    await agent?.stop('SIGTERM').catch(() => undefined);
    await scope.close();
    node?.remove();
  }
}

export async function benchPtp(pods: number, concurrency: number): Promise<SetupFigures> {
  const scope = new NetScope();
  let node: TestNode | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'ciliate-bench-hostlocal-'));
  const forget = atExit(() => rmSync(dataDir, { recursive: true, force: true }));
  try {
    node = await makeNode(scope, '10.233.0.0/22', '192.168.233.1');
    const conf = {
      cniVersion: '1.0.0',
      name: 'bench-ptp',
      type: 'ptp',
      ipMasq: false,
      mtu: 1500,
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.233.0.0/22' }]], dataDir },
    };
    return await measure(
      scope,
      node,
      { binary: join(REFERENCE_PLUGINS, 'ptp'), conf },
      'ptp',
      pods,
      concurrency,
    );
  } finally {
    await scope.close();
    node?.remove();
    rmSync(dataDir, { recursive: true, force: true });
    forget();
  }
}

export async function runPodSetupBench(argv: Map<string, string>): Promise<void> {
  const pods = intArg(argv, 'pods', 100);
  const concurrency = intArg(argv, 'concurrency', 8);
  const base = await benchPtp(pods, concurrency);
  const ours = await benchCiliate(pods, concurrency);
  report(
    `pod set-up on one node: ${pods} pods, ${concurrency} CNI ADDs in flight`,
    [
      {
        metric: 'pods set up per second',
        ours: ours.podsPerSecond,
        baseline: base.podsPerSecond,
        unit: 'pods/s',
        better: 'higher',
        absolute: 20,
      },
      {
        metric: 'ADD -> reachable p50',
        ours: ours.p50,
        baseline: base.p50,
        unit: 'ms',
        better: 'lower',
      },
      {
        metric: 'ADD -> reachable p99',
        ours: ours.p99,
        baseline: base.p99,
        unit: 'ms',
        better: 'lower',
        absolute: 250,
      },
      {
        metric: 'ADD -> reachable max',
        ours: ours.max,
        baseline: base.max,
        unit: 'ms',
        better: 'lower',
      },
      {
        metric: 'CPU per pod set-up',
        ours: ours.cpu.plugin + ours.cpu.agentSelf + ours.cpu.agentChildren,
        baseline: base.cpu.plugin,
        unit: 'ms',
        better: 'lower',
      },
      {
        metric: 'pods deleted per second',
        ours: ours.delPerSecond,
        baseline: base.delPerSecond,
        unit: 'pods/s',
        better: 'higher',
      },
    ],
    `sudo npm run bench -w @ciliate/datapath -- --only=podsetup --pods=${pods} --concurrency=${concurrency}`,
    [
      'baseline: Debian containernetworking-plugins ptp + host-local, same node netns, same prober',
      `CPU per pod, ours: plugin processes ${ours.cpu.plugin.toFixed(1)} ms, agent ${ours.cpu.agentSelf.toFixed(1)} ms, ` +
        `its iproute2 processes ${ours.cpu.agentChildren.toFixed(1)} ms; baseline: plugin processes ${base.cpu.plugin.toFixed(1)} ms`,
    ],
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runPodSetupBench(args());
}
