// Cluster-wide identity allocation over a KV store with compare-and-set, as a pure state
// machine: the machine says which KV operation to do next, the service does it and feeds the
// result back. Nothing here touches NATS, so every interleaving of concurrent allocators can be
// replayed in a unit test.
//
// Why it gives zero duplicates:
// * `id.<N>` is only ever created if absent, so one number has one label set.
// * `labels.<hash>` is only ever created if absent, so one label set has one number. A number
//   is *bound* to a label set exactly when that binding points at it; an `id.<N>` without a
//   binding is a reservation (in flight, or orphaned by a crash or a lost race).
// * Allocators never delete. Only the GC does, binding first, then the number, each
//   conditional on the revision it decided on. An allocator that adopts an existing
//   reservation first rewrites it (compare-and-set), so a GC delete decided earlier fails.
//
// The node's reference: an allocation on behalf of a node answers only once the node holds the
// number. When this allocator creates the binding, the binding names the node as its holder
// (one write instead of two); otherwise `ref.<N>.<node>` is written before the answer.
//
// Atomic claims: on a store that writes several keys all-or-nothing (JetStream atomic batch
// publish), a new number and its binding go in one write. That is one of the interleavings the
// sequential protocol already allows (create-id, create-binding with nothing in between), and a
// refused batch wrote nothing, so it adds no state and needs no new argument; it saves one of
// the two round trips of a new identity. After a conflicting batch the machine reads the
// binding and continues with the sequential steps.
//
// Why it collides rarely: the first candidate number is derived from the label-set hash and
// probing continues along a hash-derived stride. Allocators racing for the same label set pick
// the same numbers in the same order and converge on one; allocators of different sets start
// apart and follow different strides.

import { IdentityError, invalid } from './errors.js';
import {
  bindingKey,
  bindingRecord,
  decodeBindingRecord,
  decodeIdentityRecord,
  encodeRecord,
  identityKey,
  identityRecord,
  parseKey,
  referenceKey,
  referenceRecord,
  type BindingRecord,
  type IdentityRecord,
  nodeKeyToken,
} from './kv.js';
import { checkLabelSetKey, labelSetHash } from './labels.js';
import { LOCAL_IDENTITY_MAX, rangeSize, type IdentityRange } from './numeric.js';

// ---------------------------------------------------------------------------------------------
// KV operations the machines ask for, and what the service reports back.

export type KvOp =
  | { readonly op: 'get'; readonly key: string }
  /** Create only if the key does not exist (JetStream KV create). */
  | { readonly op: 'create'; readonly key: string; readonly value: string }
  /** Write only if the key's last revision is `revision` (JetStream KV update). */
  | {
      readonly op: 'update';
      readonly key: string;
      readonly value: string;
      readonly revision: number;
    }
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  /** Delete; when `revision` is given, only if it is still the key's last revision. */
  | { readonly op: 'delete'; readonly key: string; readonly revision?: number }
  /**
   * All of `writes` or none of them (an atomic batch); a create in it expects the key absent.
   * Answered `written` (revision of the last write), `conflict` (a create met an existing key:
   * nothing was written) or `refused` (the store would not take a batch now: nothing written).
   */
  | { readonly op: 'batch'; readonly writes: readonly BatchWrite[] }
  /** Keys matching a subject filter (`ref.300.>`). */
  | { readonly op: 'keys'; readonly filter: string }
  /** Come back at or after `until` (ms); the service uses a timer. */
  | { readonly op: 'wait'; readonly until: number };

/** One write of an atomic batch. */
export type BatchWrite =
  | { readonly op: 'create'; readonly key: string; readonly value: string }
  | { readonly op: 'put'; readonly key: string; readonly value: string };

