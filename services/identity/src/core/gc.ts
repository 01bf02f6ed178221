// Garbage collection by lease. Each node holds references (`ref.<N>.<node>`) to the identities
// its endpoints use and renews a lease (`lease.<node>`) by heartbeat. An identity is live while
// some node with a live lease references it. One without a live reference for the grace period
// is freed; a node whose lease expires loses its references at the moment of expiry.
//
// Deciding (collectGarbage) and freeing (the release machine) are separate: the decision is a
// pure function of a snapshot, the freeing is a compare-and-set protocol against the store
// that an allocator touching the same identity wins.
import { IdentityError, invalid } from './errors.js';
import type { KvOp, KvResult } from './allocation.js';
import {
  bindingKey,
  bindingRecord,
  decodeBindingRecord,
  decodeIdentityRecord,
  encodeRecord,
  identityKey,
  referencesOfIdentityFilter,
} from './kv.js';
import { labelSetHash } from './labels.js';

export interface ReferenceState {
  /** Identities the GC owns: the local cluster's `id.*` numbers. */
  readonly identities: readonly number[];
  /** Lease expiry per node, ms since the epoch; a lease is live while now < expiresAt. */
  readonly leases: Readonly<Record<string, number>>;
  /** Identities each node references. */
  readonly references: Readonly<Record<string, readonly number[]>>;
  /**
   * Since when each identity has had no live reference. The service may set an entry from the
   * time of the KV event that removed the last reference; otherwise the GC sets it the first
   * time it sees the identity idle.
   */
  readonly idleSince: Readonly<Record<string, number>>;
}

export function emptyReferenceState(): ReferenceState {
  return { identities: [], leases: {}, references: {}, idleSince: {} };
}

export interface GcResult {
  /** Identities idle for at least the grace period, ascending: start a release for each. */
  readonly free: number[];
  /** Nodes whose lease expired (or who hold references without a lease): delete their keys. */
  readonly expiredNodes: string[];
  /** The state to keep: expired nodes dropped, idle times recorded. */
  readonly state: ReferenceState;
}

function isLive(leases: Readonly<Record<string, number>>, node: string, now: number): boolean {
  const exp = leases[node];
  return exp !== undefined && now < exp;
}

