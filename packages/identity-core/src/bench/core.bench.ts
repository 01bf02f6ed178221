// Benchmark of the pure identity core: how fast label sets become numbers through the full
// compare-and-set protocol (against the in-memory KV fake, so this is the core's own cost with
// no network), how fast known sets and IPs resolve, and how much memory 65,000 identities take.
// A baseline in the same run (a bare Map handing out counters) shows the protocol's overhead.
//
//   npm run bench -w @ciliate/identity-core     (node --expose-gc dist/bench/core.bench.js)
import { performance } from 'node:perf_hooks';

import { labelSetKey } from '@ciliate/contracts';

import {
  IdentityTable,
  Ipcache,
  MemoryKv,
  clusterIdentityRange,
  collectGarbage,
  podIdentityLabels,
  startAllocation,
  stepAllocation,
  type AllocationState,
  type ReferenceState,
} from '../index.js';

const COUNT = Number(process.env.IDENTITY_BENCH_COUNT ?? 65_000);
const RANGE = clusterIdentityRange({ id: 0 });
const gc = (globalThis as { gc?: () => void }).gc;

function heapMiB(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

function podLabelsOf(i: number): { podLabels: Record<string, string>; namespace: string } {
  return {
    podLabels: {
      app: `app-${i}`,
      tier: ['web', 'api', 'db'][i % 3]!,
      version: `v${i % 7}`,
      'app.kubernetes.io/part-of': `suite-${i % 50}`,
      'pod-template-hash': (i * 2654435761).toString(16).slice(0, 10),
    },
    namespace: `ns-${i % 40}`,
  };
}

function rate(n: number, ms: number): string {
  return `${Math.round((n / ms) * 1000).toLocaleString('en-US')}/s`;
}

const rows: [string, string, string][] = [];
function report(what: string, value: string, note = ''): void {
  rows.push([what, value, note]);
}

// 1. Label sets from pod metadata (filter, fold namespace, canonical key).
const keys: string[] = new Array<string>(COUNT);
{
  const t0 = performance.now();
  for (let i = 0; i < COUNT; i++) {
    const { podLabels, namespace } = podLabelsOf(i);
    keys[i] = podIdentityLabels({
      podLabels,
      namespace,
      namespaceLabels: { 'kubernetes.io/metadata.name': namespace, env: 'prod' },
      serviceAccount: 'default',
      clusterName: 'default',
    }).key;
  }
  report(
    'pod labels -> identity key',
    rate(COUNT, performance.now() - t0),
    '9 labels, default filter',
  );
}

// 2. Baseline: a bare Map handing out counters (no uniqueness protocol, no store).
{
  const t0 = performance.now();
  const m = new Map<string, number>();
  let next = RANGE.min;
  for (const k of keys) if (!m.has(k)) m.set(k, next++);
  report('baseline: Map counter', rate(COUNT, performance.now() - t0), 'no store, no CAS');
}

// 3. New identities through the full machine against the in-memory CAS store.
const heapBefore = heapMiB();
let kv: MemoryKv | undefined = new MemoryKv();
const table = new IdentityTable();
kv.onChange((key, value) => table.applyKv(key, value));
let ops = 0;
{
  const t0 = performance.now();
  for (const labels of keys) {
    let step = startAllocation({ labels, range: RANGE, now: 0 }, table);
    while (step.op !== undefined) {
      step = stepAllocation(step.state, kv.execute(step.op), table, 0);
      ops++;
    }
    const s: AllocationState = step.state;
    if (s.phase !== 'done') throw new Error(`allocation failed: ${s.error?.message}`);
  }
  const ms = performance.now() - t0;
  report(
    'new identities (allocation machine)',
    rate(COUNT, ms),
    `${(ops / COUNT).toFixed(2)} KV ops each, ${table.size} in a range of ${RANGE.max - RANGE.min + 1}`,
  );
}
const heapWithStore = heapMiB();

// 4. Known label sets: answered from the mirror.
{
  const t0 = performance.now();
  let hits = 0;
  for (const labels of keys) {
    const step = startAllocation({ labels, range: RANGE, now: 0 }, table);
    if (step.op === undefined && step.state.result?.outcome === 'existing') hits++;
  }
  if (hits !== COUNT) throw new Error(`expected ${COUNT} mirror hits, got ${hits}`);
  report('lookups of known sets (mirror)', rate(COUNT, performance.now() - t0), 'no KV round trip');
}

// 5. Memory of what a service keeps: the mirror, once the store fake is gone.
const kvKeys = kv.size;
kv = undefined;
const heapMirror = heapMiB();

// 6. Ipcache: one host entry per identity plus some CIDRs; LPM lookups.
const ipcache = new Ipcache();
{
  const t0 = performance.now();
  for (let i = 0; i < COUNT; i++) {
    ipcache.upsert({
      prefix: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      identity: RANGE.min + (i % (RANGE.max - RANGE.min)),
      hostIP: `192.168.${(i >> 8) & 3}.${i & 255 || 1}`,
      source: 'k8s',
      ownerKey: `pod/ns/p${i}`,
    });
  }
  for (let i = 0; i < 256; i++) {
    ipcache.upsert({
      prefix: `10.${i}.0.0/16`,
      identity: 16777217 + i,
      source: 'generated',
      ownerKey: `cidr/${i}`,
    });
  }
  report('ipcache upserts', rate(COUNT + 256, performance.now() - t0));
  const probes = 200_000;
  const t1 = performance.now();
  let found = 0;
  for (let i = 0; i < probes; i++) {
    const j = (i * 7919) % (COUNT * 2);
    if (ipcache.lookup(`10.${(j >> 16) & 255}.${(j >> 8) & 255}.${j & 255}`) !== undefined) found++;
  }
  report(
    'ipcache LPM lookups',
    rate(probes, performance.now() - t1),
    `${found} of ${probes} matched`,
  );
}

// 7. One GC pass over every identity, 500 nodes holding references.
{
  const ids = [...table.identities()].map((r) => r.id);
  const references: Record<string, number[]> = {};
  const leases: Record<string, number> = {};
  for (let n = 0; n < 500; n++) {
    leases[`node-${n}`] = n % 10 === 0 ? 500 : 10_000;
    references[`node-${n}`] = ids.filter((_, i) => i % 500 === n);
  }
  const state: ReferenceState = { identities: ids, leases, references, idleSince: {} };
  const t0 = performance.now();
  const r = collectGarbage(state, 1000, 0, true);
  report(
    'GC pass',
    `${(performance.now() - t0).toFixed(1)} ms`,
    `${ids.length} identities, 500 nodes, ${r.free.length} freed, ${r.expiredNodes.length} leases expired`,
  );
}

report(
  'heap: store fake + mirror',
  `${(heapWithStore - heapBefore).toFixed(1)} MiB`,
  `${COUNT} identities (${kvKeys} KV keys)`,
);
report(
  'heap: mirror alone',
  `${(heapMirror - heapBefore).toFixed(1)} MiB`,
  `${Math.round(((heapMirror - heapBefore) * 2 ** 20) / COUNT)} bytes per identity (IdentityTable)`,
);

const width = Math.max(...rows.map((r) => r[0].length));
const vwidth = Math.max(...rows.map((r) => r[1].length));
console.log(
  `identity core benchmark: ${COUNT} identities, node ${process.version}, ${gc ? 'gc exposed' : 'no --expose-gc: heap figures are noisy'}`,
);
for (const [what, value, note] of rows)
  console.log(`  ${what.padEnd(width)}  ${value.padStart(vwidth)}  ${note}`);
console.log(
  `reproduce: npm run bench -w @ciliate/identity-core   (node --expose-gc dist/bench/core.bench.js; IDENTITY_BENCH_COUNT=${COUNT})`,
);
// Keep the measured structures alive until the end so the heap figures mean what they say.
if (table.size + ipcache.size + labelSetKey([]).length < 0) console.log('unreachable');
