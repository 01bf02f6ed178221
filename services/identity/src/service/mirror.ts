// This replica's picture of the identity bucket, fed by one watch: the IdentityTable the
// allocation machine reads, each identity's referencing nodes, and node leases. Nothing here is
// authoritative; the machines re-check the store wherever a stale picture could matter.
import {
  IdentityError,
  IdentityTable,
  decodeLeaseRecord,
  identityRecord,
  parseKey,
  type ReferenceState,
} from '@ciliate/identity-core';

export interface LeaseView {
  readonly expiresAt: number;
  readonly revision: number;
}

export class IdentityMirror {
  readonly table = new IdentityTable();
  /** Identity -> node -> revision of `ref.<N>.<node>`. */
  readonly #refs = new Map<number, Map<string, number>>();
  /** Identity -> the holder its binding names, with the binding's revision. */
  readonly #holders = new Map<number, { node: string; revision: number }>();
  /** One string per node name, shared by every record that names it. */
  readonly #nodeNames = new Map<string, string>();
  readonly #leases = new Map<string, LeaseView>();
  /** Node -> identities it holds (a reference, the binding's holder, or both: counted once). */
  readonly #holdsPerNode = new Map<string, number>();
  /**
   * When an identity lost its last live reference, as seen live by this replica (not set from
   * the initial replay, whose times are unknown: the GC then counts from its first pass).
   */
  readonly #idleSince = new Map<number, number>();
  #refCount = 0;
  /** Malformed records skipped. */
  invalid = 0;

  /**
   * The keys a watch feeding this mirror needs: without `id.*`, which costs one delivery per
   * new number and only adds reservations (numbers not bound yet). The table's numbers are then
   * the bound ones, taken from the bindings; reservations are the GC's to find (see gc.ts).
   */
  static readonly WATCH_FILTERS: readonly string[] = ['labels.>', 'ref.>', 'lease.>'];

  constructor(private readonly clock: () => number = Date.now) {}

  get references(): number {
    return this.#refCount;
  }

  get nodes(): number {
    return this.#leases.size;
  }

  /** Identities `node` holds, by a reference, as a binding's holder, or both. */
  holdCount(node: string): number {
    return this.#holdsPerNode.get(node) ?? 0;
  }

  /** Whether `node` holds `id` (a reference or the binding's holder). */
  holds(id: number, node: string): boolean {
    return this.#refs.get(id)?.has(node) === true || this.#holders.get(id)?.node === node;
  }

  #countHold(node: string, delta: 1 | -1): void {
    const n = (this.#holdsPerNode.get(node) ?? 0) + delta;
    if (n > 0) this.#holdsPerNode.set(node, n);
    else this.#holdsPerNode.delete(node);
  }

  /**
   * Applies one entry of the bucket (value undefined: deleted). Returns the identity number an
   * `id.*` or `labels.*` entry concerns, for those who follow identities (the CRD mirror).
   */
  apply(
    key: string,
    value: string | undefined,
    revision: number,
    initial: boolean,
  ): number | undefined {
    const parsed = parseKey(key);
    if (parsed === undefined) return undefined;
    try {
      switch (parsed.kind) {
        case 'identity':
          this.table.applyKv(key, value);
          if (value === undefined) this.#idleSince.delete(parsed.id);
          return parsed.id;
        case 'binding': {
          const before = this.table.binding(parsed.hash);
          this.table.applyKv(key, value);
          const after = this.table.binding(parsed.hash);
          // The bound number, as `id.<N>` holds it (the binding repeats its labels).
          if (before !== undefined && before.id !== after?.id) {
            this.table.setIdentity(before.id, undefined);
            this.#idleSince.delete(before.id);
          }
          if (after !== undefined && this.table.identity(after.id)?.labels !== after.labels) {
            this.table.setIdentity(after.id, identityRecord(after.id, after.labels));
          }
          const id = after?.id ?? before?.id;
          if (id !== undefined) this.#setHolder(id, after, revision, initial);
          return id;
        }
        case 'reference': {
          let nodes = this.#refs.get(parsed.id);
          const isHolder = this.#holders.get(parsed.id)?.node === parsed.node;
          if (value !== undefined) {
            if (nodes === undefined) this.#refs.set(parsed.id, (nodes = new Map<string, number>()));
            if (!nodes.has(parsed.node)) {
              this.#refCount++;
              if (!isHolder) this.#countHold(parsed.node, 1);
            }
            nodes.set(parsed.node, revision);
            this.#idleSince.delete(parsed.id);
            return undefined;
          }
          if (nodes?.delete(parsed.node) === true) {
            this.#refCount--;
            if (!isHolder) this.#countHold(parsed.node, -1);
            if (nodes.size === 0) this.#refs.delete(parsed.id);
            this.#maybeIdle(parsed.id, initial);
          }
          return undefined;
        }
        case 'lease':
          if (value === undefined) this.#leases.delete(parsed.node);
          else {
            const rec = decodeLeaseRecord(value, key);
            this.#leases.set(parsed.node, { expiresAt: rec.expiresAt, revision });
          }
          return undefined;
      }
    } catch (err) {
      if (err instanceof IdentityError) {
        this.invalid++;
        return undefined;
      }
      throw err;
    }
  }

