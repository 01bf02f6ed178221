// The per-node datapath service: the agent (CNI socket, endpoints, eBPF datapath) with its
// address and identity from the IPAM and identity services, the ipcache mirrored from NATS
// into the BPF map, routes to other nodes' pod CIDRs, and every local endpoint published as an
// ipcache claim and a CiliumEndpoint. Nothing here is torn down when NATS goes away: the kernel
// keeps forwarding on the pinned maps, and the NATS-facing parts catch up when it is back.
import { effectiveHostRouting } from '@ciliate/bpf';
import { DATAPATH_COMPONENT } from '@ciliate/contracts';
import { Reconciler, setting, type ServiceContext, type ServiceDefinition } from '@ciliate/runtime';
import { Informer, ResourceStore } from '@ciliate/store';

import { createAgent, type Agent } from './agent/agent.js';
import { startEventPublisher, type EventPublisher } from './events/publisher.js';
import { addDatapathEndpoints, endpointInfoFromRecord } from './observe/rpc.js';
import type { EndpointChange } from './endpoints/manager.js';
import { Netlink } from './netlink/netlink.js';
import { IpcacheMirror } from './ipcache/mirror.js';
import {
  VXLAN_OVERHEAD,
  deviceIPv4,
  ensureVxlanDevice,
  peerOf,
  planNodeRoutes,
  recordNodeAddress,
  syncRoutes,
} from './routes/routes.js';
import { IdentityFollower } from './publish/identity-follow.js';
import { EndpointPublisher } from './publish/publisher.js';
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
    default: 'native',
    describe: "Cilium's routingMode: native routes of pod CIDRs, or a VXLAN tunnel",
  }),
  hostRouting: setting.oneOf({
    flag: 'host-routing',
    env: 'CILIATE_DATAPATH_HOST_ROUTING',
    values: ['bpf', 'legacy'] as const,
    default: 'legacy',
    describe:
      "native routing: legacy (the node's stack forwards) or bpf, Cilium's BPF host routing (FIB lookup and redirect, bpf_redirect_peer into pods; lower latency, but pod-to-pod traffic bypasses the node's netfilter, so kube-proxy's Service translation misses the replies: only for clusters without kube-proxy); vxlan routing always uses legacy",
  }),
  pinDir: setting.string({
    flag: 'pin-dir',
    env: 'CILIATE_DATAPATH_PIN_DIR',
    default: '/sys/fs/bpf/ciliate',
    pattern: ABSOLUTE,
    hint: 'an absolute path on a BPF filesystem',
    describe: "where this node's BPF maps and links are pinned",
  }),
  stateDir: setting.string({
    flag: 'state-dir',
    env: 'CILIATE_DATAPATH_STATE_DIR',
    default: '/var/lib/ciliate/datapath',
    pattern: ABSOLUTE,
    hint: 'an absolute path',
    describe: 'endpoint state files (restored on restart)',
  }),
  socketPath: setting.string({
    flag: 'socket-path',
    env: 'CILIATE_DATAPATH_SOCKET_PATH',
    default: '/var/run/ciliate/cni.sock',
    pattern: ABSOLUTE,
    hint: 'an absolute path',
    describe: 'the unix socket the CNI plugin talks to',
  }),
  attachMode: setting.oneOf({
    flag: 'attach-mode',
    env: 'CILIATE_DATAPATH_ATTACH_MODE',
    values: ['tc', 'tcx'] as const,
    default: 'tc',
    describe: 'how programs are attached: tc clsact filters or tcx links (kernel 6.6+)',
  }),
  traceMode: setting.oneOf({
    flag: 'trace-mode',
    env: 'CILIATE_DATAPATH_TRACE_MODE',
    values: ['off', 'new', 'all'] as const,
    default: 'new',
    describe: 'trace events: none, the first packet of each flow direction, or every packet',
  }),
  mtu: setting.int({
    flag: 'mtu',
    env: 'CILIATE_DATAPATH_MTU',
    default: 1500,
    min: 576,
    max: 65535,
    describe: 'MTU of the underlay; pod interfaces get it (minus 50 in vxlan mode)',
  }),
};

export type DatapathSettings = typeof datapathSettings;

