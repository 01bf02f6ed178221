// This replica's picture of the identity bucket, fed by one watch: the IdentityTable the
// allocation machine reads, each identity's referencing nodes, and node leases. Nothing here is
// authoritative; the machines re-check the store wherever a stale picture could matter.
import { IdentityError } from '../core/errors.js';
import { IdentityTable } from '../core/allocation.js';
import { decodeLeaseRecord, parseKey } from '../core/kv.js';
import type { ReferenceState } from '../core/gc.js';

export interface LeaseView {
  readonly expiresAt: number;
  readonly revision: number;
}

export class IdentityMirror {
  readonly table = new IdentityTable();
  /** Identity -> node -> revision of `ref.<N>.<node>`. */
  readonly #refs = new Map<number, Map<string, number>>();
  readonly #leases = new Map<string, LeaseView>();
  /**
   * When an identity lost its last live reference, as seen live by this replica (not set from
   * the initial replay, whose times are unknown: the GC then counts from its first pass).
   */
  readonly #idleSince = new Map<number, number>();
  #refCount = 0;
  /** Malformed records skipped. */
  invalid = 0;

  constructor(private readonly clock: () => number = Date.now) {}

  get references(): number {
    return this.#refCount;
  }

  get nodes(): number {
    return this.#leases.size;
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
          const before = this.table.binding(parsed.hash)?.id;
          this.table.applyKv(key, value);
          return this.table.binding(parsed.hash)?.id ?? before;
        }
        case 'reference': {
          let nodes = this.#refs.get(parsed.id);
          if (value !== undefined) {
            if (nodes === undefined) this.#refs.set(parsed.id, (nodes = new Map<string, number>()));
            if (!nodes.has(parsed.node)) this.#refCount++;
            nodes.set(parsed.node, revision);
            this.#idleSince.delete(parsed.id);
            return undefined;
          }
          if (nodes?.delete(parsed.node) === true) {
            this.#refCount--;
            if (nodes.size === 0) this.#refs.delete(parsed.id);
            const now = this.clock();
            if (!initial && this.liveHolders(parsed.id, now).length === 0) {
              this.#idleSince.set(parsed.id, now);
            }
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

  lease(node: string): LeaseView | undefined {
    return this.#leases.get(node);
  }

  /** Nodes referencing an identity (whatever their lease). */
  holders(id: number): string[] {
    return [...(this.#refs.get(id)?.keys() ?? [])].sort();
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
    const references: Record<string, number[]> = {};
    for (const [id, nodes] of this.#refs) {
      for (const n of nodes.keys()) (references[n] ??= []).push(id);
    }
    const leases: Record<string, number> = {};
    for (const [n, l] of this.#leases) leases[n] = l.expiresAt;
    const idleSince: Record<string, number> = {};
    for (const [id, t] of this.#idleSince) idleSince[id] = t;
    const identities: number[] = [];
    for (const rec of this.table.identities()) identities.push(rec.id);
    return { identities, leases, references, idleSince };
  }
}
