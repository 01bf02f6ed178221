// Pod-to-pod across two nodes (namespaces on one bridge segment), through the eBPF datapath in
// native routing, against the same namespaces wired with plain veth routing and no BPF: TCP
// throughput (iperf3) and 1-byte TCP request/response latency (rr.c, netperf TCP_RR-like).
// The eBPF datapath runs twice, with BPF host routing (the default) and with legacy host
// routing (the stack forwards), so one run shows what host routing buys. All clusters exist
// side by side; rounds rotate their order so that noise from the shared machine hits each
// alike, and the median round counts.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Datapath, ensureBpffs } from '@ciliate/bpf';
import { RESERVED_IDENTITIES } from '@ciliate/contracts';
import { atExit, atExitKill, inNetns, NetScope, type Netns } from '@ciliate/testkit';

import { args, intArg, percentile, report } from './common.js';

const RR_SOURCE = fileURLToPath(new URL('../../src/bench/rr.c', import.meta.url));

interface Pod {
  ns: Netns;
  ip: string;
  hostIf: string;
}

interface Cluster {
  name: string;
  pods: [Pod, Pod];
  close(): void;
}

async function sysctl(ns: Netns, kv: Record<string, string>): Promise<void> {
  for (const [k, v] of Object.entries(kv)) await ns.exec('sysctl', ['-q', '-w', `${k}=${v}`]);
}

