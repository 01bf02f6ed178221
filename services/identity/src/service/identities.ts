// The request side of the identity service: allocate, release, lookup, list and heartbeat, each
// a thin wrapper that turns a request into the core's label sets and runs the core's allocation
// machine against the store. State lives only in the bucket; any replica answers any request.
import {
  CiliateError,
  type IdentityAllocateReply,
  type IdentityAllocateRequest,
  type IdentityHeartbeatReply,
  type IdentityHeartbeatRequest,
  type IdentityInfo,
  type IdentityListReply,
  type IdentityListRequest,
  type IdentityLookupRequest,
  type IdentityReleaseReply,
  type IdentityReleaseRequest,
  formatLabel,
  labelSetKey,
  labelsFromStrings,
  parseLabelSetKey,
  type Label,
  MAX_RESERVED_IDENTITY,
  reservedIdentities,
  reservedIdentity,
  reservedIdentityForLabels,
} from '@ciliate/contracts';

import {
  allocationError,
  enforceDeadline,
  startAllocation,
  stepAllocation,
  type AllocationStep,
  podIdentityLabels,
  bindingKey,
  decodeBindingRecord,
  decodeIdentityRecord,
  encodeRecord,
  identityKey,
  leaseKey,
  leaseRecord,
  referenceKey,
  asIdentityInput,
  type LabelFilter,
  labelSetHash,
  identityScopeForLabels,
  type IdentityRange,
  nodeLimitRefusal,
  type NodeLimits,
} from '@ciliate/identity-core';
import { toWireError } from './errors.js';
import { clearHolder } from './holder.js';
import type { KvExecutor } from './kv.js';
import type { IdentityMetrics } from './metrics.js';
import type { IdentityMirror } from './mirror.js';

export interface IdentityAllocatorOptions {
  readonly executor: KvExecutor;
  readonly mirror: IdentityMirror;
  readonly range: IdentityRange;
  readonly clusterName: string;
  readonly filter: LabelFilter;
  /** An allocation gives up rather than send an operation after this long. */
  readonly deadlineMs: number;
  /** Lease time of a node that allocates or heartbeats without naming one. */
  readonly nodeLeaseTtlMs: number;
  /**
   * Whether the mirror has loaded the bucket. Once it has, a label set the mirror has no binding
   * for is assumed unbound without asking the store (see allocate()).
   */
  readonly mirrorSynced?: () => boolean;
  /** Labels of a namespace from the resource store, if known. */
  readonly namespaceLabels?: (namespace: string) => Readonly<Record<string, string>> | undefined;
  readonly metrics?: IdentityMetrics;
  readonly clock?: () => number;
  /**
   * Caps on nodes with a lease and on identities per node, checked against this replica's
   * mirror (so a burst across replicas may pass a cap by the requests in flight). None: no caps.
   */
  readonly limits?: NodeLimits;
}

function formatKey(key: string): string[] {
  return parseLabelSetKey(key).map(formatLabel);
}

export class IdentityAllocator {
  readonly #o: IdentityAllocatorOptions;
  readonly #clock: () => number;
  /** Lease this replica wrote per node, trusted until the mirror shows that write or a later one. */
  readonly #leaseWritten = new Map<string, { expiresAt: number; revision: number }>();
  readonly #leaseInFlight = new Map<string, Promise<void>>();

  constructor(options: IdentityAllocatorOptions) {
    this.#o = options;
    this.#clock = options.clock ?? Date.now;
  }

