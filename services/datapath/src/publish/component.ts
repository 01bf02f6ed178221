// The publication component: the endpoint publisher (ipcache claims and CiliumEndpoints of the
// local endpoints) with the identity follower in its pass, fed by the cluster's Pods, by endpoint
// changes and by NATS reconnects.
import type { IpcacheRecordView } from '@ciliate/datapath-core';
import type { Logger, RpcClient, RuntimeMetrics } from '@ciliate/runtime';
import { Informer, type ResourceStore } from '@ciliate/store';
import type { NatsConnection } from '@nats-io/transport-node';

import type { EndpointChange, EndpointManager } from '../endpoints/manager.js';
import { IdentityFollower, type FollowIdentities } from './identity-follow.js';
import { EndpointPublisher } from './publisher.js';

export interface PublicationOptions {
  nc: NatsConnection;
  rpc: RpcClient;
  store: ResourceStore;
  node: string;
  nodeIP: string;
  endpoints: EndpointManager;
  /** Subscribes to endpoint changes; returns the unsubscribe. */
  onEndpointChange: (listener: (change: EndpointChange) => void) => () => void;
  identities: FollowIdentities;
  /** The ipcache bucket as mirrored (the publisher sweeps claims of a previous run from it). */
  ipcacheRecords: () => IpcacheRecordView[];
  logger: (subsystem: string) => Logger;
  metrics: Pick<RuntimeMetrics, 'informers' | 'controllers'>;
}

export class Publication {
  // Pods of the whole cluster (the store watches by kind and namespace, not by node): their
  // labels are what local endpoints' identities follow.
  private readonly pods: Informer<'Pod'>;
  private readonly follower: IdentityFollower;
  private readonly publisher: EndpointPublisher;
  private running = false;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly opts: PublicationOptions) {
    this.pods = new Informer(opts.store, {
      kind: 'Pod',
      log: opts.logger('informer'),
      metrics: opts.metrics.informers,
    });
    this.follower = new IdentityFollower({
      endpoints: opts.endpoints,
      identities: opts.identities,
      pod: (namespace, name) => this.pods.get(namespace, name),
      log: opts.logger('identity-follow'),
    });
    this.publisher = new EndpointPublisher({
      rpc: opts.rpc,
      store: opts.store,
      node: opts.node,
      nodeIP: opts.nodeIP,
      log: opts.logger('publish'),
      controllers: opts.metrics.controllers,
      endpoints: () => opts.endpoints.list(),
      ipcacheRecords: opts.ipcacheRecords,
      around: { before: () => this.follower.follow(), after: () => this.follower.retire() },
    });
  }

  async start(): Promise<void> {
    this.pods.on((ev) => {
      const m = ev.object.metadata;
      const pod = ev.type === 'DELETED' ? undefined : ev.object;
      if (this.running && this.follower.concerns(m.namespace ?? 'default', m.name ?? '', pod))
        this.publisher.kick();
    });
    await this.pods.start();
    this.running = true;
    this.publisher.start();
    this.unsubscribe = this.opts.onEndpointChange(() => this.publisher.kick());
    void this.followReconnects();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.unsubscribe?.();
    await this.publisher.stop();
    await this.pods.stop();
  }

  private async followReconnects(): Promise<void> {
    for await (const s of this.opts.nc.status()) {
      if (!this.running) return;
      if (s.type === 'reconnect') this.publisher.kick();
    }
  }
}
