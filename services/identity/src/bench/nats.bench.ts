// Benchmark of the identity service through NATS: new identities per second and lookups per
// second with concurrent clients against one replica on one nats-server, and the memory the
// service process needs for 65,000 identities. Each figure is set against a baseline measured
// in the same run on the same server: a bare NATS echo responder (request/reply cost) and a raw
// JetStream KV create loop (the store's cost; a new identity takes two KV writes). Then the same
// new-identity workload against a plain nats-server and against one secured as deployments run
// it (mutual TLS, one nkey user per principal with the permission table), chunks alternating.
//
//   npx turbo run build --filter=@ciliate/identity && npm run bench -w @ciliate/identity
//
// Knobs: IDENTITY_BENCH_CLIENTS (32), IDENTITY_BENCH_NEW (20000, timed), IDENTITY_BENCH_FILL
// (65000 identities in total for the memory figure), IDENTITY_BENCH_LOOKUPS (50000),
// IDENTITY_BENCH_WARMUP (5000 identities and raw creates first, not reported),
// IDENTITY_BENCH_CHUNKS (5), IDENTITY_BENCH_REPLICAS (1), IDENTITY_BENCH_COMPARE_NEW (10000 new
// identities on each side of the secured/plain comparison, in IDENTITY_BENCH_CHUNKS chunks),
// IDENTITY_BENCH_COMPARE_ONLY=1 (the comparison alone),
// IDENTITY_BENCH_CPU_PROF (a directory: the service writes a V8 CPU profile there on exit).
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  IdentityAllocateReplySchema,
  IdentityInfoSchema,
  buckets,
  identitySubject,
  identityNodeSubject,
} from '@ciliate/contracts';
import {
  createRpcClient,
  decodeText,
  disabledTracing,
  natsConnectionOptions,
  newInbox,
  watchKv,
  type RpcClient,
} from '@ciliate/runtime';
import { startSecureNats } from '@ciliate/runtime/testing';
import { ResourceStore } from '@ciliate/store';
import { jetstream } from '@nats-io/jetstream';
import {
  pidsWithArgument,
  processCpuSeconds,
  spawnNode,
  startNats,
  waitFor,
  type NodeProcess,
} from '@ciliate/testkit';
import { Kvm } from '@nats-io/kv';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';

import { IdentityMirror } from '../service/mirror.js';

const CLIENTS = Number(process.env.IDENTITY_BENCH_CLIENTS ?? 32);
const NEW = Number(process.env.IDENTITY_BENCH_NEW ?? 20_000);
const FILL = Number(process.env.IDENTITY_BENCH_FILL ?? 65_000);
const LOOKUPS = Number(process.env.IDENTITY_BENCH_LOOKUPS ?? 50_000);
const CPU_PROF = process.env.IDENTITY_BENCH_CPU_PROF;
const CHUNKS = Number(process.env.IDENTITY_BENCH_CHUNKS ?? 5);
const WARMUP = Number(process.env.IDENTITY_BENCH_WARMUP ?? 5000);
const COMPARE_NEW = Number(process.env.IDENTITY_BENCH_COMPARE_NEW ?? 10_000);
const COMPARE_ONLY = process.env.IDENTITY_BENCH_COMPARE_ONLY === '1';
const CONNECTIONS = 4;
/** Nodes the load speaks for (node-scoped subjects): client c acts for node c % NODES. */
const NODES = 16;
// Issue 14: TLS and permissions may cost at most 10% of the allocation rate.
const SECURED_TARGET_RATIO = 0.9;
const REPLICAS = Number(process.env.IDENTITY_BENCH_REPLICAS ?? 1);
const TARGET_NEW_PER_S = 5000;
const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const ECHO = fileURLToPath(new URL('./echo-responder.js', import.meta.url));

