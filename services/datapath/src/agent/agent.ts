// The node agent's CNI side, assembled: datapath over the node's pinned maps, the address and
// identity sources, the endpoint manager and the socket server; restore before serving.
import { isIP } from 'node:net';
import { join } from 'node:path';

import { DEFAULT_DATAPATH_CONFIG, Datapath } from '@ciliate/bpf';
import { RESERVED_IDENTITIES } from '@ciliate/contracts';

import { DEFAULT_SOCKET_PATH } from '../cni/config.js';
import { checkNetns, DEFAULT_NETNS_DIRS, netnsDirProblem } from '../cni/netns.js';
import { EndpointManager, type EndpointChange } from '../endpoints/manager.js';
import { Netlink } from '../netlink/netlink.js';
import { startCniServer, type CniRefusalReason, type CniServer } from '../cni/server.js';
import {
  InitIdentitySource,
  PoolAddressSource,
  type AddressSource,
  type IdentitySource,
} from '../sources/local.js';

export interface AgentConfig {
  /** Unix socket the plugin talks to. */
  socketPath: string;
  /** Endpoint state (and the standalone address pool). */
  stateDir: string;
  /** This node's BPF pin directory. */
  pinDir: string;
  /** Standalone mode: the node's pod CIDR, allocated locally through the IPAM core. */
  podCidr?: string;
  /** The node's underlay address (the programs hand traffic for it to the stack). */
  nodeIPv4?: string;
  /** A named netns that plays the node (labs); unset in production. */
  nodeNetns?: string;
  /** How traffic to other nodes leaves: the stack's routes (native) or the VXLAN device. */
  tunnelMode?: 'native' | 'vxlan';
  /** ifindex of the collect_md VXLAN device in the node namespace (vxlan mode). */
  tunnelIfindex?: number;
  /** Native routing: BPF host routing or the stack's forwarding (legacy, the default: see
   * DEFAULT_DATAPATH_CONFIG in @ciliate/bpf, the one table of datapath defaults). */
  hostRouting?: 'bpf' | 'legacy';
  /** The cluster's mesh ID, a load-time constant of the programs (0: not meshed). */
  clusterId?: number;
  mtu: number;
  attachMode: 'tc' | 'tcx';
  traceMode: 'off' | 'new' | 'all';
  /** Directories whose entries may be pods' network namespaces (CNI_NETNS), besides
   * /proc/<pid>/ns/net. Default DEFAULT_NETNS_DIRS. */
  netnsDirs?: string[];
}

export const DEFAULT_AGENT_CONFIG: Omit<AgentConfig, 'pinDir' | 'stateDir'> & {
  pinDir: string;
  stateDir: string;
} = {
  socketPath: DEFAULT_SOCKET_PATH,
  stateDir: '/var/lib/ciliate/datapath',
  pinDir: '/sys/fs/bpf/ciliate',
  mtu: 1500,
  attachMode: 'tc',
  traceMode: DEFAULT_DATAPATH_CONFIG.traceMode,
};

export class AgentConfigError extends Error {
  override readonly name = 'AgentConfigError';
  readonly code = 'INVALID_CONFIG';
}

function bad(path: string, value: unknown, reason: string): AgentConfigError {
  return new AgentConfigError(`${path}: Invalid value: ${JSON.stringify(value)}: ${reason}`);
}

/** Fills defaults and validates; errors name the setting (`datapath.mtu: ...`). */
export function resolveAgentConfig(input: Record<string, unknown>, path = 'datapath'): AgentConfig {
  const known = new Set([
    ...Object.keys(DEFAULT_AGENT_CONFIG),
    'podCidr',
    'nodeIPv4',
    'nodeNetns',
    'tunnelMode',
    'tunnelIfindex',
    'hostRouting',
    'netnsDirs',
  ]);
  for (const k of Object.keys(input))
    if (!known.has(k)) throw bad(`${path}.${k}`, input[k], 'unknown setting');
  const cfg: AgentConfig = { ...DEFAULT_AGENT_CONFIG, ...(input as Partial<AgentConfig>) };
  for (const k of ['socketPath', 'stateDir', 'pinDir'] as const) {
    if (typeof cfg[k] !== 'string' || !cfg[k].startsWith('/'))
      throw bad(`${path}.${k}`, cfg[k], 'must be an absolute path');
  }
  if (
    cfg.podCidr !== undefined &&
    (typeof cfg.podCidr !== 'string' || isIP(cfg.podCidr.split('/')[0] ?? '') !== 4)
  ) {
    throw bad(`${path}.podCidr`, cfg.podCidr, 'must be an IPv4 CIDR');
  }
  if (cfg.nodeIPv4 !== undefined && isIP(String(cfg.nodeIPv4)) !== 4) {
    throw bad(`${path}.nodeIPv4`, cfg.nodeIPv4, 'must be an IPv4 address');
  }
  if (
    cfg.nodeNetns !== undefined &&
    (typeof cfg.nodeNetns !== 'string' || !/^[\w.-]+$/.test(cfg.nodeNetns))
  ) {
    throw bad(`${path}.nodeNetns`, cfg.nodeNetns, 'must be a netns name');
  }
  if (cfg.tunnelMode !== undefined && cfg.tunnelMode !== 'native' && cfg.tunnelMode !== 'vxlan')
    throw bad(`${path}.tunnelMode`, cfg.tunnelMode, 'must be "native" or "vxlan"');
  if (cfg.hostRouting !== undefined && cfg.hostRouting !== 'bpf' && cfg.hostRouting !== 'legacy')
    throw bad(`${path}.hostRouting`, cfg.hostRouting, 'must be "bpf" or "legacy"');
  if (!Number.isInteger(cfg.mtu) || cfg.mtu < 576 || cfg.mtu > 65535)
    throw bad(`${path}.mtu`, cfg.mtu, 'must be an integer 576-65535');
  if (cfg.attachMode !== 'tc' && cfg.attachMode !== 'tcx')
    throw bad(`${path}.attachMode`, cfg.attachMode, 'must be "tc" or "tcx"');
  if (!['off', 'new', 'all'].includes(cfg.traceMode))
    throw bad(`${path}.traceMode`, cfg.traceMode, 'must be "off", "new" or "all"');
  if (cfg.netnsDirs !== undefined) {
    if (!Array.isArray(cfg.netnsDirs) || cfg.netnsDirs.length === 0)
      throw bad(`${path}.netnsDirs`, cfg.netnsDirs, 'must be a non-empty list of directories');
    cfg.netnsDirs.forEach((d: unknown, i) => {
      const problem = typeof d === 'string' ? netnsDirProblem(d) : 'must be a string';
      if (problem) throw bad(`${path}.netnsDirs[${i}]`, d, problem);
    });
  }
  return cfg;
}

