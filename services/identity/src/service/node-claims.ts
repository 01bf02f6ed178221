// What a node may claim in the ipcache through its node-scoped subjects: the address of one of
// its own pods, as IPAM recorded it (the node's pod IP document in the IPAM bucket), under the
// pod's owner key and the agents' source. Anything else is refused with the field named, so a
// node's credentials cannot point another node's or the world's addresses at an identity.
import {
  CiliateError,
  IPCACHE_NODE_SOURCE,
  IPCACHE_POD_OWNER_PREFIX,
  ipamKeys,
  ipcachePodOwnerKey,
} from '@ciliate/contracts';
import {
  decodeNodePodIps,
  nodePodIpHolder,
  parsePodOwnerKey,
  type NodePodIpsState,
} from '@ciliate/ipam-core';
import { familyBits, formatIp, parsePrefix } from '@ciliate/netaddr';
import type { KV } from '@nats-io/kv';

export type ClaimRefusal = 'owner' | 'source' | 'prefix' | 'not_allocated' | 'ipam_state';

export class NodeClaimCheck {
  #kv: Promise<KV> | undefined;
  readonly #docs = new Map<string, { revision: number; state: NodePodIpsState }>();

  constructor(
    private readonly openIpam: () => Promise<KV>,
    private readonly refused: (reason: ClaimRefusal) => void,
  ) {}

  /**
   * Throws `forbidden` unless `node` may make this claim: a `pod/<ns>/<name>` owner, the agents'
   * source, a single address; for an upsert, one IPAM gave that pod on that node. A delete needs
   * no allocation (IPAM may have released the address first).
   */
  async check(
    node: string,
    claim: { prefix: string; ownerKey: string; source?: string },
    op: 'upsert' | 'delete',
  ): Promise<void> {
    if (!claim.ownerKey.startsWith(IPCACHE_POD_OWNER_PREFIX)) {
      this.#refuse('owner', 'ownerKey', `a node claims only for its pods ("pod/<ns>/<name>")`);
    }
    if (claim.source !== undefined && claim.source !== IPCACHE_NODE_SOURCE) {
      this.#refuse('source', 'source', `a node's claims have source "${IPCACHE_NODE_SOURCE}"`);
    }
    const p = parsePrefix(claim.prefix, { bareAddress: true });
    if (!p.ok || p.value.length !== familyBits(p.value.family)) {
      this.#refuse('prefix', 'prefix', 'a node claims single pod addresses (/32 or /128)');
    }
    const address = formatIp({ family: p.value.family, value: p.value.network });
    if (op === 'delete') return;
    const holder = await this.#holder(node, address);
    const pod = holder === undefined ? undefined : parsePodOwnerKey(holder);
    if (pod === undefined || ipcachePodOwnerKey(pod.namespace, pod.pod) !== claim.ownerKey) {
      this.#refuse(
        'not_allocated',
        'prefix',
        `${address} is not an address IPAM gave ${claim.ownerKey.slice(IPCACHE_POD_OWNER_PREFIX.length)} on node ${node}`,
      );
    }
  }

  async #holder(node: string, address: string): Promise<string | undefined> {
    let entry;
    try {
      this.#kv ??= this.openIpam();
      entry = await (await this.#kv).get(ipamKeys.podIps(node));
    } catch (err) {
      this.#kv = undefined;
      throw new CiliateError('unavailable', `IPAM state cannot be read: ${String(err)}`, {
        cause: err,
      });
    }
    if (entry === null || entry.operation !== 'PUT') return undefined;
    // A node's document changes only when its pods change: decode (and check) it once per
    // revision, not once per claim.
    const cached = this.#docs.get(node);
    if (cached?.revision === entry.revision) return nodePodIpHolder(cached.state, address);
    try {
      const state = decodeNodePodIps(entry.json());
      this.#docs.set(node, { revision: entry.revision, state });
      return nodePodIpHolder(state, address);
    } catch (err) {
      this.refused('ipam_state');
      throw new CiliateError('internal', `IPAM state of ${node} is not readable: ${String(err)}`);
    }
  }

  #refuse(reason: ClaimRefusal, field: string, message: string): never {
    this.refused(reason);
    throw new CiliateError('forbidden', `${field}: ${message}`, { field });
  }
}
