// Helpers shared by the kube-bridge's kubernetes-tier tests and its benchmark (not exported from
// the package): a kube-apiserver with Ciliate's CRDs, a nats-server secured as deployments run it
// (mutual TLS, one nkey user per principal), the store, an admin API client, and the bridge as a
// real child process, with the kube-bridge's own credentials, that tests can SIGKILL.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import { ResourceStore } from '@ciliate/store';
import {
  spawnNode,
  startKubeApiserver,
  waitFor,
  type KubeApiserver,
  type NodeProcess,
} from '@ciliate/testkit';
import type { NatsConnection } from '@nats-io/transport-node';

import { KubeClient, loadKubeConfig } from './kube/client.js';

const here = dirname(fileURLToPath(import.meta.url));
export const BRIDGE_MAIN = join(here, 'main.js');
export const REPO_ROOT = join(here, '..', '..', '..');
export const CRD_DIR = join(REPO_ROOT, 'infra', 'crds');
export const RBAC_FILE = join(REPO_ROOT, 'infra', 'kubernetes', 'kube-bridge-rbac.yaml');

export interface TestEnv {
  kube: KubeApiserver;
  /** Connects (or gives the environment of) any principal: `nats.connect(p)`, `nats.env(p)`. */
  nats: SecureNats;
  /** The admin's connection. */
  nc: NatsConnection;
  /**
   * The store as the admin writes it: the test stands in for what writes it besides the bridge
   * (`ciliate apply`, and the services' statuses and mirrors), and the admin may write every kind.
   */
  store: ResourceStore;
  /** An admin client on the same API (for fast bulk writes in tests). */
  admin: KubeClient;
  close(): Promise<void>;
}

/** kube-apiserver (+ the CRDs unless told not to) and nats-server, closed together. */
export async function startEnv(opts: { crds?: boolean } = {}): Promise<TestEnv> {
  const closers: (() => Promise<void> | void)[] = [];
  const close = async (): Promise<void> => {
    for (const c of closers.reverse()) {
      try {
        await c();
      } catch {
        // the rest must still close
      }
    }
  };
  try {
    const [kube, nats] = await Promise.all([startKubeApiserver(), startSecureNats()]);
    closers.push(
      () => kube.close(),
      () => nats.close(),
    );
    const nc = await nats.connect();
    closers.push(() => nc.close());
    const store = await ResourceStore.open(nc);
    const admin = new KubeClient(loadKubeConfig({ kubeconfig: kube.kubeconfig }));
    closers.push(() => admin.close());
    if (opts.crds ?? true) await installCrds(kube);
    return { kube, nats, nc, store, admin, close };
  } catch (err) {
    await close();
    throw err;
  }
}

export async function installCrds(kube: KubeApiserver): Promise<void> {
  await kube.kubectl(['apply', '--server-side', '-f', CRD_DIR]);
  const names = readdirSync(CRD_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => `crd/${f.slice(0, -'.yaml'.length)}`);
  await kube.kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...names]);
}

export interface BridgeProcess {
  proc: NodeProcess;
  httpAddress: string;
  metrics(): Promise<string>;
  /** A sample's value (summed over series matching `labels`), 0 when absent. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  logs<T = Record<string, unknown>>(): T[];
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface BridgeOptions {
  /** Without one the bridge uses its in-cluster configuration (see `env`). */
  kubeconfig?: string;
  env?: Record<string, string>;
  /** The bridge connects to it as the kube-bridge. */
  nats: SecureNats;
  node?: string;
  leaseDuration?: string;
  resyncPeriod?: string;
  kindRetryPeriod?: string;
  extraArgs?: string[];
  logLevel?: string;
}

export async function spawnBridge(o: BridgeOptions): Promise<BridgeProcess> {
  const args = [
    ...(o.kubeconfig ? [`--kubeconfig=${o.kubeconfig}`] : []),
    '--http-address=127.0.0.1:0',
    `--node=${o.node ?? 'bridge-a'}`,
    `--log-level=${o.logLevel ?? 'info'}`,
    `--lease-duration=${o.leaseDuration ?? '3s'}`,
    '--lease-renew-deadline=2s',
    '--lease-retry-period=300ms',
    `--resync-period=${o.resyncPeriod ?? '10m'}`,
    `--kind-retry-period=${o.kindRetryPeriod ?? '1s'}`,
    ...(o.extraArgs ?? []),
  ];
  const proc = spawnNode(BRIDGE_MAIN, args, {
    env: { KUBECONFIG: '', ...o.nats.env({ role: 'kube-bridge' }), ...o.env },
  });
  // CILIATE_TEST_BRIDGE_LOGS=1 shows the bridges' logs (warnings and up) while a test runs.
  if (process.env.CILIATE_TEST_BRIDGE_LOGS) {
    proc.child.stdout?.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (/"level":[456]0/.test(line))
          process.stderr.write(`[${o.node ?? 'bridge-a'}] ${line}\n`);
      }
    });
  }
  let httpAddress: string;
  try {
    httpAddress = await waitFor(
      'the bridge to listen',
      () => {
        if (proc.child.exitCode !== null) throw new Error(`the bridge exited: ${proc.output()}`);
        return proc
          .jsonLines<{ event?: string; address?: string }>()
          .find((l) => l.event === 'http.listening')?.address;
      },
      { timeoutMs: 20_000 },
    );
  } catch (err) {
    await proc.kill('SIGKILL');
    throw err;
  }
  const metrics = async (): Promise<string> => {
    const res = await fetch(`http://${httpAddress}/metrics`, { signal: AbortSignal.timeout(3000) });
    return res.text();
  };
  return {
    proc,
    httpAddress,
    metrics,
    async metric(name, labels = {}) {
      return sumMetric(await metrics(), name, labels);
    },
    logs: <T>() => proc.jsonLines<T>(),
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      await proc.kill(signal);
    },
  };
}

/** Sums the samples of `name` whose labels include `labels` in a Prometheus text exposition. */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const x of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have[x[1]!] = x[2]!;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

/** Waits until the bridge reports itself ready (/readyz 200). */
export async function waitReady(b: BridgeProcess, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    'the bridge to be ready',
    async () => {
      if (b.proc.child.exitCode !== null) throw new Error(`the bridge exited: ${b.proc.output()}`);
      const res = await fetch(`http://${b.httpAddress}/readyz`, {
        signal: AbortSignal.timeout(2000),
      });
      return res.status === 200 ? true : undefined;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

export async function waitLeader(b: BridgeProcess, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    'the bridge to lead',
    async () => ((await b.metric('ciliate_kube_bridge_leader')) === 1 ? true : undefined),
    { timeoutMs, intervalMs: 100 },
  );
}