export interface Agent {
  readonly config: AgentConfig;
  readonly datapath: Datapath;
  readonly endpoints: EndpointManager;
  readonly addresses: AddressSource;
  readonly server: CniServer;
  readonly restored: { restored: number; removed: number };
  /** Stops serving and closes descriptors; pinned maps and attached programs stay. */
  close(): Promise<void>;
}

export interface AgentDeps {
  /** Default: the IPAM core over `podCidr` (standalone mode). */
  addresses?: AddressSource;
  /** Default: InitIdentitySource (reserved identity 5 for every pod; see its comment). */
  identities?: IdentitySource;
  /** Structured log entries (one per CNI request). */
  log?: (entry: Record<string, unknown>) => void;
  /** Told of every endpoint recorded, re-adopted (also during the restore) or removed. */
  onEndpointChange?: (change: EndpointChange) => void;
  /** Told of every CNI request refused before it reached the endpoints (a metric counts it). */
  onRefused?: (reason: CniRefusalReason) => void;
}

export async function createAgent(config: AgentConfig, deps: AgentDeps = {}): Promise<Agent> {
  let addresses = deps.addresses;
  if (!addresses) {
    if (!config.podCidr)
      throw bad('datapath.podCidr', undefined, 'required without an address source');
    addresses = PoolAddressSource.open(config.podCidr, join(config.stateDir, 'pod-pool.json'));
  }
  const datapath = Datapath.load({
    pinDir: config.pinDir,
    config: {
      traceMode: config.traceMode,
      ...(config.tunnelMode ? { tunnelMode: config.tunnelMode } : {}),
      ...(config.tunnelIfindex ? { tunnelIfindex: config.tunnelIfindex } : {}),
      ...(config.hostRouting ? { hostRouting: config.hostRouting } : {}),
      ...(config.nodeIPv4 ? { nodeIPv4: config.nodeIPv4 } : {}),
      ...(config.clusterId ? { clusterId: config.clusterId } : {}),
    },
  });
  try {
    const mismatches = datapath.checkLayouts();
    if (mismatches.length > 0) {
      throw new Error(
        `datapath: map layouts differ from the compiled programs: ${JSON.stringify(mismatches.slice(0, 3))}`,
      );
    }
    if (config.nodeIPv4) {
      datapath.ipcache.set(
        { prefix: config.nodeIPv4 },
        { identity: RESERVED_IDENTITIES.host, tunnelEndpoint: null },
      );
    }
    const netlink = new Netlink(config.nodeNetns);
    const netnsPolicy = {
      dirs: config.netnsDirs ?? DEFAULT_NETNS_DIRS,
      // a pod is never wired into the node's namespace nor into the agent's
      forbidden: [netlink.nodeNetnsPath, '/proc/self/ns/net'],
    };
    const endpoints = new EndpointManager({
      datapath,
      addresses,
      identities: deps.identities ?? new InitIdentitySource(),
      netlink,
      stateDir: config.stateDir,
      mtu: config.mtu,
      attachMode: config.attachMode,
      ...(deps.onEndpointChange ? { onChange: deps.onEndpointChange } : {}),
    });
    const restored = await endpoints.restore();
    const src = addresses;
    const server = await startCniServer({
      socketPath: config.socketPath,
      endpoints,
      ...(deps.log ? { log: deps.log } : {}),
      ...(deps.onRefused ? { onRefused: deps.onRefused } : {}),
      checkNetns: (netns, command) => checkNetns(netns, command, netnsPolicy),
      async ready() {
        // a source that cannot count (tests' fakes) is taken at its word on ADD
        if (!src.available) return { ok: true };
        let left: number;
        try {
          left = await src.available();
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          return { ok: false, code: 50, msg: `cannot tell whether pod addresses are left: ${why}` };
        }
        if (left <= 0) return { ok: false, code: 50, msg: 'no pod address left on this node' };
        return { ok: true };
      },
    });
    return {
      config,
      datapath,
      endpoints,
      addresses,
      server,
      restored,
      async close() {
        await server.close();
        datapath.close();
      },
    };
  } catch (err) {
    datapath.close();
    throw err;
  }
}
