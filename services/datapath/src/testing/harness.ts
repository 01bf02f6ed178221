// Privileged-test harness: a node as a network namespace with the agent serving it, and the
// plugin executables run exactly as a container runtime runs them (env + stdin, stdout + exit
// code) inside the node's namespace. Everything is removed at exit also when a test fails.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ensureBpffs } from '@ciliate/bpf';
import {
  atExit,
  inNetns,
  spawnNode,
  waitFor,
  type NetScope,
  type Netns,
  type NodeProcess,
} from '@ciliate/testkit';

export const PLUGIN = fileURLToPath(new URL('../../bin/ciliate-cni', import.meta.url));
const AGENT_MAIN = fileURLToPath(new URL('../agent/main.js', import.meta.url));
export const REFERENCE_PLUGINS = '/usr/lib/cni';

export interface TestNode {
  ns: Netns;
  ip: string;
  dir: string;
  pinDir: string;
  socketPath: string;
  stateDir: string;
  configFile: string;
  remove(): void;
}

/** A node namespace (forwarding on, IPv6 off, its address on lo), a temp dir for the agent's
 * socket and state, and a pin directory under /sys/fs/bpf. */
export async function makeNode(
  scope: NetScope,
  podCidr: string,
  nodeIp: string,
  agentConfig: Record<string, unknown> = {},
): Promise<TestNode> {
  const ns = await scope.netns('node');
  for (const [k, v] of [
    ['net.ipv4.ip_forward', '1'],
    ['net.ipv6.conf.all.disable_ipv6', '1'],
    ['net.ipv6.conf.default.disable_ipv6', '1'],
  ]) {
    await ns.exec('sysctl', ['-q', '-w', `${k}=${v}`]);
  }
  await ns.ip(['addr', 'add', `${nodeIp}/32`, 'dev', 'lo']);
  const dir = mkdtempSync(join(tmpdir(), 'ciliate-cni-'));
  const pinDir = `/sys/fs/bpf/ciliate-test-cni-${randomBytes(3).toString('hex')}`;
  const remove = () => {
    rmSync(pinDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  // registered before anything that can throw, so a failure leaves no temp dir behind
  const forget = atExit(remove);
  ensureBpffs('/sys/fs/bpf', pinDir);
  const node: TestNode = {
    ns,
    ip: nodeIp,
    dir,
    pinDir,
    socketPath: join(dir, 'cni.sock'),
    stateDir: join(dir, 'state'),
    configFile: join(dir, 'agent.json'),
    remove() {
      remove();
      forget();
    },
  };
  writeFileSync(
    node.configFile,
    JSON.stringify({
      socketPath: node.socketPath,
      stateDir: node.stateDir,
      pinDir,
      podCidr,
      nodeIPv4: nodeIp,
      nodeNetns: ns.name,
      traceMode: 'new',
      ...agentConfig,
    }),
  );
  return node;
}

export interface RunningAgent {
  proc: NodeProcess;
  ready: { restored: { restored: number; removed: number } };
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startAgent(node: TestNode): Promise<RunningAgent> {
  const proc = spawnNode(AGENT_MAIN, [node.configFile]);
  const ready = await waitFor(
    'the agent to serve',
    () => {
      if (proc.child.exitCode !== null) throw new Error(`agent exited: ${proc.output()}`);
      return proc
        .jsonLines<{ event: string; restored: { restored: number; removed: number } }>()
        .find((l) => l.event === 'ready');
    },
    { timeoutMs: 20_000 },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${proc.output()}`);
  });
  return {
    proc,
    ready,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      await proc.kill(signal);
    },
  };
}

export interface PluginRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON. */
  json?: Record<string, unknown>;
}

/** Runs a CNI plugin binary in the node's namespace with `env` and `config` on stdin. */
export function runCni(
  node: TestNode,
  binary: string,
  env: Record<string, string | undefined>,
  config: unknown,
): Promise<PluginRun> {
  return runPluginIn(node.ns.name, binary, env, config);
}

/** Runs a CNI executable inside a named netns as a runtime would: env, stdin, stdout, exit code. */
export function runPluginIn(
  netns: string,
  binary: string,
  env: Record<string, string | undefined>,
  config: unknown,
): Promise<PluginRun> {
  const cleanEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) cleanEnv[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', netns, binary], {
      env: cleanEnv,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, ...(json ? { json } : {}) });
    });
    child.stdin.end(typeof config === 'string' ? config : JSON.stringify(config));
  });
}

export function poolLeases(node: TestNode): { owner: string; ip: string }[] {
  return (
    JSON.parse(readFileSync(join(node.stateDir, 'pod-pool.json'), 'utf8')) as {
      allocations: { owner: string; ip: string }[];
    }
  ).allocations;
}

export async function ping(ns: string, target: string, count = 2): Promise<boolean> {
  try {
    await inNetns(ns, 'ping', ['-c', String(count), '-i', '0.2', '-W', '2', '-n', '-q', target], {
      timeoutMs: 15_000,
    });
    return true;
  } catch {
    return false;
  }
}

const ECHO_PROGRAMS = {
  tcp: (port: number) =>
    `require('net').createServer((s) => s.pipe(s)).listen(${port}, () => console.log('listening'))`,
  udp: (port: number) =>
    `const s = require('dgram').createSocket('udp4'); s.on('message', (m, r) => s.send(m, r.port, r.address)); s.bind(${port}, () => console.log('listening'));`,
};

/** A TCP (default) or UDP echo server on `port` in `ns`; stop() kills it. */
export async function echoServer(
  ns: string,
  port: number,
  protocol: 'tcp' | 'udp' = 'tcp',
): Promise<{ stop(): void }> {
  const child = spawn(
    'ip',
    ['netns', 'exec', ns, process.execPath, '-e', ECHO_PROGRAMS[protocol](port)],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const forget = atExit(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${protocol} echo server did not start`)), 10_000);
    child.stdout.on('data', () => {
      clearTimeout(t);
      resolve();
    });
  });
  return {
    stop() {
      child.kill('SIGKILL');
      forget();
    },
  };
}

/** Sends `bytes` over TCP from `ns` and reads them back; true when all came back. */
export async function tcpEcho(
  ns: string,
  host: string,
  port: number,
  bytes = 100_000,
): Promise<boolean> {
  const script = `
    const s = require('net').connect(${port}, '${host}');
    let got = 0;
    s.setTimeout(10000, () => process.exit(2));
    s.on('connect', () => s.write(Buffer.alloc(${bytes}, 120)));
    s.on('data', (d) => { got += d.length; if (got >= ${bytes}) { console.log('ok'); s.destroy(); } });
    s.on('error', () => process.exit(3));`;
  try {
    const { stdout } = await inNetns(ns, process.execPath, ['-e', script], { timeoutMs: 20_000 });
    return stdout.includes('ok');
  } catch {
    return false;
  }
}
