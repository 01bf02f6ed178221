// The node's BPF ipcache as a mirror of the cluster's ipcache bucket plus what this node knows
// about nodes (@ciliate/datapath-core's desiredIpcache decides what it holds). IpcacheMirror
// feeds the plan from a KV watch, resyncing fully after every reconnect, and never empties the
// map when NATS goes away.
import type { Datapath, IpcacheValue } from '@ciliate/bpf';
import { buckets, IpcacheRecordSchema } from '@ciliate/contracts';
import {
  desiredIpcache,
  diffIpcache,
  type IpcacheChange,
  type IpcacheRecordView,
  type PeerNode,
  type RoutingMode,
} from '@ciliate/datapath-core';
import { decodeJson, watchKv, type Logger } from '@ciliate/runtime';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

export interface IpcacheMirrorOptions {
  nc: NatsConnection;
  datapath: Pick<Datapath, 'ipcache'>;
  nodeIP: string;
  routing: RoutingMode;
  log: Logger;
  /** Told after every full sync (the first one makes the service ready). */
  onSynced?: () => void;
}

/**
 * Watches the ipcache bucket and keeps the BPF map equal to desiredIpcache(). A watch is
 * (re)started at start and after every NATS reconnect; only a completed snapshot replaces the
 * view, so the map is swept of stale prefixes exactly then and never on a disconnect.
 */
export class IpcacheMirror {
  private records = new Map<string, IpcacheRecordView>();
  private peers: PeerNode[] = [];
  private generation = 0;
  private stopWatch: (() => Promise<void>) | undefined;
  private synced = false;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: IpcacheMirrorOptions) {}

  get isSynced(): boolean {
    return this.synced;
  }

  /** The bucket's records as last seen (empty before the first sync). */
  list(): IpcacheRecordView[] {
    return [...this.records.values()];
  }

  /** Starts the watch and resolves once the first snapshot is in the map. */
  async start(): Promise<void> {
    await this.watch();
    void this.followStatus();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await this.stopWatch?.();
  }

  /** New node facts (from CiliumNode objects); applied at once when synced. */
  setPeers(peers: PeerNode[]): void {
    this.peers = peers;
    if (this.synced) this.reconcile();
  }

  /** Writes the difference between the desired map and the kernel's; returns it. */
  reconcile(): IpcacheChange {
    const current = new Map<string, IpcacheValue>();
    for (const [k, v] of this.opts.datapath.ipcache.entries()) current.set(k.prefix, v);
    const desired = desiredIpcache({
      records: this.records.values(),
      nodeIP: this.opts.nodeIP,
      routing: this.opts.routing,
      peers: this.peers,
    });
    const change = diffIpcache(current, desired);
    for (const [prefix, v] of change.upserts) this.opts.datapath.ipcache.set({ prefix }, v);
    for (const prefix of change.deletes) this.opts.datapath.ipcache.delete({ prefix });
    return change;
  }

  private async followStatus(): Promise<void> {
    for await (const s of this.opts.nc.status()) {
      if (this.stopped) return;
      if (s.type === 'reconnect') this.scheduleRestart(0);
    }
  }

  private scheduleRestart(delayMs: number): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.watch().catch((err: unknown) => {
        this.opts.log.warn(
          { event: 'ipcache.watch_failed', err },
          'ipcache watch could not be restarted; retrying',
        );
        if (!this.stopped) this.scheduleRestart(1000);
      });
    }, delayMs);
    this.restartTimer.unref();
  }

  private async watch(): Promise<void> {
    const gen = ++this.generation;
    const old = this.stopWatch;
    this.stopWatch = undefined;
    await old?.().catch(() => undefined);
    const kv = await new Kvm(this.opts.nc).create(buckets.ipcache(), { history: 1 });
    // Entries of the snapshot go to a map of their own, which replaces the view only once it is
    // complete: a stale prefix is swept exactly then, never on a disconnect.
    const snapshot = new Map<string, IpcacheRecordView>();
    let complete = false;
    const finishSnapshot = (): void => {
      if (complete || gen !== this.generation) return;
      complete = true;
      this.records = snapshot;
      this.synced = true;
      const change = this.reconcile();
      this.opts.log.info(
        {
          event: 'ipcache.synced',
          records: snapshot.size,
          upserts: change.upserts.length,
          deletes: change.deletes.length,
        },
        'ipcache mirror synced',
      );
      this.opts.onSynced?.();
    };
    const w = await watchKv<IpcacheRecordView>(
      jetstream(this.opts.nc),
      kv,
      {
        decode: (data) => IpcacheRecordSchema.parse(decodeJson(data)),
        onInvalid: (key) =>
          this.opts.log.warn(
            { event: 'ipcache.invalid_record', key },
            'ignoring an invalid ipcache record',
          ),
      },
      (ev) => {
        if (gen !== this.generation) return;
        // The first change after the snapshot may come before `synced` is awaited below.
        if (!ev.initial) finishSnapshot();
        const target = ev.initial ? snapshot : this.records;
        if (ev.value) target.set(ev.key, ev.value);
        else target.delete(ev.key);
        if (!ev.initial) this.reconcile();
      },
    );
    this.stopWatch = () => w.stop();
    await w.synced;
    finishSnapshot();
  }
}