function labelsOf(i: number): string[] {
  return [
    `k8s:app=app-${i}`,
    `k8s:tier=${['web', 'api', 'db'][i % 3]!}`,
    `k8s:version=v${i % 7}`,
    `k8s:io.kubernetes.pod.namespace=ns-${i % 40}`,
    'k8s:io.cilium.k8s.policy.cluster=default',
    'k8s:io.cilium.k8s.policy.serviceaccount=default',
  ];
}

/** Runs `total` operations over CLIENTS concurrent loops; returns operations per second. */
async function drive(
  total: number,
  op: (i: number, client: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        await op(i, c);
      }
    }),
  );
  return (total / (performance.now() - t0)) * 1000;
}

async function startProcess(
  script: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<NodeProcess> {
  const p = spawnNode(script, [], { env, nodeArgs });
  await waitFor(
    script,
    () => {
      if (p.child.exitCode !== null) throw new Error(p.output());
      return p.output().includes('"service.started"') || p.output().includes('service.started')
        ? true
        : undefined;
    },
    { timeoutMs: 30_000 },
  );
  return p;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function heapMiB(httpAddress: string): Promise<number> {
  const text = await (await fetch(`http://${httpAddress}/metrics`)).text();
  const m = /^ciliate_nodejs_heap_size_used_bytes\{[^}]*\} (\d+(?:\.\d+)?(?:e\+\d+)?)/m.exec(text);
  return m ? Number(m[1]) / 2 ** 20 : NaN;
}

const gc = (globalThis as { gc?: () => void }).gc;
function localHeapMiB(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/**
 * The state the service keeps per identity is its mirror of the bucket. Loading the same bucket
 * into an IdentityMirror here, with forced collections around it, measures exactly that state
 * (the service process's own heap figure also holds garbage not yet collected).
 */
async function mirrorMiB(nc: NatsConnection): Promise<{ mib: number; identities: number }> {
  const kv = await new Kvm(nc).open(buckets.identities());
  const before = localHeapMiB();
  const mirror = new IdentityMirror();
  const watch = await watchKv(
    jetstream(nc),
    kv,
    { filter: IdentityMirror.WATCH_FILTERS, decode: decodeText },
    (ev) => mirror.apply(ev.key, ev.value, ev.revision, ev.initial),
  );
  await watch.synced;
  await watch.stop();
  const after = localHeapMiB();
  return { mib: after - before, identities: mirror.table.bindings };
}

const encoder = new TextEncoder();

/**
 * Request/reply on one wildcard inbox per connection: what a load generator needs and no more
 * (no timer and no error object per request; a request never answered stalls the run).
 */
function leanRequester(nc: NatsConnection): (subject: string, data: Uint8Array) => Promise<Msg> {
  const prefix = `${newInbox(nc)}.`;
  const pending = new Map<string, (m: Msg) => void>();
  let next = 0;
  nc.subscribe(`${prefix}*`, {
    callback: (_err, m) => {
      const token = m.subject.slice(prefix.length);
      pending.get(token)?.(m);
      pending.delete(token);
    },
  });
  return (subject, data) =>
    new Promise<Msg>((resolve) => {
      const token = (next++).toString(36);
      pending.set(token, resolve);
      nc.publish(subject, data, { reply: prefix + token });
    });
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

type Requester = (subject: string, data: Uint8Array) => Promise<Msg>;

/**
 * Allocation of label set i by client c, as the lean load generator does it: on the node-scoped
 * subject of the client's node, the error header checked, the reply's number read; every 100th
 * reply is checked against the contract's schema.
 */
function allocator(
  requesterOf: (client: number) => Requester,
  nodeOf: (client: number) => string,
): (i: number, client: number) => Promise<number> {
  // One subject per node, built once.
  const bySubject = new Map<string, string>();
  const subjectOf = (node: string): string => {
    let s = bySubject.get(node);
    if (s === undefined) bySubject.set(node, (s = identityNodeSubject('allocate', node)));
    return s;
  };
  return async (i, c) => {
    const node = nodeOf(c);
    const body = encoder.encode(JSON.stringify({ node, labels: labelsOf(i) }));
    const m = await requesterOf(c)(subjectOf(node), body);
    const error = m.headers?.get('Nats-Service-Error');
    if (error) throw new Error(`allocate ${i}: ${error}`);
    const reply = m.json<{ id: number }>();
    if (i % 100 === 0) IdentityAllocateReplySchema.parse(reply);
    if (!Number.isInteger(reply.id)) throw new Error(`allocate ${i}: no identity in the reply`);
    return reply.id;
  };
}

/**
 * New identities against a plain nats-server and against a secured one (mutual TLS, nkey users,
 * contracts' permission table), each fresh with its own identity service. As in a cluster, a
 * node's datapath asks for its own node: NODES nodes with one connection each, as that node's
 * datapath principal on the secured server (which may allocate on its own node's subjects only),
 * the same connections without credentials on the plain one; CLIENTS loops, client c acting for
 * node c % NODES. After a warm-up on each, COMPARE_NEW new identities per side in CHUNKS chunks,
 * alternating which side goes first, so the machine's changing speed hits both alike.
 */
async function securedAgainstPlain(): Promise<string[]> {
  const nodes = Array.from({ length: NODES }, (_, k) => `node-${k}`);
  const plain = await startNats();
  const secure = await startSecureNats({ nodes }).catch(async (err: unknown) => {
    await plain.close();
    throw err;
  });
  const procs: NodeProcess[] = [];
  const conns: NatsConnection[] = [];
  try {
    type Side = {
      name: 'plain' | 'secured';
      allocate: (i: number, c: number) => Promise<number>;
      numbers: Set<number>;
      rates: number[];
      /** Pids of the side's nats-server and identity service. */
      pids: { server: number; service: number };
      /** CPU seconds over the measured chunks: this process, nats-server, the service. */
      cpu: { client: number; server: number; service: number };
    };
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
      const requesters: Requester[] = [];
      for (const node of nodes) {
        const nc = await connect(options(node));
        conns.push(nc);
        requesters.push(leanRequester(nc));
      }
      procs.push(
        await startProcess(MAIN, {
          ...(name === 'secured'
            ? secure.env({ role: 'identity' })
            : { CILIATE_NATS_URL: plain.url }),
          CILIATE_HTTP_ADDRESS: '127.0.0.1:0',
          CILIATE_NODE: 'bench',
          CILIATE_MIRROR_CILIUMIDENTITIES: 'false',
        }),
      );
      const server = name === 'secured' ? secure.server : plain;
      const [serverPid] = pidsWithArgument(join(server.dir, 'nats.conf'));
      if (serverPid === undefined) throw new Error(`no process runs ${server.dir}/nats.conf`);
      sides.push({
        name,
        allocate: allocator(
          (c) => requesters[c % NODES]!,
          (c) => nodes[c % NODES]!,
        ),
        numbers: new Set(),
        rates: [],
        pids: { server: serverPid, service: procs.at(-1)!.pid },
        cpu: { client: 0, server: 0, service: 0 },
      });
    }
    for (const side of sides) {
      await drive(WARMUP, async (i, c) => side.numbers.add(await side.allocate(i, c)));
    }
    const chunk = Math.ceil(COMPARE_NEW / CHUNKS);
    const seconds = new Map<Side, number>(sides.map((x) => [x, 0]));
    let measured = 0;
    for (let k = 0; k < CHUNKS && measured < COMPARE_NEW; k++) {
      const n = Math.min(chunk, COMPARE_NEW - measured);
      const from = WARMUP + measured;
      for (const side of k % 2 === 0 ? sides : [...sides].reverse()) {
        const client = process.cpuUsage();
        const server = processCpuSeconds(side.pids.server);
        const service = processCpuSeconds(side.pids.service);
        const rate = await drive(n, async (i, c) =>
          side.numbers.add(await side.allocate(from + i, c)),
        );
        const used = process.cpuUsage(client);
        side.cpu.client += (used.user + used.system) / 1e6;
        side.cpu.server += processCpuSeconds(side.pids.server) - server;
        side.cpu.service += processCpuSeconds(side.pids.service) - service;
        side.rates.push(rate);
        seconds.set(side, seconds.get(side)! + n / rate);
      }
      measured += n;
    }
    for (const side of sides) {
      if (side.numbers.size !== WARMUP + measured) {
        throw new Error(
          `${side.name}: ${WARMUP + measured} label sets got ${side.numbers.size} distinct identities`,
        );
      }
    }
    const [p, s] = sides as [Side, Side];
    const ratios = s.rates.map((r, k) => r / p.rates[k]!);
    const ratio = median(ratios);
    const overall = (side: Side): number => measured / seconds.get(side)!;
    const us = (side: Side): string =>
      (['client', 'server', 'service'] as const)
        .map((k) => `${Math.round((side.cpu[k] / measured) * 1e6)}`)
        .join(', ');
    return [
      `new identities, secured against plain (${fmt(measured)} per side after ${fmt(WARMUP)} warm-up, ${ratios.length} chunks alternating; ${NODES} nodes, one connection each, as the node's datapath principal on the secured server; fresh nats-server and service per side)`,
      `  plain:   median ${fmt(median(p.rates))}/s, chunks: ${p.rates.map(fmt).join(' ')}; all chunks together ${fmt(overall(p))}/s`,
      `  secured: median ${fmt(median(s.rates))}/s, chunks: ${s.rates.map(fmt).join(' ')}; all chunks together ${fmt(overall(s))}/s`,
      `  secured/plain: median of per-chunk ratios ${ratio.toFixed(3)} (chunks: ${ratios.map((r) => r.toFixed(2)).join(' ')}); all chunks together ${(overall(s) / overall(p)).toFixed(3)}`,
      `  CPU µs per new identity (load generator, nats-server, identity service): plain ${us(p)}; secured ${us(s)}`,
      `  target (secured at most 10% slower, median ratio >= ${SECURED_TARGET_RATIO}): ${ratio >= SECURED_TARGET_RATIO ? 'met' : 'MISSED'}`,
    ];
  } finally {
    for (const nc of conns) await nc.close().catch(() => undefined);
    for (const proc of procs) await proc.kill('SIGTERM');
    await secure.close();
    await plain.close();
  }
}

const rows: [string, string, string][] = [];

/** The service and its baselines on one plain nats-server: the table above the comparison. */
async function throughNats(): Promise<void> {
  const nats = await startNats();
  const procs: NodeProcess[] = [];
  const conns: NatsConnection[] = [];
  try {
    // Stack traces for every request would cost the load generator CPU the service needs.
    for (let i = 0; i < CONNECTIONS; i++) {
      conns.push(await connect({ servers: nats.url, noAsyncTraces: true }));
    }
    const rpcs: RpcClient[] = conns.map((nc) => createRpcClient(nc, disabledTracing));
    const rpc = (c: number): RpcClient => rpcs[c % rpcs.length]!;

    // Baseline 1: bare NATS request/reply to a responder process.
    const echo = await startProcess(ECHO, { CILIATE_NATS_URL: nats.url });
    procs.push(echo);
    const payload = new TextEncoder().encode(
      JSON.stringify({ node: 'node-1', labels: labelsOf(1) }),
    );
    const echoRate = await drive(LOOKUPS, (_i, c) =>
      conns[c % conns.length]!.request('bench.echo', payload, { timeout: 5000 }),
    );
    await echo.kill('SIGTERM');

    // Baseline 2: raw KV creates of fresh keys, the store operation allocation is made of.
    const kvm = new Kvm(conns[0]!);
    const raw = await kvm.create('bench-raw', { history: 1 });
    const value = new TextEncoder().encode('{"v":1,"id":300,"labels":"k8s:app=x;"}');
    let rawKeys = 0;
    const rawChunk = (n: number): Promise<number> =>
      drive(n, () => raw.create(`id.${rawKeys++}`, value));

    const svc = await startProcess(
      MAIN,
      {
        CILIATE_NATS_URL: nats.url,
        CILIATE_HTTP_ADDRESS: '127.0.0.1:0',
        CILIATE_NODE: 'bench',
        CILIATE_LOG_LEVEL: 'info',
        // One writer of CiliumIdentity objects would double the store writes; measured apart.
        CILIATE_MIRROR_CILIUMIDENTITIES: 'false',
      },
      [
        ...(CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : []),
        ...(process.env.IDENTITY_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      ],
    );
    procs.push(svc);
    for (let r = 1; r < REPLICAS; r++) {
      procs.push(
        await startProcess(MAIN, {
          CILIATE_NATS_URL: nats.url,
          CILIATE_HTTP_ADDRESS: '127.0.0.1:0',
          CILIATE_NODE: `bench-${r}`,
          CILIATE_MIRROR_CILIUMIDENTITIES: 'false',
        }),
      );
    }
    const httpAddress = svc
      .jsonLines<{ event?: string; address?: string }>()
      .find((l) => l.event === 'http.listening')!.address!;
    await new Promise((r) => setTimeout(r, 500));
    const heap0 = await heapMiB(httpAddress);
    const rss0 = rssMiB(svc.pid);

    // The load generator shares the two cores with the service, so it stays lean: requests on one
    // reply subscription per connection, the error header checked, the reply's number read;
    // every 100th reply is checked against the contract's schema, and every number is collected
    // to count distinct identities.
    const numbers = new Set<number>();
    const requesters = conns.map((nc) => leanRequester(nc));
    const allocate = allocator(
      (c) => requesters[c % requesters.length]!,
      (c) => `node-${c % NODES}`,
    );
    // Warm-up, not reported: the service's code is not optimised yet and the machine's cores ramp
    // up under load (the first raw chunk of a cold run measured half the speed of the third).
    await rawChunk(WARMUP);
    await drive(WARMUP, async (i, c) => numbers.add(await allocate(i, c)));
    // Then NEW identities in CHUNKS chunks, each after a chunk of raw KV creates of the same
    // size: the speed of this shared machine changes within seconds, so the store baseline is
    // measured next to each chunk, and medians are reported.
    const chunk = Math.ceil(NEW / CHUNKS);
    const kvRates: number[] = [];
    const newRates: number[] = [];
    const ratios: number[] = [];
    let identitySeconds = 0;
    let measuredNew = 0;
    for (let k = 0; k < CHUNKS && measuredNew < NEW; k++) {
      const n = Math.min(chunk, NEW - measuredNew);
      const from = WARMUP + measuredNew;
      kvRates.push(await rawChunk(n));
      newRates.push(await drive(n, async (i, c) => numbers.add(await allocate(from + i, c))));
      ratios.push(newRates.at(-1)! / kvRates.at(-1)!);
      identitySeconds += n / newRates.at(-1)!;
      measuredNew += n;
    }
    const overallNew = measuredNew / identitySeconds;
    await raw.destroy();
    const kvRate = median(kvRates);
    const newRate = median(newRates);
    const filled = WARMUP + NEW;
    const fillRate =
      FILL > filled
        ? await drive(FILL - filled, async (i, c) => numbers.add(await allocate(filled + i, c)))
        : NaN;
    const expected = Math.max(filled, FILL);
    if (numbers.size !== expected) {
      throw new Error(`${expected} label sets got ${numbers.size} distinct identities`);
    }
    await new Promise((r) => setTimeout(r, 2000));
    const heap1 = await heapMiB(httpAddress);
    const rss1 = rssMiB(svc.pid);
    const held = await mirrorMiB(conns[0]!);

    const existingRate = await drive(LOOKUPS / 2, (i, c) =>
      allocate(Math.floor(Math.random() * FILL), c),
    );
    const lookupRate = await drive(LOOKUPS, (i, c) =>
      rpc(c).request(
        identitySubject('lookup'),
        { labels: labelsOf(Math.floor(Math.random() * FILL)) },
        IdentityInfoSchema,
        { timeoutMs: 30_000 },
      ),
    );

    rows.push(['baseline: NATS echo request/reply', `${fmt(echoRate)}/s`, '']);
    rows.push([
      'baseline: raw KV create (median of chunks)',
      `${fmt(kvRate)}/s`,
      `chunks: ${kvRates.map(fmt).join(' ')}`,
    ]);
    // A new identity is two sequential store writes (the number, then the binding naming the
    // node as its holder; the first read is answered by the mirror), so raw creates / 2 is what
    // the store allows before any request handling, watching or protocol work.
    rows.push(['ceiling: raw KV create / 2 writes per new identity', `${fmt(kvRate / 2)}/s`, '']);
    rows.push([
      `new identities (${fmt(NEW)} after ${fmt(WARMUP)} warm-up, median of ${newRates.length} chunks)`,
      `${fmt(newRate)}/s`,
      `chunks: ${newRates.map(fmt).join(' ')}; all chunks together ${fmt(overallNew)}/s`,
    ]);
    rows.push([
      '  vs raw KV create, median of per-chunk ratios',
      `${median(ratios).toFixed(2)}x`,
      `${(median(ratios) * 2).toFixed(2)}x the ceiling; target ${fmt(TARGET_NEW_PER_S)}/s: ${newRate >= TARGET_NEW_PER_S ? 'met' : 'MISSED'}`,
    ]);
    if (!Number.isNaN(fillRate)) {
      rows.push([
        `new identities (${fmt(filled)} to ${fmt(FILL)}, range filling up)`,
        `${fmt(fillRate)}/s`,
        `${(fillRate / kvRate).toFixed(2)}x raw KV create`,
      ]);
    }
    rows.push([
      'allocate of an existing set (writes the node reference)',
      `${fmt(existingRate)}/s`,
      `${(existingRate / echoRate).toFixed(2)}x NATS echo`,
    ]);
    rows.push([
      'lookup by labels',
      `${fmt(lookupRate)}/s`,
      `${(lookupRate / echoRate).toFixed(2)}x NATS echo`,
    ]);
    rows.push([
      `identity state (mirror) for ${fmt(held.identities)} identities`,
      `${held.mib.toFixed(1)} MiB`,
      `${((held.mib * 2 ** 20) / held.identities).toFixed(0)} B/identity: table, binding, reference, lease`,
    ]);
    rows.push([
      `service heap growth for ${fmt(FILL)} identities`,
      `${(heap1 - heap0).toFixed(1)} MiB`,
      `heap ${heap0.toFixed(1)} -> ${heap1.toFixed(1)} MiB; ${(((heap1 - heap0) * 2 ** 20) / FILL).toFixed(0)} B/identity incl. garbage not yet collected`,
    ]);
    rows.push([
      `service RSS for ${fmt(FILL)} identities`,
      `${rss1.toFixed(1)} MiB`,
      `idle service before: ${rss0.toFixed(1)} MiB`,
    ]);

    const w0 = Math.max(...rows.map((r) => r[0].length));
    const w1 = Math.max(...rows.map((r) => r[1].length));
    console.log(
      `identity service through NATS: ${CLIENTS} clients on ${CONNECTIONS} connections, ${REPLICAS} replica(s), 1 nats-server (JetStream file store), Node ${process.version}\n`,
    );
    for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`);
  } finally {
    for (const nc of conns) await nc.close().catch(() => undefined);
    for (const p of procs) await p.kill('SIGTERM');
    await nats.close();
  }
  console.log('');
}

if (!COMPARE_ONLY) await throughNats();
for (const line of await securedAgainstPlain()) console.log(line);
console.log(
  '\nreproduce: npx turbo run build --filter=@ciliate/identity && npm run bench -w @ciliate/identity',
);
