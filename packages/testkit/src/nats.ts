// A real nats-server with JetStream for tests: one server or a three-server cluster, on free
// ports in a temporary directory, always torn down (also when the test process dies).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { atExitKill, atExitRemoveDir } from './cleanup.js';
import { freePort } from './ports.js';
import { sleep, waitFor } from './wait.js';

/**
 * The nats-server to run: NATS_SERVER_BIN, else the pinned release that scripts/setup.sh builds
 * into the cache, else whatever `nats-server` is on the PATH.
 */
export function natsServerBinary(): string {
  if (process.env.NATS_SERVER_BIN) return process.env.NATS_SERVER_BIN;
  try {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const version = readFileSync(join(root, 'tools', 'nats-server.version'), 'utf8').trim();
    const cache = process.env.CILIATE_CACHE ?? join(homedir(), '.cache', 'ciliate');
    const pinned = join(cache, 'nats-server', version, 'nats-server');
    if (existsSync(pinned)) return pinned;
  } catch {
    // not inside the repository: fall through to the PATH
  }
  return 'nats-server';
}

export interface NatsServer {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly monitorUrl: string;
  readonly dir: string;
  readonly running: boolean;
  /** Stops the process (SIGTERM, then SIGKILL) and keeps its store, so `start` resumes it. */
  stop(): Promise<void>;
  /** Kills the process at once with SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** Starts it again on the same ports with the same store. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

interface ServerPlan {
  name: string;
  port: number;
  monitorPort: number;
  clusterPort?: number;
  routes: number[];
  dir: string;
  clusterName?: string;
  /** Extra configuration lines (TLS, authorization) appended as they are. */
  extraConfig?: string;
}

function renderConfig(p: ServerPlan): string {
  const lines = [
    `server_name: ${p.name}`,
    `listen: 127.0.0.1:${p.port}`,
    `http: 127.0.0.1:${p.monitorPort}`,
    `jetstream {`,
    `  store_dir: "${join(p.dir, 'jetstream')}"`,
    `  max_memory_store: 256MB`,
    `  max_file_store: 2GB`,
    `}`,
  ];
  if (p.clusterPort !== undefined) {
    lines.push(
      `cluster {`,
      `  name: ${p.clusterName ?? 'ciliate-test'}`,
      `  listen: 127.0.0.1:${p.clusterPort}`,
      `  routes: [${p.routes.map((r) => `nats-route://127.0.0.1:${r}`).join(', ')}]`,
      `}`,
    );
  }
  if (p.extraConfig) lines.push(p.extraConfig);
  return lines.join('\n') + '\n';
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

class ManagedNatsServer implements NatsServer {
  private child: ChildProcess | undefined;
  private forgetKill: (() => void) | undefined;
  private readonly forgetDir: () => void;
  private stderr = '';

  constructor(private readonly plan: ServerPlan) {
    this.forgetDir = atExitRemoveDir(plan.dir);
  }

  get name(): string {
    return this.plan.name;
  }
  get url(): string {
    return `nats://127.0.0.1:${this.plan.port}`;
  }
  get port(): number {
    return this.plan.port;
  }
  get monitorUrl(): string {
    return `http://127.0.0.1:${this.plan.monitorPort}`;
  }
  get dir(): string {
    return this.plan.dir;
  }
  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  async writeConfig(): Promise<string> {
    const file = join(this.plan.dir, 'nats.conf');
    await writeFile(file, renderConfig(this.plan));
    return file;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const conf = await this.writeConfig();
    this.stderr = '';
    const child = spawn(natsServerBinary(), ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) =>
        reject(new Error(`cannot start ${natsServerBinary()}: ${err.message}`)),
      );
    });
    await spawned;
    this.child = child;
    this.forgetKill = atExitKill(child.pid!);
    await waitFor(
      `nats-server ${this.name} on port ${this.port}`,
      async () => {
        if (!this.running) throw new Error(`exited early: ${this.stderr.trim()}`);
        return (await httpOk(`${this.monitorUrl}/healthz`)) ? true : undefined;
      },
      { timeoutMs: 15_000 },
    );
  }

  private async terminate(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || !this.running) {
      this.child = undefined;
      return;
    }
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
    if (!done) {
      child.kill('SIGKILL');
      await exited;
    }
    this.forgetKill?.();
    this.child = undefined;
  }

  stop(): Promise<void> {
    return this.terminate('SIGTERM');
  }

  kill(): Promise<void> {
    return this.terminate('SIGKILL');
  }

  async close(): Promise<void> {
    await this.kill();
    await rm(this.plan.dir, { recursive: true, force: true });
    this.forgetDir();
  }
}

/** Starts one nats-server with JetStream. */
export async function startNats(
  opts: { name?: string; extraConfig?: (dir: string) => Promise<string> | string } = {},
): Promise<NatsServer> {
  const dir = await mkdtemp(join(tmpdir(), 'ciliate-nats-'));
  const server = new ManagedNatsServer({
    name: opts.name ?? 'ciliate-test',
    port: await freePort(),
    monitorPort: await freePort(),
    routes: [],
    dir,
    ...(opts.extraConfig ? { extraConfig: await opts.extraConfig(dir) } : {}),
  });
  try {
    await server.start();
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}

export interface NatsCluster {
  readonly servers: readonly NatsServer[];
  /** Every member's client URL, comma separated, as NATS clients take them. */
  readonly url: string;
  close(): Promise<void>;
}

/** Starts a cluster of `size` JetStream servers (three by default) and waits for a meta leader. */
export async function startNatsCluster(
  opts: {
    size?: number;
    /** Configuration lines every member gets (TLS, authorization), given the cluster's directory. */
    extraConfig?: (baseDir: string) => Promise<string> | string;
  } = {},
): Promise<NatsCluster> {
  const size = opts.size ?? 3;
  const base = await mkdtemp(join(tmpdir(), 'ciliate-natsc-'));
  const removeBase = atExitRemoveDir(base);
  const extra = opts.extraConfig ? await opts.extraConfig(base) : undefined;
  const clusterPorts: number[] = [];
  for (let i = 0; i < size; i++) clusterPorts.push(await freePort());
  const servers: ManagedNatsServer[] = [];
  for (let i = 0; i < size; i++) {
    const dir = join(base, `n${i + 1}`);
    await mkdir(dir, { recursive: true });
    servers.push(
      new ManagedNatsServer({
        name: `n${i + 1}`,
        port: await freePort(),
        monitorPort: await freePort(),
        clusterPort: clusterPorts[i],
        routes: clusterPorts.filter((_, j) => j !== i),
        dir,
        ...(extra !== undefined ? { extraConfig: extra } : {}),
      }),
    );
  }
  const close = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.close()));
    await rm(base, { recursive: true, force: true });
    removeBase();
  };
  try {
    await Promise.all(servers.map((s) => s.start()));
    await waitFor(
      'a JetStream meta leader',
      async () => {
        const res = await fetch(`${servers[0]!.monitorUrl}/jsz`);
        const body = (await res.json()) as { meta_cluster?: { leader?: string } };
        return body.meta_cluster?.leader ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  } catch (err) {
    await close();
    throw err;
  }
  return { servers, url: servers.map((s) => s.url).join(','), close };
}
