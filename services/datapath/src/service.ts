// The per-node datapath service, composed of named components in dependency order, each made
// from what it needs:
//   pod-cidr      NatsAddressSource          → the node's pod CIDR from IPAM
//   endpoints     LocalEndpoints             → the loaded datapath, endpoints, CNI server (LocalDatapath)
//   observe       LocalDatapath              → node-scoped endpoint/ipcache/ct RPCs
//   events        LocalDatapath              → the ring buffer's events on NATS
//   identity-heartbeat NatsIdentitySource    → the node's identity references kept alive
//   nodes         NodeRoutes (CiliumNodes)   → routes to other nodes' pod CIDRs, peers
//   ipcache       IpcacheMirror (bucket, peers) → the BPF ipcache
//   publish       Publication (endpoints, Pods, mirror) → claims, CiliumEndpoints, identities
//   hooks         DatapathHooks              → Service load-balancing and policy (none built)
// Nothing here is torn down when NATS goes away: the kernel keeps forwarding on the pinned maps,
// and the NATS-facing parts catch up when it is back.
import { DEFAULT_DATAPATH_CONFIG, effectiveHostRouting } from '@ciliate/bpf';
import { DATAPATH_COMPONENT } from '@ciliate/contracts';
import {
  setting,
  type ServiceContext,
  type ServiceDefinition,
  type Setting,
} from '@ciliate/runtime';
import { ResourceStore } from '@ciliate/store';

import { DEFAULT_AGENT_CONFIG } from './agent/agent.js';
import { DEFAULT_NETNS_DIRS, netnsDirProblem } from './cni/netns.js';
import { LocalEndpoints, type LocalDatapath } from './endpoints/component.js';
import type { EndpointState } from './endpoints/manager.js';
import { startEventPublisher } from './events/publisher.js';
import { MISSING_HOOK, NO_HOOKS, type DatapathHooks } from './hooks/hooks.js';
import { IpcacheMirror } from './ipcache/mirror.js';
import { Netlink } from './netlink/netlink.js';
import { addDatapathEndpoints, endpointInfoFromRecord } from './observe/rpc.js';
import { Publication } from './publish/component.js';
import { refusedCounter, type RefusedCounter } from './metrics.js';
import { IpamAssignments } from './routes/assignments.js';
import { NodeRoutes } from './routes/routes.js';
import { NatsAddressSource, NatsIdentitySource } from './sources/nats.js';

export const DATAPATH_VERSION = '0.1.0';

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const ABSOLUTE = /^\/.*/;

export const datapathSettings = {
  netns: setting.string({
    flag: 'netns',
    env: 'CILIATE_DATAPATH_NETNS',
    pattern: /^[\w.-]+$/,
    hint: 'a named network namespace (ip netns)',
    describe: "the node's network namespace (unset: this process's own)",
  }),
  underlayDevice: setting.string({
    flag: 'underlay-device',
    env: 'CILIATE_DATAPATH_UNDERLAY_DEVICE',
    default: 'eth0',
    pattern: /^[^\s/]{1,15}$/,
    hint: 'an interface name',
    describe: "the node's underlay device (the node program is attached to it)",
  }),
  nodeIp: setting.string({
    flag: 'node-ip',
    env: 'CILIATE_DATAPATH_NODE_IP',
    pattern: IPV4,
    hint: 'an IPv4 address',
    describe: "the node's underlay address (default: the first IPv4 address of the device)",
  }),
  routing: setting.oneOf({
    flag: 'routing',
    env: 'CILIATE_DATAPATH_ROUTING',
    values: ['native', 'vxlan'] as const,
    default: DEFAULT_DATAPATH_CONFIG.tunnelMode,
    describe: "Cilium's routingMode: native routes of pod CIDRs, or a VXLAN tunnel",
  }),
  hostRouting: setting.oneOf({
    flag: 'host-routing',
    env: 'CILIATE_DATAPATH_HOST_ROUTING',
    values: ['bpf', 'legacy'] as const,
    default: DEFAULT_DATAPATH_CONFIG.hostRouting,
    describe:
      "native routing: legacy (the node's stack forwards) or bpf, Cilium's BPF host routing (FIB lookup and redirect, bpf_redirect_peer into pods; lower latency, but pod-to-pod traffic bypasses the node's netfilter, so kube-proxy's Service translation misses the replies: only for clusters without kube-proxy); vxlan routing always uses legacy",
  }),
  pinDir: setting.string({
    flag: 'pin-dir',
    env: 'CILIATE_DATAPATH_PIN_DIR',
    default: DEFAULT_AGENT_CONFIG.pinDir,
    pattern: ABSOLUTE,
    hint: 'an absolute path on a BPF filesystem',
    describe: "where this node's BPF maps and links are pinned",
  }),
  stateDir: setting.string({
    flag: 'state-dir',
    env: 'CILIATE_DATAPATH_STATE_DIR',
    default: DEFAULT_AGENT_CONFIG.stateDir,
    pattern: ABSOLUTE,
    hint: 'an absolute path',
    describe: 'endpoint state files (restored on restart)',
  }),
  socketPath: setting.string({
    flag: 'socket-path',
    env: 'CILIATE_DATAPATH_SOCKET_PATH',
    default: DEFAULT_AGENT_CONFIG.socketPath,
    pattern: ABSOLUTE,
    hint: 'an absolute path',
    describe: 'the unix socket the CNI plugin talks to',
  }),
  attachMode: setting.oneOf({
    flag: 'attach-mode',
    env: 'CILIATE_DATAPATH_ATTACH_MODE',
    values: ['tc', 'tcx'] as const,
    default: DEFAULT_AGENT_CONFIG.attachMode,
    describe: 'how programs are attached: tc clsact filters or tcx links (kernel 6.6+)',
  }),
  traceMode: setting.oneOf({
    flag: 'trace-mode',
    env: 'CILIATE_DATAPATH_TRACE_MODE',
    values: ['off', 'new', 'all'] as const,
    default: DEFAULT_DATAPATH_CONFIG.traceMode,
    describe: 'trace events: none, the first packet of each flow direction, or every packet',
  }),
  cniNetnsDirs: netnsDirsSetting(),
  mtu: setting.int({
    flag: 'mtu',
    env: 'CILIATE_DATAPATH_MTU',
    default: DEFAULT_AGENT_CONFIG.mtu,
    min: 576,
    max: 65535,
    describe: 'MTU of the underlay; pod interfaces get it (minus 50 in vxlan mode)',
  }),
};

