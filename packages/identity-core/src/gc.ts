// Garbage collection by lease. Each node holds references (`ref.<N>.<node>`, or the `holder` of
// a binding it created) to the identities its endpoints use and renews a lease (`lease.<node>`)
// by heartbeat. An identity is live while
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
  identityRecord,
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

/** The identities the GC owns, replacing the list (from the `id.*` keys). */
export function withIdentities(state: ReferenceState, ids: Iterable<number>): ReferenceState {
  const identities = [...new Set(ids)].sort((a, b) => a - b);
  const keep = new Set(identities);
  const idleSince: Record<string, number> = {};
  for (const [id, t] of Object.entries(state.idleSince))
    if (keep.has(Number(id))) idleSince[id] = t;
  return { ...state, identities, idleSince };
}

/** A node's lease was written or renewed. */
export function withLease(state: ReferenceState, node: string, expiresAt: number): ReferenceState {
  return { ...state, leases: { ...state.leases, [node]: expiresAt } };
}

/** A node took a reference; the identity is no longer idle if the node's lease is live. */
export function withReference(
  state: ReferenceState,
  node: string,
  id: number,
  now: number,
): ReferenceState {
  const held = state.references[node] ?? [];
  const references = held.includes(id)
    ? state.references
    : { ...state.references, [node]: [...held, id] };
  if (!isLive(state.leases, node, now) || state.idleSince[id] === undefined) {
    return { ...state, references };
  }
  const idleSince = { ...state.idleSince };
  delete idleSince[id];
  return { ...state, references, idleSince };
}

/**
 * A node dropped a reference at `now`. When no node with a live lease holds the identity any
 * more, it is idle from the moment its last live holder let go: `now`, or the expiry of the
 * lease that made this reference dead already.
 */
export function withoutReference(
  state: ReferenceState,
  node: string,
  id: number,
  now: number,
): ReferenceState {
  const held = state.references[node] ?? [];
  if (!held.includes(id)) return state;
  const rest = held.filter((x) => x !== id);
  const references = { ...state.references };
  if (rest.length === 0) delete references[node];
  else references[node] = rest;
  const stillHeld = Object.entries(references).some(
    ([n, ids]) => isLive(state.leases, n, now) && ids.includes(id),
  );
  if (stillHeld) return { ...state, references };
  const since = isLive(state.leases, node, now)
    ? now
    : Math.max(state.idleSince[id] ?? -Infinity, state.leases[node] ?? -Infinity);
  if (since === -Infinity) return { ...state, references };
  return { ...state, references, idleSince: { ...state.idleSince, [id]: since } };
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
  | 'recheck-binding'
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
  /** What this machine marked releasing: the binding (bound number) or the reservation. */
  readonly marked?: 'binding' | 'id';
  readonly markedRevision?: number;
  readonly holdUntil?: number;
  /**
   * freed: binding (if any) and number deleted. revived: someone used it meanwhile, nothing
   * that matters was deleted. gone: `id.<N>` did not exist.
   */
  readonly result?: 'freed' | 'revived' | 'gone';
  readonly error?: { readonly code: string; readonly message: string };
}

export interface ReleaseStep {
  readonly state: ReleaseState;
  readonly op?: KvOp;
}

