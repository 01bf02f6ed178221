// Benchmark of the IPAM service through NATS: pod IP allocations per second and latency with 16
// concurrent clients against the service (its own process, a single nats-server with JetStream),
// and carving pod CIDRs for 5,000 nodes. Each runs next to a baseline in the same run: a bare
// NATS echo responder (what a request/reply costs here) and the pure core in-process. Then the
// allocate workload against a plain nats-server and against one secured as deployments run it
// (mutual TLS, one nkey user per principal with the permission table), rounds alternating.
//
//   npx turbo run build --filter=@ciliate/ipam && npm run bench -w @ciliate/ipam   [-- --quick]
//
// Knobs: --quick (2 nodes per client, 2 secured/plain rounds of 1 cycle), --compare-only (the
// secured/plain comparison alone),
// IPAM_BENCH_COMPARE_ROUNDS (6), IPAM_BENCH_COMPARE_CYCLES (3 fill-and-empty cycles per round).
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  IpamAllocateReplySchema,
  IpamNodeCidrsReplySchema,
  IpamReleaseReplySchema,
  ipamNodeSubject,
} from '@ciliate/contracts';
import {
  pidsWithArgument,
  processCpuSeconds,
  spawnNode,
  startNats,
  waitFor,
  type NodeProcess,
} from '@ciliate/testkit';
import { ResourceStore } from '@ciliate/store';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';

import {
  allocateNodeCidrs,
  clusterPoolConfig,
  emptyNodeCidrState,
  type NodeCidrState,
} from '@ciliate/ipam-core';
import {
  createRpcClient,
  disabledTracing,
  natsConnectionOptions,
  type RpcClient,
} from '@ciliate/runtime';
import { startSecureNats } from '@ciliate/runtime/testing';

const COMMAND = 'npx turbo run build --filter=@ciliate/ipam && npm run bench -w @ciliate/ipam';
const QUICK = process.argv.includes('--quick');
const COMPARE_ONLY = process.argv.includes('--compare-only');
const CLIENTS = 16;
const NODES_PER_CLIENT = QUICK ? 2 : 11;
// kubelet's default max-pods: a node never holds more.
const PODS_PER_NODE = 110;
const CARVE_NODES = 5_000;
const COMPARE_ROUNDS = Number(process.env.IPAM_BENCH_COMPARE_ROUNDS ?? (QUICK ? 2 : 6));
const COMPARE_CYCLES = Number(process.env.IPAM_BENCH_COMPARE_CYCLES ?? (QUICK ? 1 : 3));
// Issue 14: TLS and permissions may cost at most 10% of the allocation rate.
const SECURED_TARGET_RATIO = 0.9;

interface Row {
  name: string;
  ops: number;
  opsPerSec: number;
  p50ms?: number;
  p99ms?: number;
  note?: string;
}
const rows: Row[] = [];

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** Runs `work(client, i)` for every i of each client's share, 16 clients concurrently. */
async function measure(
  perClient: number,
  work: (client: number, i: number) => Promise<void>,
): Promise<{ lat: number[]; ms: number }> {
  const lat: number[] = [];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = 0; i < perClient; i++) {
        const t = performance.now();
        await work(c, i);
        lat.push(performance.now() - t);
      }
    }),
  );
  return { lat, ms: performance.now() - start };
}

/** measure(), recorded as a row of the table. */
async function concurrent(
  name: string,
  perClient: number,
  work: (client: number, i: number) => Promise<void>,
  note?: string,
): Promise<Row> {
  const { lat, ms } = await measure(perClient, work);
  lat.sort((a, b) => a - b);
  const row: Row = {
    name,
    ops: lat.length,
    opsPerSec: lat.length / (ms / 1000),
    p50ms: pct(lat, 50),
    p99ms: pct(lat, 99),
    ...(note ? { note } : {}),
  };
  rows.push(row);
  return row;
}

async function started(proc: NodeProcess): Promise<void> {
  await waitFor(
    'the process to start',
    () => {
      if (proc.child.exitCode !== null) throw new Error(proc.output());
      return proc.jsonLines<{ event?: string }>().some((l) => l.event === 'service.started')
        ? true
        : undefined;
    },
    { timeoutMs: 20_000 },
  );
}

const IPAM_MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