export type DatapathSettings = typeof datapathSettings;

/** --cni-netns-dirs: a comma-separated list of directories, each checked as netnsDirProblem. */
function netnsDirsSetting(): Setting<string[]> {
  return {
    flag: 'cni-netns-dirs',
    env: 'CILIATE_DATAPATH_CNI_NETNS_DIRS',
    default: [...DEFAULT_NETNS_DIRS],
    describe:
      "directories whose entries may be pods' network namespaces (CNI_NETNS), comma-separated; /proc/<pid>/ns/net is always accepted",
    parse: (raw) => {
      const dirs = raw
        .split(',')
        .map((d) => d.trim())
        .filter((d) => d !== '');
      if (dirs.length === 0) throw new Error('must name at least one directory');
      for (const d of dirs) {
        const problem = netnsDirProblem(d);
        if (problem) throw new Error(`"${d}" ${problem}`);
      }
      return dirs;
    },
  };
}

/**
 * Adds a component whose start makes a value: `stop` is given that value, and `next` adds the
 * components that need it (they start right after it: the lifecycle starts what is added
 * meanwhile). So no part reaches for another's state before it exists.
 */
function addStage<T>(
  ctx: ServiceContext<DatapathSettings>,
  name: string,
  start: () => Promise<T> | T,
  stop: (value: T) => Promise<void> | void,
  next?: (value: T) => void,
): void {
  let started: { value: T } | undefined;
  ctx.add({
    name,
    start: async () => {
      started = { value: await start() };
      next?.(started.value);
    },
    stop: () => (started ? stop(started.value) : undefined),
  });
}

export async function setupDatapath(
  ctx: ServiceContext<DatapathSettings>,
  hooks: DatapathHooks = NO_HOOKS,
): Promise<void> {
  const { config } = ctx;
  const log = ctx.logger('datapath');
  const nl = new Netlink(config.netns);
  const store = await ResourceStore.open(ctx.nc, { replicas: config.kvReplicas });
  const gates = {
    podCidr: ctx.readiness.gate('pod-cidr', 'no pod CIDR from IPAM yet'),
    datapath: ctx.readiness.gate('datapath', 'datapath not loaded yet'),
    restored: ctx.readiness.gate('endpoints-restored', 'endpoints not restored yet'),
    ipcache: ctx.readiness.gate('ipcache-synced', 'ipcache mirror not synced yet'),
  };

  const addresses = new NatsAddressSource({
    rpc: ctx.rpc,
    node: config.node,
    log: ctx.logger('ipam-client'),
  });
  const identities = new NatsIdentitySource({
    rpc: ctx.rpc,
    node: config.node,
    log: ctx.logger('identity-client'),
    store,
    // an identity is released only when no endpoint of this node holds it (none before start)
    holders: (): EndpointState[] => endpoints.list(),
  });
  const refused = refusedCounter(ctx.metrics.registry);
  const endpoints = new LocalEndpoints({
    nl,
    settings: config,
    clusterId: ctx.cluster.id,
    addresses,
    identities,
    log,
    cniLog: ctx.logger('cni'),
    onRefused: (reason) => refused.inc({ what: 'cni_request', reason }),
  });

  ctx.add({
    name: 'pod-cidr',
    start: async () => {
      const r = await addresses.start();
      gates.podCidr.done();
      log.info({ event: 'datapath.pod_cidr', ...r }, `pod CIDR ${r.cidr}`);
    },
  });
  addStage(
    ctx,
    'endpoints',
    () => endpoints.start(),
    () => endpoints.stop(),
    (local) => {
      gates.datapath.done();
      gates.restored.done();
      log.info(
        {
          event: 'datapath.ready',
          nodeIP: local.nodeIP,
          routing: config.routing,
          // what the programs do: VXLAN mode always forwards through the stack
          hostRouting: effectiveHostRouting(local.agent.datapath.config),
          restored: local.agent.restored,
        },
        'datapath loaded, endpoints restored, serving CNI',
      );
      addNodeParts(ctx, {
        local,
        store,
        nl,
        addresses,
        identities,
        endpoints,
        hooks,
        refused,
        ipcacheSynced: () => gates.ipcache.done(),
      });
    },
  );
}