  /** The identity-relevant label set of a request, checked; `bad_request` names the field. */
  labelsOf(req: Omit<IdentityAllocateRequest, 'node'>): Label[] {
    try {
      if (req.labels !== undefined) {
        const texts = req.labels;
        return asIdentityInput('INVALID_LABEL', () => labelsFromStrings(texts, 'labels'));
      }
      return podIdentityLabels(
        {
          namespace: req.namespace!,
          clusterName: this.#o.clusterName,
          filter: this.#o.filter,
          ...(req.podLabels === undefined ? {} : { podLabels: req.podLabels }),
          ...(req.serviceAccount === undefined ? {} : { serviceAccount: req.serviceAccount }),
          ...((req.namespaceLabels ?? this.#o.namespaceLabels?.(req.namespace!)) === undefined
            ? {}
            : { namespaceLabels: req.namespaceLabels ?? this.#o.namespaceLabels!(req.namespace!) }),
        },
        'pod',
      ).labels;
    } catch (err) {
      throw toWireError(err, 'pod');
    }
  }

  /** A reserved identity for the set, undefined for one that needs a number; bad input throws. */
  #reservedOrCheck(labels: Label[]): number | undefined {
    if (labels.length === 0) {
      throw new CiliateError('bad_request', 'labels: Required value: a label set is not empty', {
        field: 'labels',
      });
    }
    const reserved = reservedIdentityForLabels(labels);
    if (reserved !== undefined) return reserved.id;
    if (labels.some((l) => l.source === 'reserved')) {
      throw new CiliateError(
        'bad_request',
        `labels: Invalid value: ${JSON.stringify(labels.map(formatLabel))}: reserved labels must name one reserved identity exactly`,
        { field: 'labels' },
      );
    }
    const scope = identityScopeForLabels(labels);
    if (scope !== 'global') {
      throw new CiliateError(
        'bad_request',
        `labels: Invalid value: ${JSON.stringify(labels.map(formatLabel))}: CIDR and FQDN label sets get node-local identities from the node's agent, not cluster-wide ones`,
        { field: 'labels' },
      );
    }
    return undefined;
  }

  async allocate(req: IdentityAllocateRequest): Promise<IdentityAllocateReply> {
    const labels = this.labelsOf(req);
    const reserved = this.#reservedOrCheck(labels);
    if (reserved !== undefined) {
      this.#o.metrics?.allocations.inc({ outcome: 'reserved' });
      return {
        id: reserved,
        labels: reservedIdentity(reserved)!.labels.map(formatLabel),
        isNew: false,
        reserved: true,
      };
    }
    const key = labelSetKey(labels);
    const bound = this.#o.mirror.table.lookup(key);
    this.#checkLimits(
      req.node,
      bound !== undefined && this.#o.mirror.holds(bound, req.node) ? 'lease' : 'hold',
    );
    // The reference written below only protects the answer while the node's lease is live.
    const leasing = this.#ensureLease(req.node);
    if (leasing !== undefined) await leasing;
    const { table } = this.#o.mirror;
    let step: AllocationStep;
    try {
      step = startAllocation(
        {
          labels: key,
          range: this.#o.range,
          node: req.node,
          now: this.#clock(),
          deadlineMs: this.#o.deadlineMs,
          atomic: this.#o.executor.atomic === true,
        },
        table,
      );
      // The machine's first question, "is this set bound?", is answered from the synced mirror
      // when the mirror knows no binding: a wrong "no" only costs a reservation the GC reclaims,
      // because the binding is created with create-if-absent and a conflict makes the machine
      // read the real binding. It saves one of the four store round trips of a new identity.
      let speculative = this.#o.mirrorSynced?.() === true;
      for (;;) {
        step = enforceDeadline(step, this.#clock());
        if (step.op === undefined) break;
        const op = step.op;
        const result =
          speculative &&
          op.op === 'get' &&
          step.state.phase === 'read-binding' &&
          table.binding(step.state.hash) === undefined
            ? ({ kind: 'missing' } as const)
            : await this.#o.executor.execute(op);
        speculative = false;
        step = stepAllocation(step.state, result, table, this.#clock());
      }
    } catch (err) {
      this.#o.metrics?.allocations.inc({ outcome: 'failed' });
      throw toWireError(err);
    }
    const { state } = step;
    if (state.phase === 'failed' || state.result === undefined) {
      this.#o.metrics?.allocations.inc({ outcome: 'failed' });
      throw toWireError(allocationError(state));
    }
    const r = state.result;
    this.#o.metrics?.allocations.inc({ outcome: r.outcome });
    if (state.conflicts > 0) this.#o.metrics?.collisionsAvoided.inc(state.conflicts);
    return {
      id: r.id,
      labels: labels.map(formatLabel),
      isNew: r.outcome === 'created' || r.outcome === 'converged',
      reserved: false,
    };
  }

  /** Refuses a request that would grow the nodes or the node's holds beyond their caps. */
  #checkLimits(node: string, adds: 'lease' | 'hold'): void {
    const limits = this.#o.limits;
    if (limits === undefined) return;
    const { mirror } = this.#o;
    const refusal = nodeLimitRefusal(
      node,
      {
        known: mirror.lease(node) !== undefined || this.#leaseWritten.has(node),
        nodes: mirror.nodes,
        holds: mirror.holdCount(node),
      },
      limits,
      adds,
    );
    if (refusal === undefined) return;
    this.#o.metrics?.limited.inc({
      limit: refusal.limit === 'maxNodes' ? 'nodes' : 'holds_per_node',
    });
    throw toWireError(refusal.error);
  }