/** Starts the service (added to `procs`); resolves once `rpc` gets node-cidrs for `node`. */
async function startIpam(
  env: Record<string, string>,
  rpc: RpcClient,
  node: string,
  procs: NodeProcess[],
): Promise<void> {
  const ipam = spawnNode(IPAM_MAIN, [], {
    env: {
      CILIATE_HTTP_ADDRESS: '127.0.0.1:0',
      CILIATE_LOG_LEVEL: 'warn',
      CILIATE_NODE: 'bench',
      ...env,
    },
  });
  procs.push(ipam);
  // Log level warn hides service.started: wait for the endpoint instead.
  await waitFor(
    'the IPAM service',
    async () => {
      if (ipam.child.exitCode !== null) throw new Error(ipam.output());
      try {
        await rpc.request(ipamNodeSubject('node-cidrs', node), { node }, IpamNodeCidrsReplySchema);
        return true;
      } catch {
        return undefined;
      }
    },
    { timeoutMs: 20_000 },
  );
}

const ownerOf = (c: number, i: number, round: number) => ({
  namespace: 'bench',
  pod: `p${c}-${i}-${round}`,
  containerID: `c${c}x${i}x${round}`,
  ifname: 'eth0',
});

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A phase's operations, time and the CPU seconds each process spent meanwhile. */
interface Phase {
  ops: number;
  ms: number;
  lat: number[];
  cpu: { client: number; server: number; service: number };
}

interface Side {
  readonly name: 'plain' | 'secured';
  /** One connection per node: the node's own principal on the secured server. */
  readonly rpcs: RpcClient[];
  readonly serverPid: number;
  readonly servicePid: number;
  readonly allocate: Phase[];
  readonly release: Phase[];
}

/** measure(), with the CPU time of this process, the side's nats-server and its service. */
async function phase(
  side: Side,
  perClient: number,
  work: (client: number, i: number) => Promise<void>,
): Promise<Phase> {
  const cpu = () => ({
    client: process.cpuUsage(),
    server: processCpuSeconds(side.serverPid),
    service: processCpuSeconds(side.servicePid),
  });
  const before = cpu();
  const { lat, ms } = await measure(perClient, work);
  const after = cpu();
  const client = process.cpuUsage(before.client);
  return {
    ops: lat.length,
    ms,
    lat,
    cpu: {
      client: (client.user + client.system) / 1e6,
      server: after.server - before.server,
      service: after.service - before.service,
    },
  };
}

/** Phases taken together: operations per second, p99, CPU µs per operation per process. */
function total(phases: readonly Phase[]) {
  const ops = phases.reduce((n, x) => n + x.ops, 0);
  const ms = phases.reduce((n, x) => n + x.ms, 0);
  const per = (k: keyof Phase['cpu']) => (phases.reduce((n, x) => n + x.cpu[k], 0) / ops) * 1e6;
  return {
    rate: ops / (ms / 1000),
    p99: pct(
      phases.flatMap((x) => x.lat).sort((a, b) => a - b),
      99,
    ),
    cpuUs: { client: per('client'), server: per('server'), service: per('service') },
  };
}

/**
 * The allocate workload against a plain nats-server and against a secured one (mutual TLS, nkey
 * users, contracts' permission table), each fresh with its own IPAM service. As in a cluster,
 * each node's pods are allocated by that node's datapath over its own connection: CLIENTS nodes,
 * one connection and one client each, as the datapath principal of its node on the secured server
 * (which may allocate on its own node's subjects only); the plain side connects the same way
 * without credentials. A round fills every node to PODS_PER_NODE pods and empties it again,
 * COMPARE_CYCLES times, on one side and then on the other; rounds alternate which side goes
 * first, so the machine's changing speed hits both alike.
 */
