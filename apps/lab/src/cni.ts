// The lab's container-runtime side of CNI: the network configuration list a runtime would hold,
// and a chain executor that runs each plugin of the list the way libcni does (ADD in order with
// the previous result, DEL in reverse with the cached ADD result), inside the node's namespace.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { LabError } from './plan.js';

export const CNI_VERSION = '1.0.0';
export const NETWORK_NAME = 'ciliate';
export const DEBIAN_CNI_DIR = '/usr/lib/cni';

export interface CniPluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface CniConfList {
  cniVersion: string;
  name: string;
  plugins: CniPluginConf[];
}

/** The list a runtime would be given: ciliate-cni, then portmap for hostPort mappings. */
export function labConfList(socketPath: string): CniConfList {
  return {
    cniVersion: CNI_VERSION,
    name: NETWORK_NAME,
    plugins: [
      { type: 'ciliate-cni', socketPath },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  hostIP?: string;
}

export interface RuntimeConfig {
  portMappings?: PortMapping[];
}

/**
 * The configuration one plugin of the list receives on stdin: the list's version and name, the
 * plugin's own keys, runtimeConfig for the capabilities it declares (only when there is
 * something to give, as libcni does), and the previous plugin's result.
 */
export function pluginConfig(
  list: CniConfList,
  plugin: CniPluginConf,
  runtime: RuntimeConfig,
  prevResult: unknown,
): Record<string, unknown> {
  const conf: Record<string, unknown> = {
    ...plugin,
    cniVersion: list.cniVersion,
    name: list.name,
  };
  const rc: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    const value = (runtime as Record<string, unknown>)[cap];
    if (on && value !== undefined && !(Array.isArray(value) && value.length === 0)) rc[cap] = value;
  }
  if (Object.keys(rc).length > 0) conf.runtimeConfig = rc;
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return conf;
}

/** CNI_ARGS as a kubelet passes them. */
export function cniArgs(namespace: string, pod: string, containerId: string): string {
  return `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=${containerId}`;
}

export interface CniInvocation {
  command: 'ADD' | 'DEL' | 'CHECK';
  containerId: string;
  /** Path of the pod's namespace (/run/netns/NAME). */
  netnsPath: string;
  ifname: string;
  args: string;
  /** Directories searched for plugin executables, in order. */
  path: string[];
  /** Namespace the plugins run in (the node's: portmap writes its rules there). */
  runIn: string;
}

export class CniError extends LabError {
  constructor(
    readonly plugin: string,
    readonly cniCode: number | undefined,
    message: string,
  ) {
    super('failed', message);
  }
}

function findPlugin(type: string, path: string[]): string {
  for (const dir of path) {
    const file = join(dir, type);
    if (existsSync(file)) return file;
  }
  throw new CniError(type, undefined, `CNI plugin "${type}" not found in ${path.join(':')}`);
}

function runPlugin(
  inv: CniInvocation,
  type: string,
  conf: Record<string, unknown>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const binary = findPlugin(type, inv.path);
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', inv.runIn, binary], {
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        CNI_COMMAND: inv.command,
        CNI_CONTAINERID: inv.containerId,
        CNI_NETNS: inv.netnsPath,
        CNI_IFNAME: inv.ifname,
        CNI_ARGS: inv.args,
        CNI_PATH: inv.path.join(':'),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(JSON.stringify(conf));
  });
}

function failure(type: string, command: string, r: { stdout: string; stderr: string }): CniError {
  let code: number | undefined;
  let msg = r.stderr.trim() || r.stdout.trim() || 'no output';
  try {
    const e = JSON.parse(r.stdout) as { code?: number; msg?: string; details?: string };
    code = e.code;
    msg = `${e.msg ?? msg}${e.details ? ` (${e.details})` : ''}`;
  } catch {
    // not the CNI error JSON: keep the raw output
  }
  return new CniError(
    type,
    code,
    `CNI ${command} failed in plugin ${type}${code !== undefined ? ` (code ${code})` : ''}: ${msg}`,
  );
}

/** ADD through the whole list; returns the final result. */
export async function cniAdd(
  list: CniConfList,
  inv: Omit<CniInvocation, 'command'>,
  runtime: RuntimeConfig = {},
): Promise<Record<string, unknown>> {
  let prev: unknown;
  for (const plugin of list.plugins) {
    const r = await runPlugin(
      { ...inv, command: 'ADD' },
      plugin.type,
      pluginConfig(list, plugin, runtime, prev),
    );
    if (r.code !== 0) throw failure(plugin.type, 'ADD', r);
    prev = JSON.parse(r.stdout) as unknown;
  }
  return prev as Record<string, unknown>;
}

/** DEL through the list in reverse; every plugin runs even when one fails (errors joined). */
export async function cniDel(
  list: CniConfList,
  inv: Omit<CniInvocation, 'command'>,
  runtime: RuntimeConfig = {},
  cachedResult?: unknown,
): Promise<void> {
  const errors: string[] = [];
  for (const plugin of [...list.plugins].reverse()) {
    try {
      const r = await runPlugin(
        { ...inv, command: 'DEL' },
        plugin.type,
        pluginConfig(list, plugin, runtime, cachedResult),
      );
      if (r.code !== 0) errors.push(failure(plugin.type, 'DEL', r).message);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length > 0) throw new LabError('failed', errors.join('; '));
}

/** The pod's IPv4 address from an ADD result (the address on the sandbox interface). */
export function resultIPv4(result: Record<string, unknown>): string | undefined {
  const ips = (result.ips ?? []) as { address?: string }[];
  for (const ip of ips) {
    const addr = ip.address?.split('/')[0];
    if (addr && /^\d+\.\d+\.\d+\.\d+$/.test(addr)) return addr;
  }
  return undefined;
}
