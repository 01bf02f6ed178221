// Benchmark of the IPAM service through NATS: pod IP allocations per second and latency with 16
// concurrent clients against the service (its own process, a single nats-server with JetStream),
// and carving pod CIDRs for 5,000 nodes. Each runs next to a baseline in the same run: a bare
// NATS echo responder (what a request/reply costs here) and the pure core in-process.
//
//   npx turbo run build --filter=@ciliate/ipam && npm run bench -w @ciliate/ipam   [-- --quick]
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

import {
  IpamAllocateReplySchema,
  IpamNodeCidrsReplySchema,
  IpamReleaseReplySchema,
  ipamNodeSubject,
} from '@ciliate/contracts';
import { spawnNode, startNats, waitFor, type NodeProcess } from '@ciliate/testkit';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';

import {
  allocateNodeCidrs,
  clusterPoolConfig,
  emptyNodeCidrState,
  type NodeCidrState,
} from '@ciliate/ipam-core';
import { createRpcClient, disabledTracing } from '@ciliate/runtime';

const COMMAND = 'npx turbo run build --filter=@ciliate/ipam && npm run bench -w @ciliate/ipam';
const QUICK = process.argv.includes('--quick');
const CLIENTS = 16;
const NODES_PER_CLIENT = QUICK ? 2 : 11;
// kubelet's default max-pods: a node never holds more.
const PODS_PER_NODE = 110;
const CARVE_NODES = 5_000;

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
async function concurrent(
  name: string,
  perClient: number,
  work: (client: number, i: number) => Promise<void>,
  note?: string,
): Promise<Row> {
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
  const ms = performance.now() - start;
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
  const ipam = spawnNode(fileURLToPath(new URL('../main.js', import.meta.url)), [], {
    env: {
      CILIATE_NATS_URL: nats.url,
      CILIATE_HTTP_ADDRESS: '127.0.0.1:0',
      CILIATE_LOG_LEVEL: 'warn',
      CILIATE_NODE: 'bench',
    },
  });
  procs.push(ipam);
  // Log level warn hides service.started: wait for the endpoint instead.
  await waitFor(
    'the IPAM service',
    async () => {
      if (ipam.child.exitCode !== null) throw new Error(ipam.output());
      try {
        await rpc.request(
          ipamNodeSubject('node-cidrs', 'warmup'),
          { node: 'warmup' },
          IpamNodeCidrsReplySchema,
        );
        return true;
      } catch {
        return undefined;
      }
    },
    { timeoutMs: 20_000 },
  );
  const nodeOf = (c: number, i: number): string =>
    `bench-${c}-${Math.floor(i / PODS_PER_NODE) % NODES_PER_CLIENT}`;
  const ownerOf = (c: number, i: number, round: number) => ({
    namespace: 'bench',
    pod: `p${c}-${i}-${round}`,
    containerID: `c${c}x${i}x${round}`,
    ifname: 'eth0',
  });
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
  for (let n = 0; n < CARVE_NODES; n++) state = allocateNodeCidrs(state, config, `core-${n}`).state;
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
