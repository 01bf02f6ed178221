// IPAM's word on which pod CIDRs each node has: its node-cidrs document (buckets.ipam(),
// ipamKeys.nodeCidrs), read and never written here. In cluster-pool mode IPAM carved those
// CIDRs; in kubernetes mode it recorded them from each Node's spec.podCIDRs after checking them
// against every other node's, so in both modes the document is what a CiliumNode's
// spec.ipam.podCIDRs is checked against. IPAM writes the document before the CiliumNode, so a
// CiliumNode can arrive ahead of the watch's copy: `refresh()` reads the key itself for that.
import { buckets, ipamKeys } from '@ciliate/contracts';
import { checkNodeCidrState, podCidrList } from '@ciliate/ipam-core';
import { decodeJson, watchKv, type KvWatch, type Logger } from '@ciliate/runtime';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

export type NodeCidrMap = ReadonlyMap<string, readonly string[]>;

/** The document as node -> pod CIDRs; throws (naming the field) when it is not IPAM's format. */
export function nodeCidrMap(doc: unknown): NodeCidrMap {
  const { state } = checkNodeCidrState(doc);
  return new Map(state.nodes.map((e) => [e.node, podCidrList(e)]));
}

export interface IpamAssignmentsOptions {
  nc: NatsConnection;
  log: Logger;
  /** Told when the assignment changed (a route may now be admitted or withdrawn). */
  onChange: () => void;
}

export class IpamAssignments {
  private current: NodeCidrMap = new Map();
  private revision = 0;
  private kv: KV | undefined;
  private watch: KvWatch | undefined;

  constructor(private readonly opts: IpamAssignmentsOptions) {}

  /** The last valid document seen (empty before one is). */
  get(): NodeCidrMap {
    return this.current;
  }

  /** Starts watching; resolves once the current document is in. */
  async start(): Promise<void> {
    // IPAM made the bucket before it answered our node-cidrs request; never create it here. Gets
    // are direct, naming the key in their subject: a node may read this key of IPAM's bucket and
    // no other (contracts' access).
    this.kv = await new Kvm(this.opts.nc).open(buckets.ipam(), { allow_direct: true });
    this.watch = await watchKv<NodeCidrMap>(
      jetstream(this.opts.nc),
      this.kv,
      {
        filter: ipamKeys.nodeCidrs,
        decode: (data) => nodeCidrMap(decodeJson(data)),
        onInvalid: (_key, err) => this.invalid(err),
      },
      (ev) => {
        // a document that is gone or not IPAM's changes nothing: the last good one stands
        if (ev.value) this.accept(ev.value, ev.revision);
      },
    );
    await this.watch.synced;
  }

  async stop(): Promise<void> {
    await this.watch?.stop();
  }

  /** Reads the document now; true when it was newer than the copy held. */
  async refresh(): Promise<boolean> {
    if (!this.kv) return false;
    const e = await this.kv.get(ipamKeys.nodeCidrs);
    if (!e || e.operation !== 'PUT' || e.revision <= this.revision) return false;
    try {
      return this.accept(nodeCidrMap(decodeJson(e.value)), e.revision, false);
    } catch (err) {
      this.invalid(err);
      return false;
    }
  }

  private accept(map: NodeCidrMap, revision: number, notify = true): boolean {
    if (revision <= this.revision) return false;
    this.current = map;
    this.revision = revision;
    if (notify) this.opts.onChange();
    return true;
  }

  private invalid(err: unknown): void {
    this.opts.log.warn(
      { event: 'routes.ipam_document_invalid', key: ipamKeys.nodeCidrs, err },
      "IPAM's node-cidrs document is not in IPAM's format; keeping the last good one",
    );
  }
}