  #setHolder(
    id: number,
    binding: { holder?: string } | undefined,
    revision: number,
    initial: boolean,
  ): void {
    const had = this.#holders.get(id);
    const refs = this.#refs.get(id);
    if (binding?.holder !== undefined) {
      if (had === undefined) this.#refCount++;
      let node = this.#nodeNames.get(binding.holder);
      if (node === undefined) this.#nodeNames.set(binding.holder, (node = binding.holder));
      if (had?.node !== node) {
        if (had !== undefined && refs?.has(had.node) !== true) this.#countHold(had.node, -1);
        if (refs?.has(node) !== true) this.#countHold(node, 1);
      }
      this.#holders.set(id, { node, revision });
      this.#idleSince.delete(id);
      return;
    }
    if (had === undefined) return;
    this.#holders.delete(id);
    this.#refCount--;
    if (refs?.has(had.node) !== true) this.#countHold(had.node, -1);
    this.#maybeIdle(id, initial);
  }

  /** A holder let go: the identity is idle from now if no live holder is left. */
  #maybeIdle(id: number, initial: boolean): void {
    const now = this.clock();
    if (!initial && this.liveHolders(id, now).length === 0) this.#idleSince.set(id, now);
  }

  lease(node: string): LeaseView | undefined {
    return this.#leases.get(node);
  }

  /** Nodes referencing an identity (whatever their lease), binding holder included. */
  holders(id: number): string[] {
    const nodes = new Set(this.#refs.get(id)?.keys() ?? []);
    const holder = this.#holders.get(id);
    if (holder !== undefined) nodes.add(holder.node);
    return [...nodes].sort();
  }

  /** Identities whose binding names `node` as holder, with the binding's revision. */
  heldBindingsOf(node: string): [number, number][] {
    const out: [number, number][] = [];
    for (const [id, h] of this.#holders) if (h.node === node) out.push([id, h.revision]);
    return out;
  }

  /** Revision of `ref.<id>.<node>` as last seen, if present. */
  referenceRevision(id: number, node: string): number | undefined {
    return this.#refs.get(id)?.get(node);
  }

  /** Identities a node references, with the revision of each reference. */
  referencesOf(node: string): [number, number][] {
    const out: [number, number][] = [];
    for (const [id, nodes] of this.#refs) {
      const rev = nodes.get(node);
      if (rev !== undefined) out.push([id, rev]);
    }
    return out;
  }

  /** Nodes with a live lease referencing an identity. */
  liveHolders(id: number, now: number): string[] {
    return this.holders(id).filter((n) => (this.#leases.get(n)?.expiresAt ?? 0) > now);
  }

  /** The GC's input, built afresh each pass (cheaper than keeping it incrementally). */
  referenceState(): ReferenceState {
    const byNode = new Map<string, Set<number>>();
    const add = (node: string, id: number): void => {
      let ids = byNode.get(node);
      if (ids === undefined) byNode.set(node, (ids = new Set<number>()));
      ids.add(id);
    };
    for (const [id, nodes] of this.#refs) for (const n of nodes.keys()) add(n, id);
    for (const [id, h] of this.#holders) add(h.node, id);
    const references: Record<string, number[]> = {};
    for (const [n, ids] of byNode) references[n] = [...ids];
    const leases: Record<string, number> = {};
    for (const [n, l] of this.#leases) leases[n] = l.expiresAt;
    const idleSince: Record<string, number> = {};
    for (const [id, t] of this.#idleSince) idleSince[id] = t;
    const identities: number[] = [];
    for (const rec of this.table.identities()) identities.push(rec.id);
    return { identities, leases, references, idleSince };
  }
}
