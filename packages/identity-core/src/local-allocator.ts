// Node-local identities for CIDR and FQDN label sets (scope 1<<24), and for remote nodes when
// nodes are selectable by CIDR (scope 2<<24). They never leave the node, so one writer (the
// node's agent) owns them and no compare-and-set is needed; numbers differ between nodes.
import {
  labelSetKey,
  parseLabelSetKey,
  type Label,
  reservedIdentityForLabels,
} from '@ciliate/contracts';

import { IdentityError, asIdentityInput, invalid } from './errors.js';
import { IDENTITY_SCOPE_LOCAL, IDENTITY_SCOPE_REMOTE_NODE, LOCAL_IDENTITY_MAX } from './numeric.js';

export type IdentityScope = 'global' | 'local' | 'remote-node';

const LOCAL_SOURCES = new Set(['cidr', 'fqdn', 'reserved', 'cidrgroup']);

/**
 * Which allocator a label set belongs to (Cilium's ScopeForLabels): remote-node labels give
 * the remote-node scope; sets made only of cidr/fqdn/cidrgroup/reserved labels are node-local;
 * anything else needs a cluster-wide number. Reserved sets are resolved before this.
 */
export function identityScopeForLabels(labels: readonly Label[]): IdentityScope {
  if (labels.some((l) => l.source === 'reserved' && l.key === 'remote-node')) return 'remote-node';
  if (labels.length === 0) return 'global';
  return labels.every((l) => LOCAL_SOURCES.has(l.source)) ? 'local' : 'global';
}

export interface LocalIdentitySnapshot {
  readonly v: 1;
  readonly scope: 'local' | 'remote-node';
  /** Where the next search for a free number starts. */
  readonly next: number;
  readonly entries: readonly { id: number; labels: string; refs: number }[];
}

interface Entry {
  id: number;
  labels: string;
  refs: number;
}

export interface LocalAcquireResult {
  readonly id: number;
  /** A new number was taken (the caller publishes it to the ipcache and policy). */
  readonly created: boolean;
  /** A reserved identity answered; nothing is reference-counted. */
  readonly reserved: boolean;
}

/**
 * Reference-counted allocator of node-local identities. Numbers are handed out next-fit, so a
 * freed number is reused as late as possible and a stale ipcache entry is unlikely to name a
 * new label set. State is plain data: snapshot() and LocalIdentityAllocator.restore() carry
 * it across restarts so numbers in pinned BPF maps keep their meaning.
 */
export class LocalIdentityAllocator {
  readonly scope: 'local' | 'remote-node';
  readonly #byKey = new Map<string, Entry>();
  readonly #byId = new Map<number, Entry>();
  readonly #limit: number;
  #next = 1;

  constructor(options: { scope?: 'local' | 'remote-node'; limit?: number } = {}) {
    this.scope = options.scope ?? 'local';
    this.#limit = options.limit ?? LOCAL_IDENTITY_MAX;
    if (!Number.isInteger(this.#limit) || this.#limit < 1 || this.#limit > LOCAL_IDENTITY_MAX) {
      throw invalid(
        'INVALID_ARGUMENT',
        'limit',
        options.limit,
        `must be an integer in 1-${LOCAL_IDENTITY_MAX}`,
      );
    }
  }

  get size(): number {
    return this.#byId.size;
  }

  #flag(): number {
    return this.scope === 'local' ? IDENTITY_SCOPE_LOCAL : IDENTITY_SCOPE_REMOTE_NODE;
  }