interface NodePartsInputs {
  local: LocalDatapath;
  store: ResourceStore;
  nl: Netlink;
  addresses: NatsAddressSource;
  identities: NatsIdentitySource;
  refused: RefusedCounter;
  endpoints: LocalEndpoints;
  hooks: DatapathHooks;
  ipcacheSynced: () => void;
}

/** The components that need the started datapath, in dependency order. */
function addNodeParts(ctx: ServiceContext<DatapathSettings>, inputs: NodePartsInputs): void {
  const { local, store, nl, addresses, identities, endpoints, hooks, refused } = inputs;
  const { config } = ctx;
  const node = config.node;
  const { agent, nodeIP } = local;

  // What `ciliate endpoint list`, `bpf ipcache|ct list` and `monitor` read.
  ctx.add({
    name: 'observe',
    start: () =>
      addDatapathEndpoints(ctx, {
        node,
        datapath: agent.datapath,
        endpoints: () =>
          agent.endpoints
            .list()
            .map((r) =>
              endpointInfoFromRecord(r, {
                node,
                ...(r.identityLabels ? { labels: r.identityLabels } : {}),
              }),
            )
            .sort((x, y) => x.id - y.id),
      }),
  });
  addStage(
    ctx,
    'events',
    () =>
      startEventPublisher({
        nc: ctx.nc,
        node,
        datapath: agent.datapath,
        log: ctx.logger('events'),
        registry: ctx.metrics.registry,
      }),
    (events) => events.stop(),
  );
  ctx.add({
    name: 'identity-heartbeat',
    start: () => identities.start(),
    stop: () => identities.stop(),
  });

  const mirror = new IpcacheMirror({
    nc: ctx.nc,
    datapath: agent.datapath,
    nodeIP,
    routing: config.routing,
    log: ctx.logger('ipcache'),
  });
  // what IPAM gave each node: the routes taken from CiliumNodes are checked against it
  const assignments = new IpamAssignments({ nc: ctx.nc, log: ctx.logger('datapath') });
  const routes = new NodeRoutes({
    nl,
    store,
    node,
    nodeIP,
    routing: config.routing,
    log: ctx.logger('datapath'),
    informerLog: ctx.logger('informer'),
    metrics: ctx.metrics,
    onPeers: (peers) => mirror.setPeers(peers),
    assignments,
    podCIDRs: () => (addresses.cidr ? [addresses.cidr] : []),
    refused,
  });
  ctx.add({ name: 'ipam-assignments', start: () => assignments.start() });
  ctx.add({ name: 'nodes', start: () => routes.start(), stop: () => routes.stop() });
  ctx.add({
    name: 'ipcache-mirror',
    start: async () => {
      mirror.setPeers(routes.peers());
      await mirror.start();
      inputs.ipcacheSynced();
    },
    stop: () => mirror.stop(),
  });

  const publication = new Publication({
    nc: ctx.nc,
    rpc: ctx.rpc,
    store,
    node,
    nodeIP,
    endpoints: agent.endpoints,
    onEndpointChange: (listener) => endpoints.onChange(listener),
    identities,
    ipcacheRecords: () => mirror.list(),
    logger: (subsystem) => ctx.logger(subsystem),
    metrics: ctx.metrics,
  });
  ctx.add({
    name: 'endpoint-publisher',
    start: () => publication.start(),
    stop: () => publication.stop(),
  });

  for (const slot of Object.keys(MISSING_HOOK) as (keyof DatapathHooks)[]) {
    const hook = hooks[slot];
    if (!hook) {
      ctx.add({
        name: `hook:${slot}`,
        start: () =>
          ctx.log.info({ event: 'datapath.hook_missing', hook: slot }, MISSING_HOOK[slot]),
      });
      continue;
    }
    ctx.add({
      name: `hook:${slot}`,
      ...hook({ local, mirror, store, log: ctx.logger(slot) }),
    });
  }
}

export const datapathService: ServiceDefinition<DatapathSettings> = {
  component: DATAPATH_COMPONENT,
  role: 'datapath',
  version: DATAPATH_VERSION,
  description: "The node's eBPF datapath: CNI endpoints, ipcache, routes to other nodes",
  httpAddress: '127.0.0.1:9962',
  settings: datapathSettings,
  setup: setupDatapath,
};
