// Benchmark of the pure IPAM core (no NATS): pod IP allocations per second and per-call
// latency, node CIDR carving for 5,000 nodes, and an LB-IPAM reconcile. Each measurement runs
// next to a baseline in the same process, so numbers from different machines compare.
//
//   npx turbo run build --filter=@ciliate/ipam-core && npm run bench -w @ciliate/ipam-core
import { cpus } from 'node:os';

import {
  type LbPool,
  type LbService,
  type NodeCidrState,
  type PodPoolState,
  allocateNodeCidrs,
  allocatePodIp,
  carveNodeCidrs,
  checkNodeCidrState,
  checkPodPoolState,
  clusterPoolConfig,
  createPodPool,
  emptyLbIpamState,
  emptyNodeCidrState,
  reconcileLb,
  releaseNodeCidrs,
  releasePodIp,
  restoreNodeCidrs,
} from '../index.js';

const COMMAND =
  'npx turbo run build --filter=@ciliate/ipam-core && npm run bench -w @ciliate/ipam-core';

interface Row {
  name: string;
  ops: number;
  opsPerSec: number;
  p50us?: number;
  p99us?: number;
  totalMs: number;
  note?: string;
}

const rows: Row[] = [];

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length));
  return sorted[i] as number;
}

/** Runs `op` n times, timing each call. */
function timed(name: string, n: number, op: (i: number) => void, note?: string): Row {
  const lat = new Float64Array(n);
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    op(i);
    lat[i] = (performance.now() - t) * 1000;
  }
  const totalMs = performance.now() - start;
  lat.sort();
  const row: Row = {
    name,
    ops: n,
    opsPerSec: n / (totalMs / 1000),
    p50us: percentile(lat, 50),
    p99us: percentile(lat, 99),
    totalMs,
    ...(note === undefined ? {} : { note }),
  };
  rows.push(row);
  return row;
}

/** Runs `op` once and reports it as `ops` units of work. */
function once(name: string, ops: number, op: () => void, note?: string): Row {
  const start = performance.now();
  op();
  const totalMs = performance.now() - start;
  const row: Row = {
    name,
    ops,
    opsPerSec: ops / (totalMs / 1000),
    totalMs,
    ...(note === undefined ? {} : { note }),
  };
  rows.push(row);
  return row;
}

const owner = (i: number): string => `bench/pod-${i}/c${i.toString(16).padStart(12, '0')}/eth0`;

// ---------------------------------------------------------------------------------------------
// Pod IPs: churn in a node's /24 with ~200 addresses in use (a busy node).

function podChurn(n: number): void {
  const live: number[] = [];
  let next = 0;
  let state: PodPoolState = createPodPool('10.1.3.0/24');
  for (; next < 200; next++) {
    state = allocatePodIp(state, owner(next)).state;
    live.push(next);
  }
  // Warm-up so the JIT has settled before timing.
  for (let i = 0; i < 2000; i++) {
    const gone = live.shift() as number;
    state = releasePodIp(state, owner(gone)).state;
    state = allocatePodIp(state, owner(next)).state;
    live.push(next++);
  }
  timed(
    'pod IP allocate+release, /24 with 200 in use (pure transitions)',
    n,
    () => {
      const gone = live.shift() as number;
      state = releasePodIp(state, owner(gone)).state;
      state = allocatePodIp(state, owner(next)).state;
      live.push(next++);
    },
    'one op = release one pod and allocate another',
  );

  // The same, with the state going through JSON each time as it does through the KV bucket.
  let text = JSON.stringify(state);
  timed(
    'pod IP allocate+release, /24, with JSON load/store per op',
    n,
    () => {
      const gone = live.shift() as number;
      let s = checkPodPoolState(JSON.parse(text));
      s = releasePodIp(s, owner(gone)).state;
      s = allocatePodIp(s, owner(next)).state;
      live.push(next++);
      text = JSON.stringify(s);
    },
    'parse + validate + 2 transitions + stringify',
  );

  // A retried CNI ADD: the idempotent path (an owner `state` holds).
  const someone = state.allocations[state.allocations.length - 1]?.owner as string;
  timed('pod IP allocate, same owner again (retried CNI ADD)', n, () => {
    if (allocatePodIp(state, someone).created) throw new Error('not idempotent');
  });

  // Baseline: a mutable set of offsets, no immutability, no JSON state.
  const used = new Set<number>();
  const byOwner = new Map<string, number>();
  let cursor = 1;
  const alloc = (o: string): number => {
    while (used.has(cursor)) cursor = cursor >= 254 ? 1 : cursor + 1;
    used.add(cursor);
    byOwner.set(o, cursor);
    return cursor;
  };
  const liveB: number[] = [];
  let nextB = 0;
  for (; nextB < 200; nextB++) {
    alloc(owner(nextB));
    liveB.push(nextB);
  }
  timed(
    'baseline: mutable Set allocator, same churn',
    n,
    () => {
      const gone = liveB.shift() as number;
      const o = owner(gone);
      used.delete(byOwner.get(o) as number);
      byOwner.delete(o);
      alloc(owner(nextB));
      liveB.push(nextB++);
    },
    'lower bound for this workload',
  );
}

function podFill(): void {
  // Filling a /20 (4,094 addresses): each transition copies the owner map, so cost grows with
  // the number of pods on the node.
  let state = createPodPool('10.2.0.0/20');
  once('pod IP fill a /20 node range (4,093 pods), pure transitions', 4093, () => {
    for (let i = 0; i < 4093; i++) state = allocatePodIp(state, owner(i)).state;
  });
}

// ---------------------------------------------------------------------------------------------
// Node CIDRs: 5,000 nodes, dual stack, Cilium's default cluster pools.

