// The agent's address and identity sources over NATS: the IPAM service hands out pod addresses
// from this node's pod CIDR, the identity service turns a pod's labels (read from the Pod object
// in the resource store) into its security identity. Transient failures (no responder, timeout,
// a reconnecting connection) are retried until a deadline, then answered as CNI error 11 ("try
// again later") so a runtime never waits on a NATS outage longer than that.
import {
  CiliateError,
  IdentityAllocateReplySchema,
  IdentityHeartbeatReplySchema,
  IdentityReleaseReplySchema,
  IpamAllocateReplySchema,
  IpamListReplySchema,
  IpamNodeCidrsReplySchema,
  IpamReleaseReplySchema,
  identityNodeSubject,
  ipamSubject,
  ipamNodeSubject,
  type IdentityAllocateRequest,
  MAX_RESERVED_IDENTITY,
} from '@ciliate/contracts';
import { createPodPool, parsePodOwnerKey, podPoolUsage, type PodOwner } from '@ciliate/ipam-core';
import { identityInputsOf, type PodLike } from '@ciliate/datapath-core';
import type { Logger, RpcClient } from '@ciliate/runtime';
import type { ResourceStore } from '@ciliate/store';

import type { EndpointState } from '../endpoints/manager.js';
import type {
  AddressLease,
  AddressSource,
  IdentityInputs,
  IdentitySource,
  ResolvedIdentity,
} from './local.js';
import { CniError, CniErrorCode } from '../cni/errors.js';

/** How long one CNI-path request to another service may take, retries included. */
export const REQUEST_DEADLINE_MS = 8_000;
const ATTEMPT_TIMEOUT_MS = 2_000;
/** How long STATUS waits for IPAM: runtimes poll STATUS and need an answer, not a retry. */
export const STATUS_DEADLINE_MS = 2_000;