export async function setupDatapath(ctx: ServiceContext<DatapathSettings>): Promise<void> {
  const { config } = ctx;
  const node = config.node;
  const log = ctx.logger('datapath');
  const cniLog = ctx.logger('cni');
  const nl = new Netlink(config.netns);
  const store = await ResourceStore.open(ctx.nc, { replicas: config.kvReplicas });

  const gates = {
    podCidr: ctx.readiness.gate('pod-cidr', 'no pod CIDR from IPAM yet'),
    datapath: ctx.readiness.gate('datapath', 'datapath not loaded yet'),
    restored: ctx.readiness.gate('endpoints-restored', 'endpoints not restored yet'),
    ipcache: ctx.readiness.gate('ipcache-synced', 'ipcache mirror not synced yet'),
  };

  const addresses = new NatsAddressSource({ rpc: ctx.rpc, node, log: ctx.logger('ipam-client') });
  let agent: Agent | undefined;
  let events: EventPublisher | undefined;
  const identities = new NatsIdentitySource({
    rpc: ctx.rpc,
    node,
    log: ctx.logger('identity-client'),
    store,
    holders: () => agent?.endpoints.list() ?? [],
  });
  let publisher: EndpointPublisher | undefined;
  let publishing = false;
  const onEndpointChange = (change: EndpointChange): void => {
    log.debug(
      { event: `endpoint.${change.type}`, ip: change.state?.ip, pod: change.state?.owner.pod },
      'endpoint changed',
    );
    if (publishing) publisher?.kick();
  };

  ctx.add({
    name: 'pod-cidr',
    start: async () => {
      const r = await addresses.start();
      gates.podCidr.done();
      log.info({ event: 'datapath.pod_cidr', ...r }, `pod CIDR ${r.cidr}`);
    },
  });

  let nodeIP = config.nodeIp ?? '';
  ctx.add({
    name: 'agent',
    start: async () => {
      if (!nodeIP) {
        const found = await deviceIPv4(nl, config.underlayDevice);
        if (!found)
          throw new Error(
            `--node-ip: not set and ${config.underlayDevice} has no IPv4 address (--underlay-device)`,
          );
        nodeIP = found;
      }
      const tunnelIfindex = config.routing === 'vxlan' ? await ensureVxlanDevice(nl) : 0;
      agent = await createAgent(
        {
          socketPath: config.socketPath,
          stateDir: config.stateDir,
          pinDir: config.pinDir,
          nodeIPv4: nodeIP,
          ...(config.netns ? { nodeNetns: config.netns } : {}),
          tunnelMode: config.routing,
          hostRouting: config.hostRouting,
          clusterId: ctx.cluster.id,
          ...(tunnelIfindex ? { tunnelIfindex } : {}),
          mtu: config.routing === 'vxlan' ? config.mtu - VXLAN_OVERHEAD : config.mtu,
          attachMode: config.attachMode,
          traceMode: config.traceMode,
        },
        {
          addresses,
          identities,
          onEndpointChange,
          log: (entry) => cniLog.info(entry, 'cni request'),
        },
      );
      const netns = config.netns ? { netns: config.netns } : {};
      agent.datapath.attachUnderlay(
        { ifname: config.underlayDevice, ...netns },
        { mode: config.attachMode },
      );
      if (tunnelIfindex)
        agent.datapath.attachOverlay(
          { ifindex: tunnelIfindex, ...netns },
          { mode: config.attachMode },
        );
      gates.datapath.done();
      gates.restored.done();
      log.info(
        {
          event: 'datapath.ready',
          nodeIP,
          routing: config.routing,
          // what the programs do: VXLAN mode always forwards through the stack
          hostRouting: effectiveHostRouting(agent.datapath.config),
          restored: agent.restored,
        },
        'datapath loaded, endpoints restored, serving CNI',
      );
    },
    // the programs stay attached and the maps pinned: pods keep talking while we are away
    stop: () => agent?.close(),
  });

  // What `ciliate endpoint list`, `bpf ipcache|ct list` and `monitor` read: node-scoped
  // endpoints and the ring buffer's events on NATS.
  ctx.add({
    name: 'observe',
    start: () => {
      const a = agent!;
      addDatapathEndpoints(ctx, {
        node,
        datapath: a.datapath,
        endpoints: () =>
          a.endpoints
            .list()
            .map((r) =>
              endpointInfoFromRecord(r, {
                node,
                ...(r.identityLabels ? { labels: r.identityLabels } : {}),
              }),
            )
            .sort((x, y) => x.id - y.id),
      });
      events = startEventPublisher({
        nc: ctx.nc,
        node,
        datapath: a.datapath,
        log: ctx.logger('events'),
        registry: ctx.metrics.registry,
      });
    },
    stop: () => events?.stop(),
  });

  ctx.add({
    name: 'identity-heartbeat',
    start: () => identities.start(),
    stop: () => identities.stop(),
  });

  let mirror: IpcacheMirror | undefined;
  const ciliumNodes = new Informer(store, {
    kind: 'CiliumNode',
    resyncMs: 30_000,
    log: ctx.logger('informer'),
    metrics: ctx.metrics.informers,
  });
  const nodesLoop = new Reconciler({
    name: 'nodes',
    log,
    metrics: ctx.metrics.controllers,
    coalesceMs: 0,
    reconcile: async () => {
      const all = ciliumNodes.list();
      const peers = all.map(peerOf);
      mirror?.setPeers(peers);
      await syncRoutes(nl, planNodeRoutes(peers, { name: node, ip: nodeIP }, config.routing));
      // IPAM writes the same object and may drop what we recorded: put it back
      const own = all.find((n) => n.metadata.name === node);
      if (!own || peerOf(own).ip !== nodeIP) await recordNodeAddress(store, node, nodeIP);
    },
  });
  ctx.add({
    name: 'nodes',
    start: async () => {
      ciliumNodes.on(() => {
        if (ciliumNodes.synced) nodesLoop.trigger(0);
      });
      await ciliumNodes.start();
      await recordNodeAddress(store, node, nodeIP);
      nodesLoop.start();
      await nodesLoop.idle();
    },
    stop: async () => {
      await ciliumNodes.stop();
      await nodesLoop.close();
    },
  });

  ctx.add({
    name: 'ipcache-mirror',
    start: async () => {
      mirror = new IpcacheMirror({
        nc: ctx.nc,
        datapath: agent!.datapath,
        nodeIP,
        routing: config.routing,
        log: ctx.logger('ipcache'),
      });
      mirror.setPeers(ciliumNodes.list().map(peerOf));
      await mirror.start();
      gates.ipcache.done();
    },
    stop: () => mirror?.stop(),
  });

  // Pods of the whole cluster (the store watches by kind and namespace, not by node): their
  // labels are what local endpoints' identities follow.
  const pods = new Informer(store, {
    kind: 'Pod',
    log: ctx.logger('informer'),
    metrics: ctx.metrics.informers,
  });
  const follower = new IdentityFollower({
    endpoints: {
      list: () => agent?.endpoints.list() ?? [],
      read: (containerId, ifname) => agent?.endpoints.read(containerId, ifname),
      setIdentity: (...args) => agent!.endpoints.setIdentity(...args),
      retirePreviousIdentities: (...args) => agent!.endpoints.retirePreviousIdentities(...args),
    },
    identities,
    pod: (namespace, name) => pods.get(namespace, name),
    log: ctx.logger('identity-follow'),
  });
  ctx.add({
    name: 'pods',
    start: async () => {
      pods.on((ev) => {
        const m = ev.object.metadata;
        const pod = ev.type === 'DELETED' ? undefined : ev.object;
        if (publishing && follower.concerns(m.namespace ?? 'default', m.name ?? '', pod))
          publisher?.kick();
      });
      await pods.start();
    },
    stop: () => pods.stop(),
  });

  ctx.add({
    name: 'endpoint-publisher',
    start: () => {
      publisher = new EndpointPublisher({
        rpc: ctx.rpc,
        store,
        node,
        nodeIP,
        log: ctx.logger('publish'),
        controllers: ctx.metrics.controllers,
        endpoints: () => agent?.endpoints.list() ?? [],
        ipcacheRecords: () => mirror?.list() ?? [],
        around: { before: () => follower.follow(), after: () => follower.retire() },
      });
      publishing = true;
      publisher.start();
      void followReconnects(ctx, () => publisher?.kick());
    },
    stop: async () => {
      publishing = false;
      await publisher?.stop();
    },
  });
}

async function followReconnects(
  ctx: ServiceContext<DatapathSettings>,
  onReconnect: () => void,
): Promise<void> {
  for await (const s of ctx.nc.status()) if (s.type === 'reconnect') onReconnect();
}

export const datapathService: ServiceDefinition<DatapathSettings> = {
  component: DATAPATH_COMPONENT,
  version: DATAPATH_VERSION,
  description: "The node's eBPF datapath: CNI endpoints, ipcache, routes to other nodes",
  httpAddress: '127.0.0.1:9962',
  settings: datapathSettings,
  setup: setupDatapath,
};
