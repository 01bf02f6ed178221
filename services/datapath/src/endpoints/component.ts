// The endpoints component: the node's datapath loaded over its pinned maps, the endpoint manager
// (restored from its state files) and the CNI server, attached to the underlay (and the VXLAN
// device in vxlan mode). What it starts is the input of every other part of the service.
import { VXLAN_OVERHEAD } from '@ciliate/datapath-core';
import type { Logger } from '@ciliate/runtime';

import { createAgent, type Agent } from '../agent/agent.js';
import type { CniRefusalReason } from '../cni/server.js';
import { deviceIPv4, ensureVxlanDevice } from '../routes/routes.js';
import type { Netlink } from '../netlink/netlink.js';
import type { AddressSource, IdentitySource } from '../sources/local.js';
import type { EndpointChange, EndpointState } from './manager.js';

export interface LocalEndpointsOptions {
  nl: Netlink;
  settings: {
    netns?: string | undefined;
    underlayDevice: string;
    nodeIp?: string | undefined;
    routing: 'native' | 'vxlan';
    hostRouting: 'bpf' | 'legacy';
    pinDir: string;
    stateDir: string;
    socketPath: string;
    attachMode: 'tc' | 'tcx';
    traceMode: 'off' | 'new' | 'all';
    mtu: number;
    cniNetnsDirs: readonly string[];
  };
  clusterId: number;
  addresses: AddressSource;
  identities: IdentitySource;
  log: Logger;
  cniLog: Logger;
  /** Told of every CNI request refused before it reached the endpoints. */
  onRefused?: (reason: CniRefusalReason) => void;
}

/** What the endpoints component started: the input of the components after it. */
export interface LocalDatapath {
  agent: Agent;
  /** This node's underlay address (the setting, or the device's first IPv4 address). */
  nodeIP: string;
}

export class LocalEndpoints {
  private readonly listeners = new Set<(change: EndpointChange) => void>();
  private running: Agent | undefined;

  constructor(private readonly opts: LocalEndpointsOptions) {}

  /** The endpoints of this node; none before start. */
  list(): EndpointState[] {
    return this.running?.endpoints.list() ?? [];
  }

  /** Tells `listener` of every endpoint change; returns the unsubscribe. */
  onChange(listener: (change: EndpointChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<LocalDatapath> {
    const { nl, settings: s, log } = this.opts;
    const nodeIP = s.nodeIp ?? (await deviceIPv4(nl, s.underlayDevice));
    if (!nodeIP)
      throw new Error(
        `--node-ip: not set and ${s.underlayDevice} has no IPv4 address (--underlay-device)`,
      );
    const tunnelIfindex = s.routing === 'vxlan' ? await ensureVxlanDevice(nl) : 0;
    const agent = await createAgent(
      {
        socketPath: s.socketPath,
        stateDir: s.stateDir,
        pinDir: s.pinDir,
        nodeIPv4: nodeIP,
        ...(s.netns ? { nodeNetns: s.netns } : {}),
        tunnelMode: s.routing,
        hostRouting: s.hostRouting,
        clusterId: this.opts.clusterId,
        ...(tunnelIfindex ? { tunnelIfindex } : {}),
        mtu: s.routing === 'vxlan' ? s.mtu - VXLAN_OVERHEAD : s.mtu,
        attachMode: s.attachMode,
        traceMode: s.traceMode,
        netnsDirs: [...s.cniNetnsDirs],
      },
      {
        addresses: this.opts.addresses,
        identities: this.opts.identities,
        onEndpointChange: (change) => {
          log.debug(
            {
              event: `endpoint.${change.type}`,
              ip: change.state?.ip,
              pod: change.state?.owner.pod,
            },
            'endpoint changed',
          );
          for (const l of this.listeners) l(change);
        },
        log: (entry) => this.opts.cniLog.info(entry, 'cni request'),
        ...(this.opts.onRefused ? { onRefused: this.opts.onRefused } : {}),
      },
    );
    this.running = agent;
    const netns = s.netns ? { netns: s.netns } : {};
    agent.datapath.attachUnderlay({ ifname: s.underlayDevice, ...netns }, { mode: s.attachMode });
    if (tunnelIfindex)
      agent.datapath.attachOverlay({ ifindex: tunnelIfindex, ...netns }, { mode: s.attachMode });
    return { agent, nodeIP };
  }

  /** The programs stay attached and the maps pinned: pods keep talking while we are away. */
  async stop(): Promise<void> {
    await this.running?.close();
  }
}
