// Benchmark (not a test): the bridge's initial sync of many objects into the resource store, and
// the latency from an API write to the store's watch event, each against a baseline measured in
// the same run on the same API server: a plain @kubernetes/client-node informer (list + watch,
// doing nothing with what it gets).
//
//   npm run bench -w @ciliate/kube-bridge                       # 10,000 Namespaces, 300 updates
//   npm run bench -w @ciliate/kube-bridge -- --objects 2000 --updates 100
//
// Namespaces are the objects: the cheapest supported kind for the API server to create in bulk
// (no cluster IP to allocate), validated and stored by the bridge like any other.
import { performance } from 'node:perf_hooks';

import { resourceKey } from '@ciliate/contracts';
import { CoreV1Api, makeInformer, type V1Namespace } from '@kubernetes/client-node';

import { importedByBridge } from '../convert.js';
import { loadKubeConfig } from '../kube/client.js';
import { spawnBridge, startEnv, type BridgeProcess } from '../testing.k8s-helpers.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer`);
  return v;
}

const OBJECTS = arg('objects', 10_000);
const UPDATES = arg('updates', 300);
const CREATE_CONCURRENCY = 8;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const fmt = (ms: number): string => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1));

async function main(): Promise<void> {
  const command = `npm run bench -w @ciliate/kube-bridge -- --objects ${OBJECTS} --updates ${UPDATES}`;
  console.log(`kube-bridge sync benchmark: ${OBJECTS} Namespaces, ${UPDATES} updates`);
  const env = await startEnv({ crds: false });
  let bridge: BridgeProcess | undefined;
  try {
    // The objects, made through the API with a few requests in flight.
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CREATE_CONCURRENCY }, async () => {
        while (next < OBJECTS) {
          const i = next++;
          await env.admin.request('POST', '/api/v1/namespaces', {
            metadata: { name: `bench-${i}`, labels: { bench: 'yes', seq: String(i) } },
          });
        }
      }),
    );
    const createMs = performance.now() - t0;
    const total = OBJECTS + 4; // default, kube-system, kube-public, kube-node-lease

    // Baseline: a plain client-node informer on the same collection.
    const kc = loadKubeConfig({ kubeconfig: env.kube.kubeconfig });
    const core = kc.makeApiClient(CoreV1Api);
    const informer = makeInformer<V1Namespace>(kc, '/api/v1/namespaces', () =>
      core.listNamespace(),
    );
    const baseEvents = new Map<string, number>();
    informer.on('update', (ns) => {
      const gen = ns.metadata?.labels?.gen;
      if (gen) baseEvents.set(`${ns.metadata!.name}/${gen}`, performance.now());
    });
    informer.on('error', () => {
      // the baseline's own watch errors are not this benchmark's business
    });
    const b0 = performance.now();
    await informer.start();
    const baselineSyncMs = performance.now() - b0;
    const baselineCount = informer.list().length;

    // The bridge, as a process, from start to the store holding every object.
    const seen = new Map<string, number>();
    const storeEvents = new Map<string, number>();
    let imported = 0;
    const watch = await env.store.watch({ kind: 'Namespace' }, {}, (ev) => {
      const obj = ev.value as V1Namespace | undefined;
      if (!obj || !importedByBridge(obj as never)) return;
      if (!seen.has(ev.key)) imported++;
      seen.set(ev.key, ev.revision);
      const gen = obj.metadata?.labels?.gen;
      if (gen) storeEvents.set(`${obj.metadata!.name}/${gen}`, performance.now());
    });
    await watch.synced;
    const s0 = performance.now();
    bridge = await spawnBridge({
      kubeconfig: env.kube.kubeconfig,
      nats: env.nats,
      kindRetryPeriod: '10m',
    });
    let allImportedMs = 0;
    for (;;) {
      if (!allImportedMs && imported >= total) allImportedMs = performance.now() - s0;
      if (allImportedMs && (await env.store.sourceSynced('kubernetes'))) break;
      if (performance.now() - s0 > 600_000)
        throw new Error(`initial sync not done after 10 min (${imported}/${total})`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const bridgeSyncMs = performance.now() - s0;

    // Latency: one write at a time; both watchers see the same writes.
    const bridgeLat: number[] = [];
    const baseLat: number[] = [];
    for (let i = 0; i < UPDATES; i++) {
      const name = `bench-${(i * 7919) % OBJECTS}`;
      const gen = String(i + 1);
      const key = `${name}/${gen}`;
      const w0 = performance.now();
      await env.admin.request(
        'PATCH',
        `/api/v1/namespaces/${name}`,
        { metadata: { labels: { gen } } },
        'application/merge-patch+json',
      );
      const deadline = w0 + 10_000;
      while (!(storeEvents.has(key) && baseEvents.has(key))) {
        if (performance.now() > deadline) throw new Error(`no event for ${key} within 10 s`);
        await new Promise((r) => setImmediate(r));
      }
      bridgeLat.push(storeEvents.get(key)! - w0);
      baseLat.push(baseEvents.get(key)! - w0);
    }
    bridgeLat.sort((a, b) => a - b);
    baseLat.sort((a, b) => a - b);
    await informer.stop();
    await watch.stop();
    const check = resourceKey({ kind: 'Namespace', namespace: '', name: `bench-${OBJECTS - 1}` });

    console.log('');
    console.log(
      `created ${OBJECTS} Namespaces through the API in ${(createMs / 1000).toFixed(1)} s (${CREATE_CONCURRENCY} requests in flight)`,
    );
    console.log('');
    console.log('initial sync                                   objects   time');
    console.log(
      `  baseline: client-node informer (list only)   ${String(baselineCount).padStart(7)}   ${(baselineSyncMs / 1000).toFixed(2)} s`,
    );
    console.log(
      `  kube-bridge: process start -> all in store   ${String(imported).padStart(7)}   ${(allImportedMs / 1000).toFixed(2)} s`,
    );
    console.log(
      `  kube-bridge: -> source marked synced         ${String(seen.size).padStart(7)}   ${(bridgeSyncMs / 1000).toFixed(2)} s  (${Math.round(total / (bridgeSyncMs / 1000))} objects/s, ${ratio(bridgeSyncMs, baselineSyncMs)} the informer's list)`,
    );
    console.log('');
    console.log(
      `event latency, API write returned -> event (${UPDATES} updates, one at a time)   p50 ms   p99 ms   max ms`,
    );
    console.log(
      `  baseline: client-node informer update event                       ${fmt(percentile(baseLat, 50)).padStart(7)}  ${fmt(percentile(baseLat, 99)).padStart(7)}  ${fmt(baseLat.at(-1)!).padStart(7)}`,
    );
    console.log(
      `  kube-bridge: store watch event                                    ${fmt(percentile(bridgeLat, 50)).padStart(7)}  ${fmt(percentile(bridgeLat, 99)).padStart(7)}  ${fmt(bridgeLat.at(-1)!).padStart(7)}`,
    );
    console.log(
      `  ratio to the baseline                                             ${ratio(percentile(bridgeLat, 50), percentile(baseLat, 50)).padStart(7)}  ${ratio(percentile(bridgeLat, 99), percentile(baseLat, 99)).padStart(7)}`,
    );
    console.log('');
    console.log(`(store key checked: ${check} present: ${seen.has(check)})`);
    console.log(`reproduce: ${command}`);
  } finally {
    await bridge?.kill('SIGTERM');
    await env.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

function ratio(value: number, baseline: number): string {
  return `${(value / baseline).toFixed(2)}x`;
}