/**
 * Starts freeing identity `id`, as decided by collectGarbage. The key that makes the number
 * reachable is marked releasing first (compare-and-set): the binding when the number is bound,
 * the `id.<N>` reservation when it is not. After `holdMs` the references are checked straight
 * from the store (and, for a reservation, whether someone bound it meanwhile); then the binding
 * and the number are deleted, each only at the revision this machine saw. An allocator that
 * meets a mark clears it, and one adopting a reservation rewrites it; either makes a
 * conditional delete fail, and the release ends as `revived`.
 *
 * holdMs must exceed the allocation deadline plus the longest a KV request may be in flight
 * plus the lag of allocators' mirrors: an allocation that started before the mark has then
 * finished, its binding or reference visible.
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

function hold(s: ReleaseState, now: number): ReleaseStep {
  const holdUntil = now + s.holdMs;
  return at({ ...s, holdUntil }, 'hold', { op: 'wait', until: holdUntil });
}

function boundHere(s: ReleaseState, r: KvResult, key: string): boolean {
  if (r.kind !== 'value') return false;
  const b = decodeBindingRecord(r.value, key);
  return b.id === s.id && b.labels === s.labels;
}

function advanceRelease(s: ReleaseState, r: KvResult, now: number): ReleaseStep {
  const bad = (): never => {
    throw new IdentityError(
      'INVALID_ARGUMENT',
      `release in phase ${s.phase} cannot use a KV result of kind ${r.kind}`,
    );
  };
  const bKey = (): string => bindingKey(labelSetHash(s.labels!));
  switch (s.phase) {
    case 'read-id': {
      if (r.kind === 'missing') return end(s, 'gone');
      if (r.kind !== 'value') return bad();
      const rec = decodeIdentityRecord(r.value, identityKey(s.id));
      const next: ReleaseState = { ...s, labels: rec.labels, idRevision: r.revision };
      if (rec.releasing === true) {
        // A previous GC run marked the reservation and stopped; continue from its mark.
        return at({ ...next, marked: 'id', markedRevision: r.revision }, 'read-binding', {
          op: 'get',
          key: bindingKey(labelSetHash(rec.labels)),
        });
      }
      return at(next, 'read-binding', { op: 'get', key: bindingKey(labelSetHash(rec.labels)) });
    }
    case 'read-binding': {
      if (r.kind !== 'value' && r.kind !== 'missing') return bad();
      if (boundHere(s, r, bKey())) {
        const value = r as { value: string; revision: number };
        const b = decodeBindingRecord(value.value);
        // The node that bound it still holds it: only its release or the expiry of its lease
        // (the GC's node clean-up) clears the holder. A decision from a stale view ends here.
        if (b.holder !== undefined) return end(s, 'revived');
        if (b.releasing === true) {
          return hold({ ...s, marked: 'binding', markedRevision: value.revision }, now);
        }
        return at({ ...s, marked: 'binding' }, 'mark', {
          op: 'update',
          key: bKey(),
          value: encodeRecord(bindingRecord(s.id, s.labels!, true)),
          revision: value.revision,
        });
      }
      // Not bound to this number: a reservation nobody bound (in flight, or orphaned).
      if (s.marked === 'id') return hold(s, now);
      return at({ ...s, marked: 'id' }, 'mark', {
        op: 'update',
        key: identityKey(s.id),
        value: encodeRecord(identityRecord(s.id, s.labels!, true)),
        revision: s.idRevision!,
      });
    }
    case 'mark': {
      if (r.kind === 'conflict') return end(s, 'revived');
      if (r.kind !== 'written') return bad();
      const marked = { ...s, markedRevision: r.revision };
      return hold(s.marked === 'id' ? { ...marked, idRevision: r.revision } : marked, now);
    }
    case 'hold': {
      if (r.kind !== 'waited') return bad();
      if (now < s.holdUntil!) return at(s, 'hold', { op: 'wait', until: s.holdUntil! });
      return at(s, 'check-references', { op: 'keys', filter: referencesOfIdentityFilter(s.id) });
    }
    case 'check-references': {
      if (r.kind !== 'keys') return bad();
      if (r.keys.length > 0) return unmark(s);
      if (s.marked === 'binding') {
        return at(s, 'delete-binding', { op: 'delete', key: bKey(), revision: s.markedRevision! });
      }
      return at(s, 'recheck-binding', { op: 'get', key: bKey() });
    }
    case 'recheck-binding': {
      if (r.kind !== 'value' && r.kind !== 'missing') return bad();
      // Someone bound the reservation during the hold: it is in use.
      if (boundHere(s, r, bKey())) return unmark(s);
      return at(s, 'delete-id', {
        op: 'delete',
        key: identityKey(s.id),
        revision: s.markedRevision!,
      });
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
      // An allocator adopted the number meanwhile; it binds it again.
      if (r.kind === 'conflict') return end(s, 'revived');
      return bad();
    }
    case 'done':
    case 'failed':
      return { state: s };
  }
}

function unmark(s: ReleaseState): ReleaseStep {
  if (s.marked === 'binding') {
    return at(s, 'unmark', {
      op: 'update',
      key: bindingKey(labelSetHash(s.labels!)),
      value: encodeRecord(bindingRecord(s.id, s.labels!)),
      revision: s.markedRevision!,
    });
  }
  return at(s, 'unmark', {
    op: 'update',
    key: identityKey(s.id),
    value: encodeRecord(identityRecord(s.id, s.labels!)),
    revision: s.markedRevision!,
  });
}