async function securedAgainstPlain(): Promise<void> {
  const nodes = Array.from({ length: CLIENTS }, (_, c) => `node-${c}`);
  const plain = await startNats({ name: 'ipam-bench-plain' });
  const secure = await startSecureNats({ nodes }).catch(async (err: unknown) => {
    await plain.close();
    throw err;
  });
  const procs: NodeProcess[] = [];
  const conns: NatsConnection[] = [];
  try {
    const sides: Side[] = [];
    for (const name of ['plain', 'secured'] as const) {
      const options = (node?: string) =>
        name === 'secured'
          ? secure.options(node === undefined ? undefined : { role: 'datapath', node })
          : natsConnectionOptions({ servers: plain.url, name: node ?? 'admin' });
      // The store's buckets are the kube-bridge's (or an operator's) to create, as in the lab.
      const admin = await connect(options());
      conns.push(admin);
      await ResourceStore.open(admin);
      const rpcs: RpcClient[] = [];
      for (const node of nodes) {
        const nc = await connect(options(node));
        conns.push(nc);
        rpcs.push(createRpcClient(nc, disabledTracing));
      }
      await startIpam(
        name === 'secured' ? secure.env({ role: 'ipam' }) : { CILIATE_NATS_URL: plain.url },
        rpcs[0]!,
        nodes[0]!,
        procs,
      );
      const server = name === 'secured' ? secure.server : plain;
      const [serverPid] = pidsWithArgument(join(server.dir, 'nats.conf'));
      if (serverPid === undefined) throw new Error(`no process runs ${server.dir}/nats.conf`);
      sides.push({
        name,
        rpcs,
        serverPid,
        servicePid: procs.at(-1)!.pid,
        allocate: [],
        release: [],
      });
    }
    const cycle = async (side: Side, n: number): Promise<[Phase, Phase]> => [
      await phase(side, PODS_PER_NODE, async (c, i) => {
        await side.rpcs[c]!.request(
          ipamNodeSubject('allocate', nodes[c]!),
          { node: nodes[c]!, owner: ownerOf(c, i, n) },
          IpamAllocateReplySchema,
        );
      }),
      await phase(side, PODS_PER_NODE, async (c, i) => {
        await side.rpcs[c]!.request(
          ipamNodeSubject('release', nodes[c]!),
          { node: nodes[c]!, owner: ownerOf(c, i, n) },
          IpamReleaseReplySchema,
        );
      }),
    ];
    // Round 0 warms both up (every node's CIDR carved, the JIT settled): not reported.
    const rounds: { plain: number; secured: number }[] = [];
    for (let round = 0; round <= COMPARE_ROUNDS; round++) {
      const rates = { plain: 0, secured: 0 };
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
        const allocated: Phase[] = [];
        for (let k = 0; k < COMPARE_CYCLES; k++) {
          const [a, r] = await cycle(side, round * COMPARE_CYCLES + k);
          allocated.push(a);
          if (round > 0) {
            side.allocate.push(a);
            side.release.push(r);
          }
        }
        rates[side.name] = total(allocated).rate;
      }
      if (round > 0) rounds.push(rates);
    }

    const [p, s] = sides as [Side, Side];
    const ratios = rounds.map((r) => r.secured / r.plain);
    const ratio = median(ratios);
    console.log(
      `\nSecured against plain, same run: ${CLIENTS} nodes, one connection each, as that node's datapath principal on the secured server (mutual TLS, nkey user, permission table), the same without credentials on the plain one; a fresh nats-server and IPAM service per side. ${COMPARE_ROUNDS} rounds alternating which side goes first; in a round each side fills every node to ${PODS_PER_NODE} pods and empties it, ${COMPARE_CYCLES} times\n`,
    );
    console.log(
      '| measurement | plain ops/s | secured ops/s | secured/plain | plain p99 ms | secured p99 ms | CPU µs/op plain: clients, nats-server, IPAM | secured |',
    );
    console.log('|---|---:|---:|---:|---:|---:|---|---|');
    const us = (t: ReturnType<typeof total>) =>
      `${Math.round(t.cpuUs.client)}, ${Math.round(t.cpuUs.server)}, ${Math.round(t.cpuUs.service)}`;
    for (const [what, key] of [
      ['pod IP allocate', 'allocate'],
      ['pod IP release', 'release'],
    ] as const) {
      const tp = total(p[key]);
      const ts = total(s[key]);
      console.log(
        `| ${what} | ${Math.round(tp.rate)} | ${Math.round(ts.rate)} | ${(ts.rate / tp.rate).toFixed(3)} | ${tp.p99.toFixed(2)} | ${ts.p99.toFixed(2)} | ${us(tp)} | ${us(ts)} |`,
      );
    }
    console.log('');
    console.log(
      `allocate per round, plain: ${rounds.map((r) => Math.round(r.plain)).join(' ')}; secured: ${rounds.map((r) => Math.round(r.secured)).join(' ')}`,
    );
    console.log(`secured/plain per round: ${ratios.map((r) => r.toFixed(2)).join(' ')}`);
    console.log(
      `target (secured at most 10% slower, median of per-round ratios >= ${SECURED_TARGET_RATIO}): ${ratio >= SECURED_TARGET_RATIO ? 'met' : 'MISSED'} (${ratio.toFixed(3)})`,
    );
  } finally {
    for (const nc of conns) await nc.close().catch(() => undefined);
    for (const proc of procs) await proc.kill('SIGTERM');
    await secure.close();
    await plain.close();
  }
}

