// IPAM's word on which pod CIDRs each node has: its node-cidrs document (buckets.ipam(),
// ipamKeys.nodeCidrs), read and never written here. In cluster-pool mode IPAM carved those
// CIDRs; in kubernetes mode it recorded them from each Node's spec.podCIDRs after checking them
// against every other node's, so in both modes the document is what a CiliumNode's
// spec.ipam.podCIDRs is checked against. It is read afresh for every routes pass: IPAM writes
// the document before the CiliumNode, so a pass started by a CiliumNode change always sees the
// assignment behind it, and a CIDR IPAM has taken back is never routed from a stale copy. The
// read is a direct get of that one key (`$JS.API.DIRECT.GET.<stream>.<key subject>`), so the
// datapath's NATS user needs to read that key and nothing else of IPAM's state.
import { buckets, ipamKeys } from '@ciliate/contracts';
import { checkNodeCidrState, podCidrList } from '@ciliate/ipam-core';
import { decodeJson, type Logger } from '@ciliate/runtime';
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
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class IpamAssignments {
  private current: NodeCidrMap = new Map();
  private revision = 0;
  private kv: KV | undefined;
  private failing = false;

  constructor(private readonly opts: IpamAssignmentsOptions) {}

  /** The last valid document read (empty before one is). */
  get(): NodeCidrMap {
    return this.current;
  }

  /** Opens the bucket and reads the document, retried until `deadlineMs`; then throws. */
  async start(deadlineMs = 60_000): Promise<void> {
    // IPAM made the bucket before it answered our node-cidrs request; never create it here
    this.kv = await new Kvm(this.opts.nc).open(buckets.ipam(), { allow_direct: true });
    const end = Date.now() + deadlineMs;
    for (;;) {
      try {
        await this.read();
        return;
      } catch (err) {
        if (Date.now() >= end) {
          throw new Error(
            `cannot read IPAM's ${ipamKeys.nodeCidrs} document from ${buckets.ipam()} (the datapath's NATS user must be allowed to read that key): ${(err as Error).message}`,
            { cause: err },
          );
        }
        await sleep(500);
      }
    }
  }

  /** Reads the document now; when it cannot be read, the last good one stands. */
  async refresh(): Promise<void> {
    try {
      await this.read();
      if (this.failing) {
        this.failing = false;
        this.opts.log.info(
          { event: 'routes.ipam_document_read' },
          "IPAM's node-cidrs document is readable again",
        );
      }
    } catch (err) {
      if (!this.failing) {
        this.opts.log.warn(
          { event: 'routes.ipam_document_unreadable', err },
          "cannot read IPAM's node-cidrs document; routes follow the last one read",
        );
      }
      this.failing = true;
    }
  }

  private async read(): Promise<void> {
    if (!this.kv) throw new Error('IpamAssignments: not started');
    const e = await this.kv.get(ipamKeys.nodeCidrs);
    // a document that is gone or not IPAM's changes nothing: the last good one stands
    if (!e || e.operation !== 'PUT' || e.revision === this.revision) return;
    try {
      this.current = nodeCidrMap(decodeJson(e.value));
      this.revision = e.revision;
    } catch (err) {
      this.opts.log.warn(
        {
          event: 'routes.ipam_document_invalid',
          key: ipamKeys.nodeCidrs,
          revision: e.revision,
          err,
        },
        "IPAM's node-cidrs document is not in IPAM's format; keeping the last good one",
      );
    }
  }
}