export type KvResult =
  | { readonly kind: 'written'; readonly revision: number }
  /** A batch the store did not take for reasons of its own (limits); nothing was written. */
  | { readonly kind: 'refused' }
  /** create on an existing key; update or conditional delete with a stale revision. */
  | { readonly kind: 'conflict' }
  | { readonly kind: 'value'; readonly value: string; readonly revision: number }
  | { readonly kind: 'missing' }
  | { readonly kind: 'keys'; readonly keys: readonly string[] }
  | { readonly kind: 'waited' };

// ---------------------------------------------------------------------------------------------
// What an allocator knows without asking: a mirror of the bucket kept by a KV watch.

export interface AllocationView {
  /** The binding of a label-set hash, if the mirror has one. */
  binding(hash: string): BindingRecord | undefined;
  /** Whether `id.<N>` exists as far as the mirror knows. */
  isTaken(id: number): boolean;
  /** Numbers of `range` known to be taken; lets exhaustion be reported without a scan. */
  takenCount(range: IdentityRange): number;
}

/**
 * Mirror of the `id.*` and `labels.*` keys. Fed from a KV watch with applyKv(); also the
 * answer to "which labels has identity N" for policy and the CLI.
 */
export class IdentityTable implements AllocationView {
  readonly #byId = new Map<number, IdentityRecord>();
  readonly #byHash = new Map<string, BindingRecord>();
  readonly #blocks = new Map<number, number>();

  get size(): number {
    return this.#byId.size;
  }

  get bindings(): number {
    return this.#byHash.size;
  }

  binding(hash: string): BindingRecord | undefined {
    return this.#byHash.get(hash);
  }

  identity(id: number): IdentityRecord | undefined {
    return this.#byId.get(id);
  }

  isTaken(id: number): boolean {
    return this.#byId.has(id);
  }