function carving(): void {
  const cfg = clusterPoolConfig({ enableIPv6: true });
  const names = Array.from({ length: 5000 }, (_, i) => `node-${i}`);

  let batch: NodeCidrState = emptyNodeCidrState();
  once(
    'carve 5,000 nodes (dual stack) in one transition',
    5000,
    () => {
      batch = carveNodeCidrs(emptyNodeCidrState(), cfg, names).state;
    },
    '10.0.0.0/8 in /24s + fd00::/104 in /120s',
  );

  let s: NodeCidrState = emptyNodeCidrState();
  once(
    'carve 5,000 nodes one transition per node',
    5000,
    () => {
      for (const n of names) s = allocateNodeCidrs(s, cfg, n).state;
    },
    'each call copies the node map: O(nodes)',
  );

  const entries = batch.nodes.map((e) => ({
    node: e.node,
    podCIDRs: [e.ipv4 as string, e.ipv6 as string],
  }));
  once('restore 5,000 CiliumNode podCIDRs at start-up', 5000, () => {
    restoreNodeCidrs(emptyNodeCidrState(), cfg, entries);
  });

  const text = JSON.stringify(batch);
  once(
    'load 5,000-node state from JSON and index it',
    5000,
    () => {
      checkNodeCidrState(JSON.parse(text), cfg);
    },
    `${(text.length / 1024).toFixed(0)} KiB document`,
  );

  // Churn on the full state: a node leaves, another joins.
  let churn = s;
  let k = 5000;
  timed('node leaves + node joins on a 5,000-node state', 500, (i) => {
    churn = releaseNodeCidrs(churn, `node-${i}`, cfg).state;
    churn = allocateNodeCidrs(churn, cfg, `node-${k++}`).state;
  });

  // Baseline: the obvious carver, checking each candidate against every assigned CIDR.
  once(
    'baseline: naive carving, linear overlap check, 5,000 nodes (IPv4)',
    5000,
    () => {
      const taken: number[] = [];
      for (let i = 0; i < 5000; i++) {
        for (let cand = 0; cand < 65536; cand++) {
          const net = (10 << 24) + cand * 256;
          if (!taken.some((t) => t === net)) {
            taken.push(net);
            break;
          }
        }
      }
    },
    'O(nodes^2)',
  );
}

// ---------------------------------------------------------------------------------------------
// LB-IPAM: 1,000 LoadBalancer Services, a fifth with requested addresses, some sharing.

function lb(): void {
  const pools: LbPool[] = [
    {
      metadata: { name: 'default-pool', creationTimestamp: '2025-01-01T00:00:00Z' },
      spec: { blocks: [{ cidr: '10.0.0.0/20' }] },
    },
    {
      metadata: { name: 'v6', creationTimestamp: '2025-01-02T00:00:00Z' },
      spec: { blocks: [{ cidr: 'fd00:6::/112' }] },
    },
  ];
  const services: LbService[] = Array.from({ length: 1000 }, (_, i) => ({
    metadata: {
      name: `svc-${i}`,
      namespace: `ns-${i % 20}`,
      annotations: {
        ...(i % 5 === 0 ? { 'lbipam.cilium.io/ips': `10.0.${8 + (i >> 8)}.${i & 255}` } : {}),
        ...(i % 7 === 0 ? { 'lbipam.cilium.io/sharing-key': `key-${i % 3}` } : {}),
      },
      creationTimestamp: '2025-02-01T00:00:00Z',
    },
    spec: {
      type: 'LoadBalancer',
      ports: [{ port: 1000 + i, protocol: 'TCP' }],
      ...(i % 4 === 0 ? { ipFamilyPolicy: 'PreferDualStack' } : {}),
    },
  }));
  const opts = { now: '2025-06-01T00:00:00Z', ipv6Enabled: true };
  let first = reconcileLb(pools, services, emptyLbIpamState(), opts);
  once('LB reconcile, 1,000 Services, first pass', 1000, () => {
    first = reconcileLb(pools, services, emptyLbIpamState(), opts);
  });
  const written = services.map((s, i) => ({ ...s, status: first.services[i]?.status ?? {} }));
  once('LB reconcile, 1,000 Services, steady state', 1000, () => {
    reconcileLb(pools, written, first.state, opts);
  });
}

// ---------------------------------------------------------------------------------------------

function fmt(n: number | undefined, digits = 1): string {
  if (n === undefined) return '-';
  return n >= 1000 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits);
}

function main(): void {
  const quick = process.argv.includes('--quick');
  const n = quick ? 5000 : 50000;
  podChurn(n);
  podFill();
  carving();
  lb();

  const cpu = cpus();
  console.log(`\n@ciliate/ipam core benchmark (pure functions, no NATS)`);
  console.log(`node ${process.version}, ${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}\n`);
  const header = ['benchmark', 'ops', 'ops/s', 'p50 µs', 'p99 µs', 'total ms'];
  const table = rows.map((r) => [
    r.name,
    fmt(r.ops, 0),
    fmt(r.opsPerSec),
    fmt(r.p50us, 2),
    fmt(r.p99us, 2),
    fmt(r.totalMs),
  ]);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...table.map((row) => (row[i] as string).length)),
  );
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of table) console.log(line(row));
  const notes = rows.filter((r) => r.note !== undefined);
  if (notes.length > 0) {
    console.log('\nnotes:');
    for (const r of notes) console.log(`  ${r.name}: ${r.note}`);
  }
  console.log(`\nreproduce with: ${COMMAND}${quick ? ' -- --quick' : ''}`);
  console.log(`json: ${JSON.stringify({ command: COMMAND, node: process.version, rows })}`);
}

main();