  /** Undefined when the node's lease is fresh (the common case: no promise, no await). */
  #ensureLease(node: string): Promise<void> | undefined {
    const now = this.#clock();
    const ttl = this.#o.nodeLeaseTtlMs;
    if (this.#leaseExpiry(node) - now > ttl / 2) return undefined;
    let pending = this.#leaseInFlight.get(node);
    if (pending === undefined) {
      pending = this.#writeLease(node, ttl).then(
        () => undefined,
        (err: unknown) => {
          throw toWireError(err);
        },
      );
      this.#leaseInFlight.set(node, pending);
      void pending.finally(() => this.#leaseInFlight.delete(node)).catch(() => undefined);
    }
    return pending;
  }

  /** When the node's lease expires as far as this replica knows (0: it has none). */
  #leaseExpiry(node: string): number {
    const seen = this.#o.mirror.lease(node);
    const written = this.#leaseWritten.get(node);
    if (written === undefined || (seen !== undefined && seen.revision >= written.revision)) {
      if (written !== undefined) this.#leaseWritten.delete(node);
      return seen?.expiresAt ?? 0;
    }
    return written.expiresAt;
  }

  async #writeLease(node: string, ttlMs: number): Promise<number> {
    const expiresAt = this.#clock() + ttlMs;
    const r = await this.#o.executor.execute({
      op: 'put',
      key: leaseKey(node),
      value: encodeRecord(leaseRecord(node, expiresAt)),
    });
    if (r.kind === 'written') this.#leaseWritten.set(node, { expiresAt, revision: r.revision });
    return expiresAt;
  }

  async heartbeat(req: IdentityHeartbeatRequest): Promise<IdentityHeartbeatReply> {
    this.#checkLimits(req.node, 'lease');
    const now = this.#clock();
    const before = this.#leaseExpiry(req.node);
    try {
      const expiresAt = await this.#writeLease(req.node, req.ttlMs ?? this.#o.nodeLeaseTtlMs);
      return { node: req.node, expiresAt, renewed: before > now };
    } catch (err) {
      throw toWireError(err);
    }
  }

  async release(req: IdentityReleaseRequest): Promise<IdentityReleaseReply> {
    let id = req.id;
    if (id === undefined) {
      const labels = this.labelsOf({ labels: req.labels! });
      const reserved = this.#reservedOrCheck(labels);
      id = reserved ?? (await this.#boundId(labelSetKey(labels)));
      if (id === undefined) {
        throw new CiliateError(
          'not_found',
          `labels: no identity holds ${JSON.stringify(labels.map(formatLabel))}`,
          { field: 'labels' },
        );
      }
    }
    if (id <= MAX_RESERVED_IDENTITY) return { id, released: false };
    if (id < this.#o.range.min || id > this.#o.range.max) {
      throw new CiliateError(
        'bad_request',
        `id: Invalid value: ${id}: not in this cluster's identity range ${this.#o.range.min}-${this.#o.range.max}`,
        { field: 'id' },
      );
    }
    try {
      // The node's hold is its reference key, the holder of the binding it created, or both.
      const key = referenceKey(id, req.node);
      const got = await this.#o.executor.execute({ op: 'get', key });
      let released = false;
      if (got.kind === 'value') {
        await this.#o.executor.execute({ op: 'delete', key });
        released = true;
      }
      const labels = this.#o.mirror.table.identity(id)?.labels ?? (await this.#labelsOf(id));
      if (labels !== undefined && (await clearHolder(this.#o.executor, id, labels, req.node))) {
        released = true;
      }
      return { id, released };
    } catch (err) {
      throw toWireError(err);
    }
  }

  /** The labels `id.<N>` holds, from the store (the mirror may lag behind a new number). */
  async #labelsOf(id: number): Promise<string | undefined> {
    const got = await this.#o.executor.execute({ op: 'get', key: identityKey(id) });
    return got.kind === 'value' ? decodeIdentityRecord(got.value).labels : undefined;
  }

  /** The number bound to a label set: the mirror first, the store when the mirror lags. */
  async #boundId(key: string): Promise<number | undefined> {
    const known = this.#o.mirror.table.lookup(key);
    if (known !== undefined) return known;
    try {
      const got = await this.#o.executor.execute({
        op: 'get',
        key: bindingKey(labelSetHash(key)),
      });
      if (got.kind !== 'value') return undefined;
      const b = decodeBindingRecord(got.value);
      return b.labels === key ? b.id : undefined;
    } catch (err) {
      throw toWireError(err);
    }
  }

  async lookup(req: IdentityLookupRequest): Promise<IdentityInfo> {
    if (req.labels !== undefined) {
      const labels = this.labelsOf({ labels: req.labels });
      const reserved = this.#reservedOrCheck(labels);
      const id = reserved ?? (await this.#boundId(labelSetKey(labels)));
      if (id !== undefined) {
        const info = this.info(id) ?? (await this.#infoFromStore(id));
        if (info !== undefined) return info;
      }
      throw new CiliateError(
        'not_found',
        `labels: no identity holds ${JSON.stringify(labels.map(formatLabel))}`,
        { field: 'labels' },
      );
    }
    const id = req.id!;
    const info = this.info(id) ?? (await this.#infoFromStore(id));
    if (info === undefined) {
      throw new CiliateError('not_found', `identity ${id} is not allocated`, { field: 'id' });
    }
    return info;
  }

  async #infoFromStore(id: number): Promise<IdentityInfo | undefined> {
    if (id < this.#o.range.min || id > this.#o.range.max) return undefined;
    try {
      const got = await this.#o.executor.execute({ op: 'get', key: identityKey(id) });
      if (got.kind !== 'value') return undefined;
      const rec = decodeIdentityRecord(got.value);
      const b = await this.#o.executor.execute({
        op: 'get',
        key: bindingKey(labelSetHash(rec.labels)),
      });
      if (b.kind !== 'value') return undefined;
      const binding = decodeBindingRecord(b.value);
      if (binding.id !== id) return undefined;
      return this.#describe(id, rec.labels, binding.releasing === true);
    } catch (err) {
      throw toWireError(err);
    }
  }

  #describe(id: number, labels: string, releasing: boolean): IdentityInfo {
    const nodes = this.#o.mirror.liveHolders(id, this.#clock());
    return {
      id,
      labels: formatKey(labels),
      reserved: false,
      references: nodes.length,
      nodes,
      releasing,
    };
  }

  /** What the mirror knows of a bound identity (reserved ones included). */
  info(id: number): IdentityInfo | undefined {
    const r = reservedIdentity(id);
    if (r !== undefined) {
      return {
        id,
        labels: r.labels.map(formatLabel),
        reserved: true,
        references: 0,
        nodes: [],
        releasing: false,
      };
    }
    const rec = this.#o.mirror.table.identity(id);
    if (rec === undefined) return undefined;
    const b = this.#o.mirror.table.binding(labelSetHash(rec.labels));
    if (b === undefined || b.id !== id) return undefined;
    return this.#describe(id, rec.labels, b.releasing === true);
  }

  list(req: IdentityListRequest): IdentityListReply {
    const after = req.after ?? 0;
    const limit = req.limit ?? 1000;
    const out: IdentityInfo[] = [];
    if (after === 0 && req.reserved !== false) {
      for (const r of reservedIdentities()) out.push(this.info(r.id)!);
    }
    const { table } = this.#o.mirror;
    const ids: number[] = [];
    for (const rec of table.identities()) if (rec.id > after) ids.push(rec.id);
    ids.sort((a, b) => a - b);
    let next: number | undefined;
    for (const id of ids) {
      if (out.length >= limit) {
        next = out[out.length - 1]!.id;
        break;
      }
      const info = this.info(id);
      if (info !== undefined) out.push(info);
    }
    return { identities: out, total: table.bindings, ...(next === undefined ? {} : { next }) };
  }
}
