// The node's BPF ipcache as a mirror of the cluster's ipcache bucket plus what this node knows
// about nodes: its own address is the host, other nodes' addresses are remote-node, and in VXLAN
// mode other nodes' pod CIDRs lead into the tunnel. The pure part computes the desired map and
// the difference to what the kernel holds; IpcacheMirror feeds it from a KV watch, resyncing
// fully after every reconnect, and never empties the map when NATS goes away.
import { isIP } from 'node:net';

import type { Datapath, IpcacheValue } from '@ciliate/bpf';
import { RESERVED_IDENTITIES, buckets, IpcacheRecordSchema } from '@ciliate/contracts';
import { canonicalCidr } from '@ciliate/ipam';
import { decodeJson, watchKv, type Logger } from '@ciliate/runtime';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

export type RoutingMode = 'native' | 'vxlan';

/** The fields of an ipcache record the datapath uses. */
export interface IpcacheRecordView {
  prefix: string;
  identity: number;
  hostIP?: string | undefined;
  /** Every owner's claim (the record's `claims`). */
  claims?: { ownerKey: string; hostIP?: string | undefined; identity: number }[];
}

/** Another node as the resource store describes it. */
export interface PeerNode {
  name: string;
  /** Its underlay address (CiliumNode spec.addresses InternalIP). */
  ip?: string | undefined;
  /** Its pod CIDRs (CiliumNode spec.ipam.podCIDRs). */
  podCIDRs: string[];
}

export interface DesiredIpcacheInput {
  records: Iterable<IpcacheRecordView>;
  nodeIP: string;
  routing: RoutingMode;
  peers: Iterable<PeerNode>;
}

export interface IpcacheChange {
  upserts: [string, IpcacheValue][];
  deletes: string[];
}

/** "10.0.0.5" and "10.0.0.5/32" alike, host bits cleared, as the map's keys read back. */
export function canonicalPrefix(prefix: string): string | undefined {
  const text = prefix.includes('/') ? prefix : `${prefix}/${isIP(prefix) === 6 ? 128 : 32}`;
  try {
    return canonicalCidr(text);
  } catch {
    return undefined;
  }
}

/**
 * What the BPF ipcache should hold. Node entries override records of the same prefix (a node
 * address is host or remote-node whatever else claims it); a remote pod CIDR is only a fallback
 * for pod addresses the bucket does not know yet.
 */
export function desiredIpcache(input: DesiredIpcacheInput): Map<string, IpcacheValue> {
  const out = new Map<string, IpcacheValue>();
  const vxlan = input.routing === 'vxlan';
  const peerIPs = new Set<string>();
  for (const p of input.peers) if (p.ip && p.ip !== input.nodeIP) peerIPs.add(p.ip);
  for (const r of input.records) {
    const prefix = canonicalPrefix(r.prefix);
    if (!prefix) continue;
    const remote = r.hostIP !== undefined && r.hostIP !== input.nodeIP;
    out.set(prefix, {
      identity: r.identity,
      tunnelEndpoint: vxlan && remote && isIP(r.hostIP ?? '') === 4 ? r.hostIP! : null,
    });
  }
  if (vxlan) {
    for (const p of input.peers) {
      if (!p.ip || p.ip === input.nodeIP || isIP(p.ip) !== 4) continue;
      for (const cidr of p.podCIDRs) {
        const prefix = canonicalPrefix(cidr);
        if (prefix && !prefix.includes(':') && !out.has(prefix))
          out.set(prefix, { identity: RESERVED_IDENTITIES.world, tunnelEndpoint: p.ip });
      }
    }
  }
  for (const ip of peerIPs) {
    const prefix = canonicalPrefix(ip);
    if (prefix)
      out.set(prefix, { identity: RESERVED_IDENTITIES['remote-node'], tunnelEndpoint: null });
  }
  const self = canonicalPrefix(input.nodeIP);
  if (self) out.set(self, { identity: RESERVED_IDENTITIES.host, tunnelEndpoint: null });
  return out;
}

function sameValue(a: IpcacheValue, b: IpcacheValue): boolean {
  return a.identity === b.identity && (a.tunnelEndpoint ?? null) === (b.tunnelEndpoint ?? null);
}

/** The writes that turn `current` into `desired`. */
export function diffIpcache(
  current: ReadonlyMap<string, IpcacheValue>,
  desired: ReadonlyMap<string, IpcacheValue>,
): IpcacheChange {
  const upserts: [string, IpcacheValue][] = [];
  const deletes: string[] = [];
  for (const [k, v] of desired) {
    const cur = current.get(k);
    if (!cur || !sameValue(cur, v)) upserts.push([k, v]);
  }
  for (const k of current.keys()) if (!desired.has(k)) deletes.push(k);
  return { upserts, deletes };
}

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