/** The service and its baselines on one plain nats-server: the table above the comparison. */
async function throughNats(): Promise<void> {
  const nats = await startNats({ name: 'ipam-bench' });
  const procs: NodeProcess[] = [];
  let nc: NatsConnection | undefined;
  try {
    // As the services do (runtime): no stack trace per request, the clients share the CPU.
    nc = await connect({ servers: nats.url, noAsyncTraces: true });
    const rpc = createRpcClient(nc, disabledTracing);

    // Baseline: bare request/reply.
    const echoSubject = 'bench.echo';
    const echo = spawnNode(fileURLToPath(new URL('./echo-responder.js', import.meta.url)), [
      nats.url,
      echoSubject,
    ]);
    procs.push(echo);
    await started(echo);
    const payload = new TextEncoder().encode(
      JSON.stringify({
        node: 'bench-0-0',
        owner: { namespace: 'bench', pod: 'p', containerID: 'c', ifname: 'eth0' },
      }),
    );
    const echoOnce = async (): Promise<void> => {
      await nc!.request(echoSubject, payload, { timeout: 5_000 });
    };
    await concurrent('warm-up echo', 200, echoOnce);
    rows.pop();
    const perClient = NODES_PER_CLIENT * PODS_PER_NODE;
    const base = await concurrent(
      'baseline: NATS echo request/reply',
      perClient,
      echoOnce,
      'no state',
    );

    // Baseline: the KV compare-and-set alone, one key per client, a document of the average size
    // the allocate phase writes (a node half full: 55 allocations).
    const kv = await new Kvm(nc).create('ipam-bench-baseline', { history: 1 });
    const doc = new TextEncoder().encode(
      JSON.stringify({
        v: 1,
        ipv4: {
          v: 1,
          cidr: '10.0.1.0/24',
          allocations: Array.from({ length: 55 }, (_, i) => ({
            owner: `bench/p1-${i}-1/c1x${i}x1/eth0`,
            ip: `10.0.1.${i + 1}`,
          })),
        },
      }),
    );
    const revs = await Promise.all(
      Array.from({ length: CLIENTS }, (_, c) => kv.put(`doc.${c}`, doc)),
    );
    const kvBase = await concurrent(
      'baseline: KV compare-and-set update, no service',
      perClient,
      async (c) => {
        revs[c] = await kv.update(`doc.${c}`, doc, revs[c]!);
      },
      `${doc.length}-byte document, one key per client`,
    );

    // The service.
    await startIpam({ CILIATE_NATS_URL: nats.url }, rpc, 'warmup', procs);
    const nodeOf = (c: number, i: number): string =>
      `bench-${c}-${Math.floor(i / PODS_PER_NODE) % NODES_PER_CLIENT}`;
    // Warm-up: carve every node's CIDR and let the JIT settle on a small round.
    await concurrent('warm-up', 60, async (c, i) => {
      await rpc.request(
        ipamNodeSubject('allocate', nodeOf(c, i * PODS_PER_NODE)),
        { node: nodeOf(c, i * PODS_PER_NODE), owner: ownerOf(c, i, 0) },
        IpamAllocateReplySchema,
      );
      await rpc.request(
        ipamNodeSubject('release', nodeOf(c, i * PODS_PER_NODE)),
        { node: nodeOf(c, i * PODS_PER_NODE), owner: ownerOf(c, i, 0) },
        IpamReleaseReplySchema,
      );
    });
    rows.pop();

    const alloc = await concurrent(
      'pod IP allocate through NATS (service + KV CAS write)',
      perClient,
      async (c, i) => {
        await rpc.request(
          ipamNodeSubject('allocate', nodeOf(c, i)),
          { node: nodeOf(c, i), owner: ownerOf(c, i, 1) },
          IpamAllocateReplySchema,
        );
      },
      `${CLIENTS} clients, each filling ${NODES_PER_CLIENT} node(s) to ${PODS_PER_NODE} pods`,
    );
    const retried = await concurrent(
      'pod IP allocate, same owner again (retried CNI ADD)',
      Math.min(perClient, 500),
      async (c, i) => {
        await rpc.request(
          ipamNodeSubject('allocate', nodeOf(c, i)),
          { node: nodeOf(c, i), owner: ownerOf(c, i, 1) },
          IpamAllocateReplySchema,
        );
      },
      'answered by a compare-and-set of the unchanged document',
    );
    const rel = await concurrent('pod IP release through NATS', perClient, async (c, i) => {
      await rpc.request(
        ipamNodeSubject('release', nodeOf(c, i)),
        { node: nodeOf(c, i), owner: ownerOf(c, i, 1) },
        IpamReleaseReplySchema,
      );
    });

    // Node CIDRs: 5,000 nodes through the service, against the pure core in-process.
    const carvePer = Math.ceil(CARVE_NODES / CLIENTS);
    const carve = await concurrent(
      `carve pod CIDRs for ${CARVE_NODES} nodes through NATS`,
      carvePer,
      async (c, i) => {
        if (c * carvePer + i >= CARVE_NODES) return;
        await rpc.request(
          ipamNodeSubject('node-cidrs', `carve-${c}-${i}`),
          { node: `carve-${c}-${i}` },
          IpamNodeCidrsReplySchema,
          { timeoutMs: 30_000 },
        );
      },
      'one cluster document, group-committed; CiliumNode written per node',
    );
    const config = clusterPoolConfig({});
    let state: NodeCidrState = emptyNodeCidrState();
    const t0 = performance.now();
    for (let n = 0; n < CARVE_NODES; n++)
      state = allocateNodeCidrs(state, config, `core-${n}`).state;
    const coreMs = performance.now() - t0;
    rows.push({
      name: `baseline: carve ${CARVE_NODES} nodes, pure core in-process`,
      ops: CARVE_NODES,
      opsPerSec: CARVE_NODES / (coreMs / 1000),
      note: 'one transition per node, no I/O',
    });

    const fmt = (n: number | undefined, d = 2): string => (n === undefined ? '-' : n.toFixed(d));
    console.log(`IPAM over NATS benchmark (${cpus().length} CPUs, Node ${process.version})`);
    console.log(`command: ${COMMAND}${QUICK ? ' -- --quick' : ''}\n`);
    console.log('| measurement | ops | ops/s | p50 ms | p99 ms | note |');
    console.log('|---|---:|---:|---:|---:|---|');
    for (const r of rows) {
      console.log(
        `| ${r.name} | ${r.ops} | ${Math.round(r.opsPerSec)} | ${fmt(r.p50ms)} | ${fmt(r.p99ms)} | ${r.note ?? ''} |`,
      );
    }
    console.log('');
    console.log(
      `allocate vs echo baseline: ${(alloc.opsPerSec / base.opsPerSec).toFixed(2)}x throughput, p99 ${(alloc.p99ms! / base.p99ms!).toFixed(1)}x`,
    );
    const both = 1 / (1 / base.opsPerSec + 1 / kvBase.opsPerSec);
    console.log(
      `allocate vs echo and KV update in sequence (${Math.round(both)}/s): ${(alloc.opsPerSec / both).toFixed(2)}x`,
    );
    console.log(
      `retried allocate vs echo: ${(retried.opsPerSec / base.opsPerSec).toFixed(2)}x; release vs echo: ${(rel.opsPerSec / base.opsPerSec).toFixed(2)}x`,
    );
    console.log(
      `carving through NATS vs core: ${(carve.opsPerSec / (CARVE_NODES / (coreMs / 1000))).toFixed(3)}x (${(CARVE_NODES / carve.opsPerSec).toFixed(2)} s for ${CARVE_NODES} nodes)`,
    );
    const target = alloc.opsPerSec >= 5_000 && alloc.p99ms! < 10;
    console.log(
      `target (>= 5,000 allocations/s, p99 < 10 ms): ${target ? 'met' : 'MISSED'} (${Math.round(alloc.opsPerSec)}/s, p99 ${fmt(alloc.p99ms)} ms)`,
    );
  } finally {
    await nc?.close();
    for (const p of procs) await p.kill('SIGTERM');
    await nats.close();
  }
}

if (!COMPARE_ONLY) await throughNats();
await securedAgainstPlain();
