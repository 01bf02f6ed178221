// Shared set-up for the privileged tests: per-test pin directories, pods and nodes as network
// namespaces, and traffic from inside them. Everything is registered for removal at exit, so a
// failing test leaves nothing behind.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import {
  atExit,
  atExitKill,
  inNetns,
  ip,
  sleep,
  type NetScope,
  type Netns,
} from '@ciliate/testkit';

import { ensureBpffs } from '../bpffs.js';
import { ifIndex } from '../attach.js';

const TRAFFIC = fileURLToPath(new URL('./traffic.js', import.meta.url));

/** A fresh directory under /sys/fs/bpf, removed with everything pinned in it. */
export function pinDir(tag: string): { dir: string; remove(): void } {
  const dir = `/sys/fs/bpf/ciliate-test-${tag}-${randomBytes(3).toString('hex')}`;
  ensureBpffs('/sys/fs/bpf', dir);
  const forget = atExit(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    remove() {
      rmSync(dir, { recursive: true, force: true });
      forget();
    },
  };
}

export async function sysctl(ns: string, key: string, value: string): Promise<void> {
  await inNetns(ns, 'sysctl', ['-q', '-w', `${key}=${value}`]);
}

/** IPv6 off: its neighbour discovery would otherwise show up as "unsupported L3" drops. */
export async function quietNetns(ns: string, forwarding = false): Promise<void> {
  await sysctl(ns, 'net.ipv6.conf.all.disable_ipv6', '1');
  await sysctl(ns, 'net.ipv6.conf.default.disable_ipv6', '1');
  if (forwarding) await sysctl(ns, 'net.ipv4.ip_forward', '1');
}

export async function linkMac(ns: string, name: string): Promise<string> {
  const out = JSON.parse(await ip(['-j', 'link', 'show', 'dev', name], ns)) as {
    address: string;
  }[];
  return out[0]!.address;
}

export interface Pod {
  ns: Netns;
  ip: string;
  mac: string;
  /** host-side veth, in the node namespace */
  hostIf: string;
  hostIfindex: number;
  hostMac: string;
}

/** A pod: its namespace, eth0 with a /32 address and a default route through a gateway that
 * the endpoint program's ARP responder answers for; the host-side veth in `node`. */
export async function addPod(
  scope: NetScope,
  node: Netns,
  opts: { ip: string; gateway: string; mtu?: number },
): Promise<Pod> {
  const ns = await scope.netns('pod');
  await quietNetns(ns.name);
  const hostIf = scope.uniqueName('lxc');
  const tmp = scope.uniqueName('eth');
  await scope.veth({ name: tmp, netns: ns.name }, { name: hostIf, netns: node.name });
  await ns.ip(['link', 'set', tmp, 'down']);
  await ns.ip(['link', 'set', tmp, 'name', 'eth0']);
  if (opts.mtu) {
    await ns.ip(['link', 'set', 'eth0', 'mtu', String(opts.mtu)]);
    await node.ip(['link', 'set', hostIf, 'mtu', String(opts.mtu)]);
  }
  await ns.ip(['link', 'set', 'eth0', 'up']);
  await ns.ip(['addr', 'add', `${opts.ip}/32`, 'dev', 'eth0']);
  await ns.ip(['route', 'add', opts.gateway, 'dev', 'eth0', 'scope', 'link']);
  await ns.ip(['route', 'add', 'default', 'via', opts.gateway, 'dev', 'eth0']);
  // the node reaches the pod through its veth
  await node.ip(['route', 'add', `${opts.ip}/32`, 'dev', hostIf]);
  return {
    ns,
    ip: opts.ip,
    mac: await linkMac(ns.name, 'eth0'),
    hostIf,
    hostIfindex: ifIndex(hostIf, node.name),
    hostMac: await linkMac(node.name, hostIf),
  };
}

export async function ping(
  ns: Netns,
  target: string,
  opts: { count?: number; source?: string } = {},
): Promise<boolean> {
  const args = ['-c', String(opts.count ?? 1), '-W', '2', '-i', '0.2', '-n', '-q'];
  if (opts.source) args.push('-I', opts.source);
  try {
    await ns.exec('ping', [...args, target], { timeoutMs: 15_000 });
    return true;
  } catch {
    return false;
  }
}

export interface Server {
  stop(): Promise<void>;
}

/** Starts tcp-server or udp-server in `ns` and waits until it listens. */
export async function startServer(ns: Netns, proto: 'tcp' | 'udp', port: number): Promise<Server> {
  const child = spawn(
    'ip',
    ['netns', 'exec', ns.name, process.execPath, TRAFFIC, `${proto}-server`, String(port)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const forget = atExitKill(child.pid!);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const t = setTimeout(
      () => reject(new Error(`${proto} server in ${ns.name} did not start: ${out}`)),
      10_000,
    );
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"listening":true')) {
        clearTimeout(t);
        resolve();
      }
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${proto} server exited with ${code}: ${out}`));
    });
  });
  return {
    async stop() {
      child.kill('SIGKILL');
      await Promise.race([exited, sleep(5000)]);
      forget();
    },
  };
}

export interface ClientResult {
  ok: boolean;
  bytes?: number;
  datagrams?: number;
  localPort?: number;
  error?: string;
}

export async function client(
  ns: Netns,
  proto: 'tcp' | 'udp',
  host: string,
  port: number,
  amount: number,
): Promise<ClientResult> {
  try {
    const { stdout } = await ns.exec(
      process.execPath,
      [TRAFFIC, `${proto}-client`, host, String(port), String(amount)],
      {
        timeoutMs: 20_000,
      },
    );
    return JSON.parse(stdout.trim().split('\n').pop()!) as ClientResult;
  } catch (err) {
    const e = err as { stdout?: string; message: string };
    const line = e.stdout?.trim().split('\n').pop();
    if (line?.startsWith('{')) return JSON.parse(line) as ClientResult;
    return { ok: false, error: e.message };
  }
}