  takenCount(range: IdentityRange): number {
    // Counts are kept per block of 256 numbers, so this costs one lookup per block of the
    // range rather than a pass over every identity.
    let n = 0;
    const first = range.min >> 8;
    const last = range.max >> 8;
    for (let b = first; b <= last; b++) {
      const count = this.#blocks.get(b) ?? 0;
      if (count === 0) continue;
      if ((b > first || range.min % 256 === 0) && (b < last || range.max % 256 === 255)) {
        n += count;
        continue;
      }
      const lo = Math.max(range.min, b << 8);
      const hi = Math.min(range.max, (b << 8) + 255);
      for (let id = lo; id <= hi; id++) if (this.#byId.has(id)) n++;
    }
    return n;
  }

  /** The number bound to a label set, if any (binding present and pointing at a live id). */
  lookup(labels: string): number | undefined {
    const b = this.#byHash.get(labelSetHash(labels));
    return b !== undefined && b.labels === labels ? b.id : undefined;
  }

  setIdentity(id: number, record: IdentityRecord | undefined): void {
    const had = this.#byId.has(id);
    if (record === undefined) this.#byId.delete(id);
    else this.#byId.set(id, record);
    const delta = (record === undefined ? 0 : 1) - (had ? 1 : 0);
    if (delta !== 0) {
      const count = (this.#blocks.get(id >> 8) ?? 0) + delta;
      if (count === 0) this.#blocks.delete(id >> 8);
      else this.#blocks.set(id >> 8, count);
    }
  }

  setBinding(hash: string, record: BindingRecord | undefined): void {
    if (record === undefined) {
      this.#byHash.delete(hash);
      return;
    }
    // Share the label text with the identity record: it is the bulk of the memory.
    const twin = this.#byId.get(record.id);
    this.#byHash.set(
      hash,
      twin !== undefined && twin.labels === record.labels
        ? { ...record, labels: twin.labels }
        : record,
    );
  }

  /**
   * Applies one KV entry (value undefined = deleted or purged). Returns false for keys that
   * are not identities or bindings; throws INVALID_RECORD for a malformed value, which the
   * service counts and skips.
   */
  applyKv(key: string, value: string | undefined): boolean {
    const parsed = parseKey(key);
    if (parsed?.kind === 'identity') {
      const rec = value === undefined ? undefined : decodeIdentityRecord(value, key);
      if (rec !== undefined && rec.id !== parsed.id) {
        throw invalid('INVALID_RECORD', `${key}.id`, rec.id, `does not match the key`);
      }
      this.setIdentity(parsed.id, rec);
      return true;
    }
    if (parsed?.kind === 'binding') {
      const rec = value === undefined ? undefined : decodeBindingRecord(value, key);
      if (rec !== undefined && labelSetHash(rec.labels) !== parsed.hash) {
        throw invalid('INVALID_RECORD', `${key}.labels`, rec.labels, 'does not hash to the key');
      }
      this.setBinding(parsed.hash, rec);
      return true;
    }
    return false;
  }

  identities(): IterableIterator<IdentityRecord> {
    return this.#byId.values();
  }

  toJSON(): { identities: IdentityRecord[]; bindings: BindingRecord[] } {
    return {
      identities: [...this.#byId.values()].sort((a, b) => a.id - b.id),
      bindings: [...this.#byHash.values()].sort((a, b) => a.id - b.id),
    };
  }

  static fromJSON(data: { identities: unknown[]; bindings: unknown[] }): IdentityTable {
    const t = new IdentityTable();
    data.identities.forEach((r, i) => {
      const rec = decodeIdentityRecord(r, `identities[${i}]`);
      t.setIdentity(rec.id, rec);
    });
    data.bindings.forEach((r, i) => {
      const rec = decodeBindingRecord(r, `bindings[${i}]`);
      t.setBinding(labelSetHash(rec.labels), rec);
    });
    return t;
  }
}

// ---------------------------------------------------------------------------------------------
// Choosing a number

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/**
 * The probe sequence of a label set in a range: candidate i is
 * `min + (start + i * stride) mod size`. The stride is coprime with the size, so the first
 * `size` candidates visit every number once.
 */
export function probeSequence(
  hash: string,
  range: IdentityRange,
): { start: number; stride: number } {
  const size = rangeSize(range);
  const h1 = parseInt(hash.slice(0, 8), 16);
  const h2 = parseInt(hash.slice(8, 16), 16);
  const start = h1 % size;
  if (size <= 2) return { start, stride: 1 };
  let stride = 1 + (h2 % (size - 1));
  while (gcd(stride, size) !== 1) stride = stride + 1 >= size ? 1 : stride + 1;
  return { start, stride };
}

export function probeCandidate(
  seq: { start: number; stride: number },
  range: IdentityRange,
  i: number,
): number {
  const size = rangeSize(range);
  // start < size and stride < size, both below 2^24, so i * stride stays exact in a double.
  return range.min + ((seq.start + (i % size) * seq.stride) % size);
}

function checkRange(range: IdentityRange, field = 'range'): void {
  if (
    !Number.isInteger(range.min) ||
    !Number.isInteger(range.max) ||
    range.min < 1 ||
    range.max > LOCAL_IDENTITY_MAX ||
    range.min > range.max
  ) {
    throw invalid(
      'INVALID_ARGUMENT',
      field,
      range,
      `must be min <= max within 1-${LOCAL_IDENTITY_MAX}`,
    );
  }
}

export type AllocationPlan =
  | { readonly kind: 'existing'; readonly id: number; readonly hash: string }
  | {
      readonly kind: 'claim';
      readonly id: number;
      readonly hash: string;
      /** Index of this candidate in the probe sequence; continue from probe + 1. */
      readonly probe: number;
      /** What to create, in order: the number, then the binding. */
      readonly writes: readonly [BatchWrite, BatchWrite];
    }
  | { readonly kind: 'exhausted'; readonly hash: string; readonly error: IdentityError }
  | { readonly kind: 'collision'; readonly hash: string; readonly error: IdentityError };

export interface PlanInput {
  /** KV label-set key (labelSetKey()). */
  readonly labels: string;
  readonly range: IdentityRange;
  readonly view: AllocationView;
  /** Numbers found taken since the view was read (failed creates). */
  readonly skip?: ReadonlySet<number>;
  /** First probe index to consider (default 0). */
  readonly fromProbe?: number;
  /** Ignore a binding the view holds; set when the store just said there is none. */
  readonly ignoreBinding?: boolean;
}

/**
 * Given what exists, the number a label set has or should get next: its binding if the view
 * holds one; otherwise the first candidate of its probe sequence (from `fromProbe`) that is
 * neither taken in the view nor in `skip`; or IDENTITY_EXHAUSTED when there is none.
 */
export function planAllocate(input: PlanInput): AllocationPlan {
  checkLabelSetKey(input.labels);
  checkRange(input.range);
  return plan(input, labelSetHash(input.labels));
}

function plan(input: PlanInput, hash: string): AllocationPlan {
  const { labels, range, view } = input;
  if (input.ignoreBinding !== true) {
    const b = view.binding(hash);
    if (b !== undefined) {
      if (b.labels !== labels) return { kind: 'collision', hash, error: collisionError(hash) };
      if (b.releasing !== true) return { kind: 'existing', id: b.id, hash };
    }
  }
  const size = rangeSize(range);
  const skip = input.skip ?? new Set<number>();
  if (view.takenCount(range) >= size)
    return { kind: 'exhausted', hash, error: exhaustedError(range) };
  const seq = probeSequence(hash, range);
  for (let i = input.fromProbe ?? 0; i < size; i++) {
    const id = probeCandidate(seq, range, i);
    if (view.isTaken(id) || skip.has(id)) continue;
    return {
      kind: 'claim',
      id,
      hash,
      probe: i,
      writes: [
        { op: 'create', key: identityKey(id), value: encodeRecord(identityRecord(id, labels)) },
        { op: 'create', key: bindingKey(hash), value: encodeRecord(bindingRecord(id, labels)) },
      ],
    };
  }
  return { kind: 'exhausted', hash, error: exhaustedError(range) };
}

function exhaustedError(range: IdentityRange): IdentityError {
  return new IdentityError(
    'IDENTITY_EXHAUSTED',
    `identity range ${range.min}-${range.max} is exhausted: all ${rangeSize(range)} numbers are in use; free identities (fewer identity-relevant labels) or wait for garbage collection`,
  );
}

function collisionError(hash: string): IdentityError {
  return new IdentityError(
    'HASH_COLLISION',
    `two different label sets hash to ${hash}; refusing to allocate rather than merge them`,
  );
}

// ---------------------------------------------------------------------------------------------
// The allocation state machine

export type AllocationPhase =
  | 'read-binding'
  | 'claim-atomic'
  | 'create-id'
  | 'read-id'
  | 'touch-id'
  | 'create-binding'
  | 'revive'
  | 'reference'
  | 'done'
  | 'failed';

export interface AllocationResult {
  readonly id: number;
  /**
   * existing: the label set was bound already; created: this allocator took a new number;
   * converged: it bound a number another allocator of the same set had reserved; revived: it
   * cancelled a pending GC release of the existing binding.
   */
  readonly outcome: 'existing' | 'created' | 'converged' | 'revived';
  /** A reservation this allocator made but did not bind (left for the GC). */
  readonly orphan?: number;
  /** Compare-and-set conflicts met on the way: duplicates that were avoided. */
  readonly conflicts: number;
}

export interface AllocationState {
  readonly v: 1;
  readonly labels: string;
  readonly hash: string;
  readonly range: IdentityRange;
  /** Node on whose behalf the reference `ref.<N>.<node>` is written before answering. */
  readonly node?: string;
  readonly deadlineAt: number;
  /** Claim new numbers with one atomic batch (the store supports it, no conflict met yet). */
  readonly atomic: boolean;
  readonly maxSteps: number;
  readonly steps: number;
  readonly phase: AllocationPhase;
  readonly probe: number;
  readonly skip: readonly number[];
  readonly candidate?: number;
  readonly claimed?: number;
  readonly claimOutcome?: 'created' | 'converged';
  readonly conflicts: number;
  readonly result?: AllocationResult;
  readonly error?: { readonly code: string; readonly message: string };
}

export interface AllocationStep {
  readonly state: AllocationState;
  /** The next KV operation, or undefined when state.phase is done or failed. */
  readonly op?: KvOp;
}

export interface StartAllocationInput {
  readonly labels: string;
  readonly range: IdentityRange;
  readonly node?: string;
  readonly now: number;
  /**
   * Give up (ALLOCATION_TIMEOUT) rather than issue an operation after this long. Must be well
   * below the GC grace period: that gap is what keeps a slow allocator from binding a number
   * the GC has decided to free.
   */
  readonly deadlineMs?: number;
  /** Give up (ALLOCATION_CONFLICT) after this many KV operations. */
  readonly maxSteps?: number;
  /** The store executes `batch` operations atomically: claim with one write (default false). */
  readonly atomic?: boolean;
}

export const DEFAULT_ALLOCATION_DEADLINE_MS = 10_000;
export const DEFAULT_ALLOCATION_MAX_STEPS = 64;

/**
 * Starts allocating a number for a label set. With a view that already holds a live binding,
 * the answer needs no KV round trip (apart from the node's reference, when a node is given).
 */
export function startAllocation(input: StartAllocationInput, view: AllocationView): AllocationStep {
  checkLabelSetKey(input.labels, 'labels');
  checkRange(input.range);
  if (input.node !== undefined) nodeKeyToken(input.node);
  const state: AllocationState = {
    v: 1,
    labels: input.labels,
    hash: labelSetHash(input.labels),
    range: { min: input.range.min, max: input.range.max },
    ...(input.node === undefined ? {} : { node: input.node }),
    deadlineAt: input.now + (input.deadlineMs ?? DEFAULT_ALLOCATION_DEADLINE_MS),
    atomic: input.atomic === true,
    maxSteps: input.maxSteps ?? DEFAULT_ALLOCATION_MAX_STEPS,
    steps: 0,
    phase: 'read-binding',
    probe: 0,
    skip: [],
    conflicts: 0,
  };
  const known = view.binding(state.hash);
  if (known !== undefined && known.labels === state.labels && known.releasing !== true) {
    return finish(state, { id: known.id, outcome: 'existing', conflicts: 0 }, input.now);
  }
  return issue(state, { op: 'get', key: bindingKey(state.hash) }, 'read-binding', input.now);
}

/** Feeds the result of the last operation; returns the next one. */
export function stepAllocation(
  state: AllocationState,
  result: KvResult,
  view: AllocationView,
  now: number,
): AllocationStep {
  try {
    return advance(state, result, view, now);
  } catch (err) {
    if (err instanceof IdentityError) return fail(state, err);
    throw err;
  }
}

function advance(
  s: AllocationState,
  r: KvResult,
  view: AllocationView,
  now: number,
): AllocationStep {
  switch (s.phase) {
    case 'read-binding': {
      if (r.kind === 'missing') {
        return s.claimed === undefined
          ? claimNext(s, view, now)
          : issue(s, createBinding(s, s.claimed), 'create-binding', now);
      }
      if (r.kind !== 'value') return unexpected(s, r);
      const b = decodeBindingRecord(r.value, bindingKey(s.hash));
      if (b.labels !== s.labels) return fail(s, collisionError(s.hash));
      if (b.id === s.claimed) {
        return finish(
          s,
          { id: b.id, outcome: s.claimOutcome ?? 'created', conflicts: s.conflicts },
          now,
        );
      }
      if (b.releasing === true) {
        return issue(
          { ...s, candidate: b.id },
          {
            op: 'update',
            key: bindingKey(s.hash),
            value: encodeRecord(bindingRecord(b.id, s.labels)),
            revision: r.revision,
          },
          'revive',
          now,
        );
      }
      return finish(
        s,
        withOrphan(s, { id: b.id, outcome: 'existing', conflicts: s.conflicts }),
        now,
      );
    }
    case 'claim-atomic': {
      const n = s.candidate!;
      if (r.kind === 'written') {
        // The binding names the node as holder: answered without a further write.
        return {
          state: {
            ...s,
            claimed: n,
            phase: 'done',
            result: { id: n, outcome: 'created', conflicts: s.conflicts },
          },
        };
      }
      if (r.kind === 'conflict') {
        // The number or the binding exists; which one, the binding says. From here on the
        // sequential steps run, which tell the two apart.
        return issue(
          { ...s, atomic: false, conflicts: s.conflicts + 1 },
          { op: 'get', key: bindingKey(s.hash) },
          'read-binding',
          now,
        );
      }
      if (r.kind === 'refused') {
        return issue({ ...s, atomic: false }, createIdentity(s, n), 'create-id', now);
      }
      return unexpected(s, r);
    }
    case 'create-id': {
      const n = s.candidate!;
      if (r.kind === 'written') {
        return issue(
          { ...s, claimed: n, claimOutcome: 'created' },
          createBinding(s, n),
          'create-binding',
          now,
        );
      }
      if (r.kind === 'conflict') {
        return issue(
          { ...s, conflicts: s.conflicts + 1 },
          { op: 'get', key: identityKey(n) },
          'read-id',
          now,
        );
      }
      return unexpected(s, r);
    }
    case 'read-id': {
      const n = s.candidate!;
      if (r.kind === 'missing') {
        return issue(s, createIdentity(s, n), 'create-id', now);
      }
      if (r.kind !== 'value') return unexpected(s, r);
      const rec = decodeIdentityRecord(r.value, identityKey(n));
      if (rec.labels === s.labels) {
        // Another allocator of the same set reserved this number: adopt it, rewriting it
        // (without any GC mark) so that a GC delete decided on an older revision fails.
        return issue(
          s,
          {
            op: 'update',
            key: identityKey(n),
            value: encodeRecord(identityRecord(n, s.labels)),
            revision: r.revision,
          },
          'touch-id',
          now,
        );
      }
      return claimNext({ ...s, skip: [...s.skip, n] }, view, now);
    }
    case 'touch-id': {
      const n = s.candidate!;
      if (r.kind === 'written') {
        return issue(
          { ...s, claimed: n, claimOutcome: 'converged' },
          createBinding(s, n),
          'create-binding',
          now,
        );
      }
      if (r.kind === 'conflict')
        return issue(s, { op: 'get', key: identityKey(n) }, 'read-id', now);
      return unexpected(s, r);
    }
    case 'create-binding': {
      if (r.kind === 'written') {
        // The binding names the asking node as its holder: that is the node's reference.
        const result: AllocationResult = {
          id: s.claimed!,
          outcome: s.claimOutcome ?? 'created',
          conflicts: s.conflicts,
        };
        return { state: { ...s, phase: 'done', result } };
      }
      if (r.kind === 'conflict') {
        return issue(
          { ...s, conflicts: s.conflicts + 1 },
          { op: 'get', key: bindingKey(s.hash) },
          'read-binding',
          now,
        );
      }
      return unexpected(s, r);
    }
    case 'revive': {
      if (r.kind === 'written') {
        return finish(
          s,
          withOrphan(s, { id: s.candidate!, outcome: 'revived', conflicts: s.conflicts }),
          now,
        );
      }
      if (r.kind === 'conflict') {
        return issue(s, { op: 'get', key: bindingKey(s.hash) }, 'read-binding', now);
      }
      return unexpected(s, r);
    }
    case 'reference': {
      if (r.kind === 'written') return { state: { ...s, phase: 'done' } };
      return unexpected(s, r);
    }
    case 'done':
    case 'failed':
      return { state: s };
  }
}

function withOrphan(s: AllocationState, r: AllocationResult): AllocationResult {
  return s.claimed !== undefined && s.claimed !== r.id ? { ...r, orphan: s.claimed } : r;
}

function createIdentity(s: AllocationState, n: number): KvOp {
  return { op: 'create', key: identityKey(n), value: encodeRecord(identityRecord(n, s.labels)) };
}

function createBinding(s: AllocationState, n: number): BatchWrite {
  return {
    op: 'create',
    key: bindingKey(s.hash),
    value: encodeRecord(bindingRecord(n, s.labels, false, s.node)),
  };
}

function claimNext(s: AllocationState, view: AllocationView, now: number): AllocationStep {
  // The labels and range were checked when the allocation started.
  const next = plan(
    {
      labels: s.labels,
      range: s.range,
      view,
      skip: new Set(s.skip),
      fromProbe: s.probe,
      ignoreBinding: true,
    },
    s.hash,
  );
  if (next.kind === 'exhausted' || next.kind === 'collision') return fail(s, next.error);
  if (next.kind === 'existing') return unexpected(s, { kind: 'missing' });
  if (s.atomic) {
    const writes: BatchWrite[] = [next.writes[0], createBinding(s, next.id)];
    return issue(
      { ...s, candidate: next.id, probe: next.probe + 1 },
      { op: 'batch', writes },
      'claim-atomic',
      now,
    );
  }
  return issue(
    { ...s, candidate: next.id, probe: next.probe + 1 },
    next.writes[0],
    'create-id',
    now,
  );
}

function issue(s: AllocationState, op: KvOp, phase: AllocationPhase, now: number): AllocationStep {
  if (now > s.deadlineAt) {
    return fail(
      s,
      new IdentityError(
        'ALLOCATION_TIMEOUT',
        `allocation of ${s.labels} passed its deadline in phase ${s.phase}; the answer could be stale, so none is given`,
      ),
    );
  }
  if (s.steps >= s.maxSteps) {
    return fail(
      s,
      new IdentityError(
        'ALLOCATION_CONFLICT',
        `allocation of ${s.labels} met ${s.conflicts} conflicts in ${s.steps} operations and gave up; retry`,
      ),
    );
  }
  return { state: { ...s, phase, steps: s.steps + 1 }, op };
}

function finish(s: AllocationState, result: AllocationResult, now: number): AllocationStep {
  const done = { ...s, result };
  if (s.node === undefined) return { state: { ...done, phase: 'done' } };
  return issue(
    done,
    {
      op: 'put',
      key: referenceKey(result.id, s.node),
      value: encodeRecord(referenceRecord(result.id, s.node)),
    },
    'reference',
    now,
  );
}

function fail(s: AllocationState, err: IdentityError): AllocationStep {
  const { result, ...rest } = s;
  void result; // a failed allocation has no answer, even if one was found before the failure
  return { state: { ...rest, phase: 'failed', error: { code: err.code, message: err.message } } };
}

function unexpected(s: AllocationState, r: KvResult): AllocationStep {
  return fail(
    s,
    new IdentityError(
      'INVALID_ARGUMENT',
      `allocation in phase ${s.phase} cannot use a KV result of kind ${r.kind}`,
    ),
  );
}

/**
 * Fails an allocation whose next operation would be sent after its deadline. The service calls
 * this right before sending each operation (a machine checks the deadline when it issues the
 * operation, but a busy process may send it later).
 */
export function enforceDeadline(step: AllocationStep, now: number): AllocationStep {
  if (step.op === undefined || now <= step.state.deadlineAt) return step;
  return fail(
    step.state,
    new IdentityError(
      'ALLOCATION_TIMEOUT',
      `allocation of ${step.state.labels} passed its deadline before phase ${step.state.phase} was sent`,
    ),
  );
}

/** The error of a failed allocation as a typed error. */
export function allocationError(state: AllocationState): IdentityError | undefined {
  if (state.error === undefined) return undefined;
  return new IdentityError(state.error.code as IdentityError['code'], state.error.message);
}