function transient(err: unknown): boolean {
  // `busy`: the service is at its in-flight cap; coming back after a backoff is what it asks.
  if (err instanceof CiliateError) {
    return err.code === 'unavailable' || err.code === 'timeout' || err.code === 'busy';
  }
  // connection-level failures of the client (closed, draining, reconnecting)
  return !(err instanceof CniError);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs `fn` until it succeeds, fails for good, or `deadlineMs` has passed; each attempt gets the
 * time left (at most ATTEMPT_TIMEOUT_MS). Out of time: CNI error 11 naming what did not answer.
 */
export async function withDeadline<T>(
  what: string,
  fn: (timeoutMs: number) => Promise<T>,
  deadlineMs = REQUEST_DEADLINE_MS,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  for (let attempt = 0; ; attempt++) {
    const left = end - Date.now();
    if (left <= 0) break;
    try {
      return await fn(Math.max(200, Math.min(ATTEMPT_TIMEOUT_MS, left)));
    } catch (err) {
      if (!transient(err)) throw err;
      last = err;
    }
    await sleep(Math.min(100 * 2 ** attempt, 1000, Math.max(0, end - Date.now())));
  }
  const why = last instanceof Error ? last.message : String(last);
  throw new CniError(
    CniErrorCode.TRY_AGAIN_LATER,
    `${what}: no answer within ${deadlineMs} ms (is NATS reachable?): ${why}`,
  );
}

function permanent(err: unknown, what: string): unknown {
  if (err instanceof CiliateError && err.code === 'exhausted')
    return new CniError(CniErrorCode.ADDRESS_EXHAUSTED, `${what}: ${err.message}`);
  return err;
}

/** The pods' gateway as IPAM's reply names it (IPAM owns the rule that picks it). */
export function gatewayOf(
  reply: { gateways?: { ipv4?: string } | undefined },
  cidr: string,
): string {
  const gw = reply.gateways?.ipv4;
  if (!gw) throw new Error(`IPAM answered no gateway for pod CIDR ${cidr} (an IPAM too old?)`);
  return gw;
}

export interface NatsSourceOptions {
  rpc: RpcClient;
  node: string;
  log: Logger;
  deadlineMs?: number;
}

export class NatsAddressSource implements AddressSource {
  private podCidr: string | undefined;
  private router: string | undefined;

  constructor(private readonly opts: NatsSourceOptions) {}

  get cidr(): string | undefined {
    return this.podCidr;
  }

  get gateway(): string | undefined {
    return this.router;
  }

  /** Asks IPAM for this node's pod CIDR (allocating one on first use); retried until `deadlineMs`. */
  async start(deadlineMs = 60_000): Promise<{ cidr: string; gateway: string }> {
    const r = await withDeadline(
      `IPAM node-cidrs for ${this.opts.node}`,
      (timeoutMs) =>
        this.opts.rpc.request(
          ipamNodeSubject('node-cidrs', this.opts.node),
          { node: this.opts.node },
          IpamNodeCidrsReplySchema,
          { timeoutMs },
        ),
      deadlineMs,
    );
    const cidr = r.cidrs.ipv4;
    if (!cidr) throw new Error(`IPAM gave node ${this.opts.node} no IPv4 pod CIDR`);
    this.podCidr = cidr;
    this.router = gatewayOf(r, cidr);
    return { cidr, gateway: this.router };
  }

  async allocate(owner: PodOwner): Promise<AddressLease> {
    const r = await withDeadline(
      'IPAM allocate',
      (timeoutMs) =>
        this.opts.rpc.request(
          ipamNodeSubject('allocate', this.opts.node),
          { node: this.opts.node, owner: wire(owner), family: 'ipv4' },
          IpamAllocateReplySchema,
          { timeoutMs },
        ),
      this.opts.deadlineMs,
    ).catch((err: unknown) => {
      throw permanent(err, 'IPAM allocate');
    });
    const ip = r.ips.ipv4;
    if (!ip) throw new Error(`IPAM allocate answered no IPv4 address for ${owner.pod}`);
    const cidr = r.cidrs.ipv4 ?? this.podCidr;
    if (!cidr) throw new Error('IPAM allocate answered no pod CIDR');
    if (cidr !== this.podCidr) {
      this.podCidr = cidr;
      this.router = gatewayOf(r, cidr);
    }
    return { ip, gateway: this.router! };
  }

  async release(owner: PodOwner): Promise<string | null> {
    const r = await withDeadline(
      'IPAM release',
      (timeoutMs) =>
        this.opts.rpc.request(
          ipamNodeSubject('release', this.opts.node),
          { node: this.opts.node, owner: wire(owner) },
          IpamReleaseReplySchema,
          { timeoutMs },
        ),
      this.opts.deadlineMs,
    );
    return r.released.ipv4 ?? null;
  }

  /**
   * STATUS: the addresses left in this node's pod CIDR as IPAM counts them (router included in
   * the used ones). Throws, so that STATUS says "not ready", when IPAM has given this node no
   * pod CIDR yet or does not answer within `deadlineMs`.
   */
  async available(deadlineMs = STATUS_DEADLINE_MS): Promise<number> {
    const cidr = this.podCidr;
    if (!cidr) throw new Error(`IPAM has given node ${this.opts.node} no pod CIDR yet`);
    const r = await withDeadline(
      'IPAM list',
      (timeoutMs) =>
        this.opts.rpc.request(ipamSubject('list'), { node: this.opts.node }, IpamListReplySchema, {
          timeoutMs,
        }),
      deadlineMs,
    );
    const used = r.allocations.filter(
      (a) => a.node === this.opts.node && a.family === 'ipv4',
    ).length;
    return Number(podPoolUsage(createPodPool(cidr)).capacity) - used;
  }

  async owners(): Promise<PodOwner[]> {
    const r = await withDeadline(
      'IPAM list',
      (timeoutMs) =>
        this.opts.rpc.request(ipamSubject('list'), { node: this.opts.node }, IpamListReplySchema, {
          timeoutMs,
        }),
      this.opts.deadlineMs,
    );
    const out: PodOwner[] = [];
    for (const a of r.allocations) {
      const o = parsePodOwnerKey(a.owner);
      if (o) out.push(o);
    }
    return out;
  }
}

function attachment(o: PodOwner): string {
  return `${o.containerId}@${o.ifname}`;
}

function wire(o: PodOwner) {
  return { namespace: o.namespace, pod: o.pod, containerID: o.containerId, ifname: o.ifname };
}

export interface NatsIdentitySourceOptions extends NatsSourceOptions {
  store: ResourceStore;
  /** The endpoints of this node (an identity is released when the last one stops using it). */
  holders: () => EndpointState[];
  /** Node lease the identity service keeps for our references. */
  leaseTtlMs?: number;
}

/**
 * Identities from the identity service. The service counts references per node, not per pod,
 * so a DEL releases an identity only when no other endpoint of this node uses it, and the node's
 * lease is kept alive by heartbeats; a lease found expired means our references were dropped,
 * and every identity in use is allocated again.
 */
export class NatsIdentitySource implements IdentitySource {
  private timer: NodeJS.Timeout | undefined;
  /** Identities handed out, by attachment: covers ADDs not recorded yet when a DEL runs. */
  private readonly claimed = new Map<string, number>();
  /** Attachments whose DEL has released (or is releasing) their identity. */
  private readonly releasing = new Set<string>();
  /** Identity allocations not answered yet. */
  private readonly allocating = new Set<Promise<unknown>>();
  private beating: Promise<void> | undefined;

  constructor(private readonly opts: NatsIdentitySourceOptions) {}

  private get ttl(): number {
    return this.opts.leaseTtlMs ?? 60_000;
  }

  /** Starts the heartbeats (every third of the lease time). */
  start(): void {
    this.timer = setInterval(() => void this.heartbeat(), Math.floor(this.ttl / 3));
    this.timer.unref();
    void this.heartbeat();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
  }

  heartbeat(): Promise<void> {
    this.beating ??= this.beat().finally(() => (this.beating = undefined));
    return this.beating;
  }

  private async beat(): Promise<void> {
    try {
      const r = await withDeadline(
        'identity heartbeat',
        (timeoutMs) =>
          this.opts.rpc.request(
            identityNodeSubject('heartbeat', this.opts.node),
            { node: this.opts.node, ttlMs: this.ttl },
            IdentityHeartbeatReplySchema,
            { timeoutMs },
          ),
        Math.floor(this.ttl / 3),
      );
      if (!r.renewed) await this.retake();
    } catch (err) {
      this.opts.log.warn(
        { event: 'identity.heartbeat_failed', err },
        'identity heartbeat failed; retrying at the next beat',
      );
    }
  }

  /** Allocates again every identity this node's endpoints use (after a lease expiry). */
  private async retake(): Promise<void> {
    const sets = new Map<number, string[]>();
    for (const s of this.opts.holders())
      if (s.identity > MAX_RESERVED_IDENTITY && s.identityLabels)
        sets.set(s.identity, s.identityLabels);
    for (const [id, labels] of sets) {
      const r = await this.allocate({ node: this.opts.node, labels });
      if (r.id !== id) {
        this.opts.log.warn(
          { event: 'identity.changed', was: id, now: r.id, labels },
          'an identity got a new number after the node lease expired',
        );
      }
    }
    this.opts.log.info(
      { event: 'identity.retaken', count: sets.size },
      'identity references retaken',
    );
  }

  private allocate(req: IdentityAllocateRequest): Promise<ResolvedIdentity> {
    return withDeadline(
      'identity allocate',
      (timeoutMs) =>
        this.opts.rpc.request(
          identityNodeSubject('allocate', req.node),
          req,
          IdentityAllocateReplySchema,
          {
            timeoutMs,
          },
        ),
      this.opts.deadlineMs,
    ).then((r) => ({ id: r.id, labels: r.labels }));
  }

  async resolve(_labels: Record<string, string>, owner: PodOwner): Promise<ResolvedIdentity> {
    const pod = await withDeadline(
      'resource store (Pod)',
      (timeoutMs) =>
        Promise.race([
          this.opts.store.get({ kind: 'Pod', namespace: owner.namespace, name: owner.pod }),
          sleep(timeoutMs).then(() => {
            throw new CiliateError('timeout', `no answer within ${timeoutMs} ms`);
          }),
        ]),
      this.opts.deadlineMs,
    ).catch((err: unknown) => {
      // a name that is no valid Kubernetes name (plain runtimes) cannot have a Pod object
      if (err instanceof CiliateError && err.code === 'bad_request') return undefined;
      if ((err as { name?: string }).name === 'InvalidTokenError') return undefined;
      throw err;
    });
    const obj = pod?.object as PodLike | undefined;
    if (!obj) {
      this.opts.log.warn(
        { event: 'identity.no_pod', namespace: owner.namespace, pod: owner.pod },
        'no Pod object in the store: identity from the namespace alone',
      );
    }
    return this.allocateFor(identityInputsOf(obj), owner, 'add');
  }

  /**
   * The identity of a running endpoint from its Pod's new fields (a relabel: the caller has the
   * Pod). Claimed for the attachment at once, so a DEL of another endpoint with the same
   * identity does not release it before the caller has recorded it; not while this
   * attachment's own DEL is releasing (the caller then abandons it).
   */
  resolveInputs(from: IdentityInputs, owner: PodOwner): Promise<ResolvedIdentity> {
    return this.allocateFor(from, owner, 'relabel');
  }

  private async allocateFor(
    from: IdentityInputs,
    owner: PodOwner,
    why: 'add' | 'relabel',
  ): Promise<ResolvedIdentity> {
    const key = attachment(owner);
    const allocating = this.allocate({
      node: this.opts.node,
      namespace: owner.namespace,
      podLabels: from.podLabels,
      ...(from.serviceAccount ? { serviceAccount: from.serviceAccount } : {}),
    }).then((r) => {
      if (why === 'add') {
        // an ADD after a DEL of the same attachment: it is live again
        this.claimed.set(key, r.id);
        this.releasing.delete(key);
      } else if (!this.releasing.has(key)) {
        this.claimed.set(key, r.id);
      }
      return { ...r, from };
    });
    this.allocating.add(allocating);
    try {
      return await allocating.catch((err: unknown) => {
        throw permanent(err, 'identity allocate');
      });
    } finally {
      this.allocating.delete(allocating);
    }
  }

  async release(identity: number, owner: PodOwner): Promise<void> {
    const key = attachment(owner);
    this.claimed.delete(key);
    // Endpoints being deleted at the same time still look like holders until their DEL ends:
    // they must not keep each other's identity referenced, or nobody releases it.
    this.releasing.add(key);
    const holders = this.opts.holders();
    const live = new Set(holders.map((s) => attachment(s.owner)));
    for (const k of this.releasing) if (k !== key && !live.has(k)) this.releasing.delete(k);
    await this.releaseIfUnused(identity);
  }

  /**
   * An identity allocated for `owner` by resolveInputs that its endpoint did not take: gone
   * (`current` undefined: released as a DEL would) or holding `current` meanwhile (the
   * attachment's claim goes back to that).
   */
  async abandon(identity: number, owner: PodOwner, current: number | undefined): Promise<void> {
    if (current === undefined) return this.release(identity, owner);
    this.claimed.set(attachment(owner), current);
    await this.releaseIfUnused(identity);
  }

  /**
   * Releases the node's reference to `identity` unless an endpoint of this node (not being
   * deleted) or an allocation answered for one still uses it; a relabeled endpoint's old
   * identity goes this way (`retiring`: that endpoint, whose own old identity it is). An old
   * identity not yet retired by another endpoint counts as used: other nodes may still map that
   * endpoint's address to it until its new one is published. Answers whether a release was sent.
   */
  async releaseIfUnused(identity: number, retiring?: PodOwner): Promise<boolean> {
    if (identity <= MAX_RESERVED_IDENTITY) return false; // reserved: never referenced
    // An allocation in flight may be for this identity; its reference is written before it is
    // answered, so a release sent now could remove the reference it relies on.
    await Promise.allSettled([...this.allocating]);
    const self = retiring ? attachment(retiring) : undefined;
    const others =
      [...this.claimed.values()].includes(identity) ||
      this.opts.holders().some((s) => {
        const key = attachment(s.owner);
        if (this.releasing.has(key)) return false;
        return (
          s.identity === identity || (key !== self && !!s.previousIdentities?.includes(identity))
        );
      });
    if (others) return false;
    await withDeadline(
      'identity release',
      (timeoutMs) =>
        this.opts.rpc.request(
          identityNodeSubject('release', this.opts.node),
          { node: this.opts.node, id: identity },
          IdentityReleaseReplySchema,
          { timeoutMs },
        ),
      this.opts.deadlineMs,
    );
    return true;
  }
}