function linkInfo(ns: string, dev: string): { ifindex: number; address: string } {
  return (
    JSON.parse(
      execFileSync('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev], { encoding: 'utf8' }),
    ) as {
      ifindex: number;
      address: string;
    }[]
  )[0]!;
}

type Kind = 'plain' | 'ebpf' | 'ebpf-legacy';

/** Two nodes on a bridge, a pod on each. `ebpf*`: the datapath's programs on the pod veths and
 * the underlay, native routing, BPF or legacy host routing; `plain`: the kernel alone (the host
 * end holds the gateway). */
async function makeCluster(scope: NetScope, kind: Kind, octet: number): Promise<Cluster> {
  const bpf = kind !== 'plain';
  const hub = await scope.netns('hub');
  await scope.bridge('br0', hub.name);
  const closers: (() => void)[] = [];
  const nodes: { ns: Netns; ip: string; podCidr: string; pod: Pod; dp?: Datapath }[] = [];
  for (const i of [1, 2]) {
    const ns = await scope.netns('node');
    await sysctl(ns, {
      'net.ipv4.ip_forward': '1',
      'net.ipv6.conf.all.disable_ipv6': '1',
      'net.ipv6.conf.default.disable_ipv6': '1',
    });
    const up = scope.uniqueName('up');
    const tmp = scope.uniqueName('eth');
    await scope.veth({ name: tmp, netns: ns.name }, { name: up, netns: hub.name });
    await scope.attachToBridge(up, 'br0', hub.name);
    await ns.ip(['link', 'set', tmp, 'down']);
    await ns.ip(['link', 'set', tmp, 'name', 'eth0']);
    const nodeIp = `192.168.${octet}.${i}`;
    await ns.ip(['addr', 'add', `${nodeIp}/24`, 'dev', 'eth0']);
    await ns.ip(['link', 'set', 'eth0', 'up']);

    const podNs = await scope.netns('pod');
    await sysctl(podNs, { 'net.ipv6.conf.all.disable_ipv6': '1' });
    const hostIf = scope.uniqueName('lxc');
    const ptmp = scope.uniqueName('eth');
    await scope.veth({ name: ptmp, netns: podNs.name }, { name: hostIf, netns: ns.name });
    await podNs.ip(['link', 'set', ptmp, 'down']);
    await podNs.ip(['link', 'set', ptmp, 'name', 'eth0']);
    await podNs.ip(['link', 'set', 'eth0', 'up']);
    const podCidr = `10.${octet}.${i}.0/24`;
    const gw = `10.${octet}.${i}.1`;
    const podIp = `10.${octet}.${i}.2`;
    await podNs.ip(['addr', 'add', `${podIp}/32`, 'dev', 'eth0']);
    await podNs.ip(['route', 'add', gw, 'dev', 'eth0', 'scope', 'link']);
    await podNs.ip(['route', 'add', 'default', 'via', gw, 'dev', 'eth0']);
    await ns.ip(['route', 'add', `${podIp}/32`, 'dev', hostIf]);
    const pod = { ns: podNs, ip: podIp, hostIf };
    if (!bpf) {
      // the gateway on the host end, as Debian's ptp plugin does
      await ns.ip(['addr', 'add', `${gw}/32`, 'dev', hostIf]);
      nodes.push({ ns, ip: nodeIp, podCidr, pod });
      continue;
    }
    const pinDir = `/sys/fs/bpf/ciliate-bench-${scope.uniqueName('x')}`;
    ensureBpffs('/sys/fs/bpf', pinDir);
    const forget = atExit(() => rmSync(pinDir, { recursive: true, force: true }));
    const dp = Datapath.load({
      pinDir,
      config: {
        traceMode: 'off',
        nodeIPv4: nodeIp,
        tunnelMode: 'native',
        hostRouting: kind === 'ebpf' ? 'bpf' : 'legacy',
      },
    });
    closers.push(() => {
      dp.close();
      rmSync(pinDir, { recursive: true, force: true });
      forget();
    });
    const host = linkInfo(ns.name, hostIf);
    const inPod = linkInfo(podNs.name, 'eth0');
    dp.endpoints.set(
      { ip: podIp },
      {
        ifindex: host.ifindex,
        endpointId: i,
        flags: 0,
        mac: inPod.address,
        nodeMac: host.address,
        identity: 1000 + i,
      },
    );
    dp.attachEndpoint({ ifindex: host.ifindex, netns: ns.name }, { mode: 'tc' });
    dp.attachUnderlay({ ifname: 'eth0', netns: ns.name }, { mode: 'tc' });
    nodes.push({ ns, ip: nodeIp, podCidr, pod, dp });
  }
  const [n1, n2] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  for (const [self, peer] of [
    [n1, n2],
    [n2, n1],
  ] as const) {
    await self.ns.ip(['route', 'add', peer.podCidr, 'via', peer.ip]);
    self.dp?.ipcache.set(
      { prefix: peer.ip },
      { identity: RESERVED_IDENTITIES['remote-node'], tunnelEndpoint: null },
    );
    self.dp?.ipcache.set({ prefix: peer.pod.ip }, { identity: 2000, tunnelEndpoint: null });
  }
  return {
    name: kind,
    pods: [n1.pod, n2.pod],
    close() {
      for (const c of closers) {
        try {
          c();
        } catch {
          // the namespaces' removal takes filters along
        }
      }
    },
  };
}

/** Starts `cmd` in `ns`, waits for `ready` on stdout; returns a stop function. */
async function serve(ns: Netns, cmd: string, argv: string[], ready: RegExp): Promise<() => void> {
  const child = spawn('ip', ['netns', 'exec', ns.name, cmd, ...argv], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const forget = atExitKill(child.pid!);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${cmd} did not start`)), 10_000);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  return () => {
    child.kill('SIGKILL');
    forget();
  };
}

async function throughput(c: Cluster, seconds: number): Promise<number> {
  const [a, b] = c.pods;
  const stop = await serve(
    b.ns,
    'iperf3',
    ['-s', '-1', '-p', '5201', '--forceflush'],
    /listening/i,
  );
  try {
    const { stdout } = await inNetns(
      a.ns.name,
      'iperf3',
      ['-c', b.ip, '-p', '5201', '-t', String(seconds), '-J'],
      {
        timeoutMs: (seconds + 20) * 1000,
      },
    );
    const j = JSON.parse(stdout) as {
      error?: string;
      end: { sum_received?: { bits_per_second: number } };
    };
    if (!j.end.sum_received)
      throw new Error(`iperf3 in ${c.name}: ${j.error ?? stdout.slice(0, 300)}`);
    return j.end.sum_received.bits_per_second / 1e9;
  } finally {
    stop();
  }
}

async function requestResponse(
  c: Cluster,
  rr: string,
  n: number,
): Promise<{ p50: number; p99: number }> {
  const [a, b] = c.pods;
  const stop = await serve(b.ns, rr, ['server', '7000'], /listening/);
  try {
    const { stdout } = await inNetns(a.ns.name, rr, ['client', b.ip, '7000', String(n)], {
      timeoutMs: 120_000,
    });
    const j = JSON.parse(stdout) as { p50_us: number; p99_us: number };
    return { p50: j.p50_us, p99: j.p99_us };
  } finally {
    stop();
  }
}

export async function runCrossNodeBench(argv: Map<string, string>): Promise<void> {
  const rounds = intArg(argv, 'rounds', 3);
  const seconds = intArg(argv, 'seconds', 5);
  const trips = intArg(argv, 'trips', 20000);
  const chunks = intArg(argv, 'chunks', 10);
  const dir = mkdtempSync(join(tmpdir(), 'ciliate-bench-'));
  const forgetDir = atExit(() => rmSync(dir, { recursive: true, force: true }));
  const rr = join(dir, 'rr');
  execFileSync('cc', ['-O2', '-o', rr, RR_SOURCE]);
  const scope = new NetScope();
  const clusters: Cluster[] = [];
  try {
    clusters.push(await makeCluster(scope, 'plain', 241));
    clusters.push(await makeCluster(scope, 'ebpf', 242));
    clusters.push(await makeCluster(scope, 'ebpf-legacy', 243));
    const res = new Map<string, { gbps: number[]; p50: number[]; p99: number[] }>();
    for (const c of clusters) res.set(c.name, { gbps: [], p50: [], p99: [] });
    for (let r = 0; r < rounds; r++) {
      // rotate and reverse, so each cluster takes every position over the rounds
      const order = [...clusters.slice(r % 3), ...clusters.slice(0, r % 3)];
      for (const c of r % 2 === 0 ? order : [...order].reverse()) {
        res.get(c.name)!.gbps.push(await throughput(c, seconds));
      }
      // Latency in short chunks, the clusters taking turns chunk by chunk: the machine's load
      // changes within seconds (other builds), and a chunk's three runs are ~0.1-0.5 s apart.
      for (let k = 0; k < chunks; k++) {
        const turn = [...order.slice(k % 3), ...order.slice(0, k % 3)];
        for (const c of turn) {
          const m = res.get(c.name)!;
          const l = await requestResponse(c, rr, Math.ceil(trips / chunks));
          m.p50.push(l.p50);
          m.p99.push(l.p99);
        }
      }
    }
    const med = (xs: number[]) => percentile(xs, 50);
    const b = res.get('plain')!;
    const cmd = `sudo npm run bench -w @ciliate/datapath -- --only=crossnode --rounds=${rounds} --seconds=${seconds} --trips=${trips} --chunks=${chunks}`;
    for (const [name, title] of [
      ['ebpf', 'eBPF native routing, BPF host routing'],
      ['ebpf-legacy', 'eBPF native routing, legacy host routing (the stack forwards)'],
    ] as const) {
      const o = res.get(name)!;
      report(
        `pod to pod across two nodes, ${title} vs plain veth routing (throughput: median of ${rounds} alternating rounds; RR: median over ${rounds}x${chunks} chunks of ${Math.ceil(trips / chunks)} round trips taken in turns)`,
        [
          {
            metric: 'TCP throughput (iperf3, 1 stream)',
            ours: med(o.gbps),
            baseline: med(b.gbps),
            unit: 'Gbit/s',
            better: 'higher',
            target: 0.9,
          },
          {
            metric: 'TCP_RR 1 byte p50',
            ours: med(o.p50),
            baseline: med(b.p50),
            unit: 'us',
            better: 'lower',
            target: 1.1,
          },
          {
            metric: 'TCP_RR 1 byte p99',
            ours: med(o.p99),
            baseline: med(b.p99),
            unit: 'us',
            better: 'lower',
          },
        ],
        cmd,
        [
          `per round, ${name} Gbit/s: ${o.gbps.map((x) => x.toFixed(2)).join(' ')}; plain: ${b.gbps.map((x) => x.toFixed(2)).join(' ')}`,
          // chunk k of every cluster ran back to back: the ratio within a chunk is the
          // least disturbed by the machine's changing load
          `median of per-chunk ratios: RR p50 ${med(o.p50.map((x, i) => x / b.p50[i]!)).toFixed(2)}, RR p99 ${med(o.p99.map((x, i) => x / b.p99[i]!)).toFixed(2)}; per-round throughput ratio ${med(o.gbps.map((x, i) => x / b.gbps[i]!)).toFixed(2)}`,
          `quietest chunk RR p50 ${Math.min(...o.p50)} us vs ${Math.min(...b.p50)} us; 10th percentile of chunk p50s ${percentile(o.p50, 10)} vs ${percentile(b.p50, 10)} us`,
        ],
      );
    }
  } finally {
    for (const c of clusters) c.close();
    await scope.close();
    rmSync(dir, { recursive: true, force: true });
    forgetDir();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runCrossNodeBench(args());
}