  /** Takes a reference on the identity of `labels`, allocating one if needed. */
  acquire(labels: readonly Label[]): LocalAcquireResult {
    const reserved = reservedIdentityForLabels(labels);
    if (reserved !== undefined) return { id: reserved.id, created: false, reserved: true };
    const scope = identityScopeForLabels(labels);
    if (scope !== this.scope) {
      throw invalid(
        'INVALID_ARGUMENT',
        'labels',
        labels.map((l) => `${l.source}:${l.key}`),
        `this set needs a ${scope} identity, not a ${this.scope} one`,
      );
    }
    const key = asIdentityInput('INVALID_LABEL_SET', () => labelSetKey(labels));
    const found = this.#byKey.get(key);
    if (found !== undefined) {
      found.refs++;
      return { id: found.id, created: false, reserved: false };
    }
    if (this.#byId.size >= this.#limit) {
      throw new IdentityError(
        'IDENTITY_EXHAUSTED',
        `node-local identities exhausted: all ${this.#limit} numbers of the ${this.scope} scope are in use`,
      );
    }
    const flag = this.#flag();
    let n = this.#next;
    while (this.#byId.has(flag + n)) n = n >= this.#limit ? 1 : n + 1;
    const entry: Entry = { id: flag + n, labels: key, refs: 1 };
    this.#byKey.set(key, entry);
    this.#byId.set(entry.id, entry);
    this.#next = n >= this.#limit ? 1 : n + 1;
    return { id: entry.id, created: true, reserved: false };
  }

  /**
   * Drops one reference. Returns `freed: true` when it was the last one and the number is free
   * again. Releasing a reserved or unknown identity is a no-op that says so.
   */
  release(id: number): { freed: boolean; known: boolean; labels?: string } {
    const entry = this.#byId.get(id);
    if (entry === undefined) return { freed: false, known: false };
    entry.refs--;
    if (entry.refs > 0) return { freed: false, known: true, labels: entry.labels };
    this.#byId.delete(id);
    this.#byKey.delete(entry.labels);
    return { freed: true, known: true, labels: entry.labels };
  }

  lookup(labels: readonly Label[]): number | undefined {
    const reserved = reservedIdentityForLabels(labels);
    if (reserved !== undefined) return reserved.id;
    return this.#byKey.get(asIdentityInput('INVALID_LABEL_SET', () => labelSetKey(labels)))?.id;
  }

  labelsOf(id: number): Label[] | undefined {
    const entry = this.#byId.get(id);
    return entry === undefined ? undefined : parseLabelSetKey(entry.labels);
  }

  references(id: number): number {
    return this.#byId.get(id)?.refs ?? 0;
  }

  snapshot(): LocalIdentitySnapshot {
    return {
      v: 1,
      scope: this.scope,
      next: this.#next,
      entries: [...this.#byId.values()]
        .sort((a, b) => a.id - b.id)
        .map((e) => ({ id: e.id, labels: e.labels, refs: e.refs })),
    };
  }

  static restore(snapshot: LocalIdentitySnapshot, field = 'snapshot'): LocalIdentityAllocator {
    if (snapshot?.v !== 1) {
      throw invalid('INVALID_RECORD', `${field}.v`, snapshot?.v, 'only version 1 is known');
    }
    if (snapshot.scope !== 'local' && snapshot.scope !== 'remote-node') {
      throw invalid(
        'INVALID_RECORD',
        `${field}.scope`,
        snapshot.scope,
        'must be local or remote-node',
      );
    }
    const a = new LocalIdentityAllocator({ scope: snapshot.scope });
    const flag = a.#flag();
    if (
      !Number.isInteger(snapshot.next) ||
      snapshot.next < 1 ||
      snapshot.next > LOCAL_IDENTITY_MAX
    ) {
      throw invalid(
        'INVALID_RECORD',
        `${field}.next`,
        snapshot.next,
        `must be in 1-${LOCAL_IDENTITY_MAX}`,
      );
    }
    a.#next = snapshot.next;
    snapshot.entries.forEach((e, i) => {
      const f = `${field}.entries[${i}]`;
      const n = e.id - flag;
      if (!Number.isInteger(e.id) || n < 1 || n > LOCAL_IDENTITY_MAX) {
        throw invalid('INVALID_RECORD', `${f}.id`, e.id, `not a ${snapshot.scope} identity`);
      }
      if (!Number.isInteger(e.refs) || e.refs < 1) {
        throw invalid('INVALID_RECORD', `${f}.refs`, e.refs, 'must be a positive integer');
      }
      const labels = asIdentityInput('INVALID_RECORD', () =>
        labelSetKey(parseLabelSetKey(e.labels, `${f}.labels`)),
      );
      if (a.#byId.has(e.id) || a.#byKey.has(labels)) {
        throw invalid('INVALID_RECORD', f, e.id, 'duplicate identity or label set');
      }
      const entry: Entry = { id: e.id, labels, refs: e.refs };
      a.#byId.set(e.id, entry);
      a.#byKey.set(labels, entry);
    });
    return a;
  }
}