/** Number of nodes with a live lease referencing each identity. */
export function liveReferenceCounts(state: ReferenceState, now: number): Map<number, number> {
  const counts = new Map<number, number>();
  for (const [node, ids] of Object.entries(state.references)) {
    if (!isLive(state.leases, node, now)) continue;
    for (const id of new Set(ids)) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/**
 * Decides what to free. Before the initial sync of identities, references and leases nothing
 * is decided at all: a reference not yet loaded is indistinguishable from none, and starting
 * idle clocks early would free identities the moment the sync completes.
 *
 * An identity is freed when `now >= idleFrom + graceMs`, where idleFrom is the latest of its
 * recorded idle time and the lease expiry of any expired node still referencing it, or `now`
 * when it is seen idle for the first time.
 */
export function collectGarbage(
  state: ReferenceState,
  now: number,
  graceMs: number,
  initialSyncDone: boolean,
): GcResult {
  if (!Number.isFinite(now))
    throw invalid('INVALID_ARGUMENT', 'now', now, 'must be a finite time in ms');
  if (!Number.isFinite(graceMs) || graceMs < 0) {
    throw invalid('INVALID_ARGUMENT', 'graceMs', graceMs, 'must be a non-negative duration in ms');
  }
  if (!initialSyncDone) return { free: [], expiredNodes: [], state };

  const live = new Set<number>();
  const lastExpiry = new Map<number, number>();
  const expired = new Set<string>();
  for (const node of Object.keys(state.leases))
    if (!isLive(state.leases, node, now)) expired.add(node);
  for (const [node, ids] of Object.entries(state.references)) {
    if (isLive(state.leases, node, now)) {
      for (const id of ids) live.add(id);
      continue;
    }
    expired.add(node);
    const exp = state.leases[node];
    if (exp === undefined) continue;
    for (const id of ids) lastExpiry.set(id, Math.max(lastExpiry.get(id) ?? -Infinity, exp));
  }

  const free: number[] = [];
  const idleSince: Record<string, number> = {};
  for (const id of new Set(state.identities)) {
    if (live.has(id)) continue;
    const recorded = state.idleSince[id];
    const fromExpiry = lastExpiry.get(id);
    let idleFrom = Math.max(recorded ?? -Infinity, fromExpiry ?? -Infinity);
    if (idleFrom === -Infinity) idleFrom = now;
    // An idle time in the future (clock skew between the event source and the GC) counts from now.
    idleFrom = Math.min(idleFrom, now);
    idleSince[id] = idleFrom;
    if (now - idleFrom >= graceMs) free.push(id);
  }

  const leases: Record<string, number> = {};
  for (const [node, exp] of Object.entries(state.leases))
    if (!expired.has(node)) leases[node] = exp;
  const references: Record<string, readonly number[]> = {};
  for (const [node, ids] of Object.entries(state.references)) {
    if (!expired.has(node)) references[node] = ids;
  }
  return {
    free: free.sort((a, b) => a - b),
    expiredNodes: [...expired].sort(),
    state: { identities: state.identities, leases, references, idleSince },
  };
}

// ---------------------------------------------------------------------------------------------
// Freeing one identity

export type ReleasePhase =
  | 'read-id'
  | 'read-binding'
  | 'mark'
  | 'hold'
  | 'check-references'
  | 'unmark'
  | 'delete-binding'
  | 'delete-id'
  | 'done'
  | 'failed';

export interface ReleaseState {
  readonly v: 1;
  readonly id: number;
  readonly holdMs: number;
  readonly phase: ReleasePhase;
  readonly labels?: string;
  readonly idRevision?: number;
  /** Revision of the binding once marked releasing by this machine. */
  readonly markedRevision?: number;
  readonly holdUntil?: number;
  /**
   * freed: binding and number deleted. revived: someone used it meanwhile; nothing deleted
   * that matters. gone: `id.<N>` did not exist.
   */
  readonly result?: 'freed' | 'revived' | 'gone';
  readonly error?: { readonly code: string; readonly message: string };
}

export interface ReleaseStep {
  readonly state: ReleaseState;
  readonly op?: KvOp;
}

/**
 * Starts freeing identity `id`. If it is bound, the binding is first marked releasing
 * (compare-and-set); after `holdMs` the references are checked once more straight from the
 * store, then the binding and the number are deleted, each conditional on the revision seen.
 * An allocator that finds the mark clears it, and one adopting the number rewrites it; either
 * makes a conditional delete fail and the release ends as `revived`.
 *
 * holdMs must exceed the allocation deadline plus the lag of allocators' views: an allocator
 * that read the binding before the mark has then written its reference.
 */
export function startRelease(input: { id: number; holdMs: number }): ReleaseStep {
  if (!Number.isFinite(input.holdMs) || input.holdMs < 0) {
    throw invalid(
      'INVALID_ARGUMENT',
      'holdMs',
      input.holdMs,
      'must be a non-negative duration in ms',
    );
  }
  const state: ReleaseState = { v: 1, id: input.id, holdMs: input.holdMs, phase: 'read-id' };
  return { state, op: { op: 'get', key: identityKey(input.id) } };
}

export function stepRelease(state: ReleaseState, result: KvResult, now: number): ReleaseStep {
  try {
    return advanceRelease(state, result, now);
  } catch (err) {
    if (err instanceof IdentityError) {
      return {
        state: { ...state, phase: 'failed', error: { code: err.code, message: err.message } },
      };
    }
    throw err;
  }
}

function at(s: ReleaseState, phase: ReleasePhase, op: KvOp): ReleaseStep {
  return { state: { ...s, phase }, op };
}

function end(s: ReleaseState, result: 'freed' | 'revived' | 'gone'): ReleaseStep {
  return { state: { ...s, phase: 'done', result } };
}

function advanceRelease(s: ReleaseState, r: KvResult, now: number): ReleaseStep {
  const bad = (): never => {
    throw new IdentityError(
      'INVALID_ARGUMENT',
      `release in phase ${s.phase} cannot use a KV result of kind ${r.kind}`,
    );
  };
  switch (s.phase) {
    case 'read-id': {
      if (r.kind === 'missing') return end(s, 'gone');
      if (r.kind !== 'value') return bad();
      const rec = decodeIdentityRecord(r.value, identityKey(s.id));
      const next = { ...s, labels: rec.labels, idRevision: r.revision };
      return at(next, 'read-binding', { op: 'get', key: bindingKey(labelSetHash(rec.labels)) });
    }
    case 'read-binding': {
      const key = bindingKey(labelSetHash(s.labels!));
      if (r.kind === 'value') {
        const b = decodeBindingRecord(r.value, key);
        if (b.id === s.id && b.labels === s.labels) {
          if (b.releasing === true) {
            // A previous GC run marked it and stopped; continue from its mark.
            return hold({ ...s, markedRevision: r.revision }, now);
          }
          return at(s, 'mark', {
            op: 'update',
            key,
            value: encodeRecord(bindingRecord(s.id, s.labels, true)),
            revision: r.revision,
          });
        }
      } else if (r.kind !== 'missing') {
        return bad();
      }
      // Not bound to this number: an orphaned reservation. Nothing to mark.
      return at(s, 'check-references', { op: 'keys', filter: referencesOfIdentityFilter(s.id) });
    }
    case 'mark': {
      if (r.kind === 'written') return hold({ ...s, markedRevision: r.revision }, now);
      if (r.kind === 'conflict') return end(s, 'revived');
      return bad();
    }
    case 'hold': {
      if (r.kind !== 'waited') return bad();
      if (now < s.holdUntil!) return at(s, 'hold', { op: 'wait', until: s.holdUntil! });
      return at(s, 'check-references', { op: 'keys', filter: referencesOfIdentityFilter(s.id) });
    }
    case 'check-references': {
      if (r.kind !== 'keys') return bad();
      const key = bindingKey(labelSetHash(s.labels!));
      if (r.keys.length > 0) {
        if (s.markedRevision === undefined) return end(s, 'revived');
        return at(s, 'unmark', {
          op: 'update',
          key,
          value: encodeRecord(bindingRecord(s.id, s.labels!)),
          revision: s.markedRevision,
        });
      }
      if (s.markedRevision !== undefined) {
        return at(s, 'delete-binding', { op: 'delete', key, revision: s.markedRevision });
      }
      return at(s, 'delete-id', { op: 'delete', key: identityKey(s.id), revision: s.idRevision! });
    }
    case 'unmark': {
      if (r.kind === 'written' || r.kind === 'conflict') return end(s, 'revived');
      return bad();
    }
    case 'delete-binding': {
      if (r.kind === 'conflict') return end(s, 'revived');
      if (r.kind !== 'written') return bad();
      return at(s, 'delete-id', { op: 'delete', key: identityKey(s.id), revision: s.idRevision! });
    }
    case 'delete-id': {
      if (r.kind === 'written') return end(s, 'freed');
      // An allocator adopted the number after the binding went; it will bind it again.
      if (r.kind === 'conflict') return end(s, 'revived');
      return bad();
    }
    case 'done':
    case 'failed':
      return { state: s };
  }
}

function hold(s: ReleaseState, now: number): ReleaseStep {
  const holdUntil = now + s.holdMs;
  return at({ ...s, holdUntil }, 'hold', { op: 'wait', until: holdUntil });
}
