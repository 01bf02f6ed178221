// One JSON document under one KV key, changed only by compare-and-set on the revision it was
// read at, with an in-memory copy so that a write costs no read while this process is the last
// writer. Concurrent changes to the same key inside one process are group-committed: while one
// write is in flight, the next operations queue and go out together in one write, so a busy node
// costs one KV round trip per batch instead of one per allocation. On a CAS conflict (another
// replica wrote) the document is re-read and the whole batch is recomputed on the fresh state,
// so no operation ever acts on state another writer has replaced.
import { CiliateError } from '@ciliate/contracts';
import type { KV } from '@nats-io/kv';

import { isCasConflict } from './errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What an operation returns: the next state (undefined: delete the key) and its result. */
export interface DocStep<S, R> {
  next: S | undefined;
  result: R;
}

export type DocOp<S, R> = (current: S | undefined) => DocStep<S, R>;

interface Pending<S> {
  op: DocOp<S, unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export interface KvDocumentOptions<S> {
  kv: KV;
  key: string;
  /** Validates a stored value (throws on a broken document). */
  decode: (value: unknown) => S;
  /** Names the document in errors (default: the key). */
  what?: string;
  /**
   * Errors of the caller's domain (a decode failure that is already a typed error) that reach
   * callers as they are; any other read or write failure becomes `unavailable`.
   */
  passThrough?: (err: unknown) => boolean;
  /** Attempts on CAS conflicts before giving up with `conflict`. */
  maxAttempts?: number;
  onConflict?: () => void;
}

export class KvDocument<S> {
  private cached: { state: S | undefined; revision: number } | undefined;
  private queue: Pending<S>[] = [];
  private running = false;

  constructor(private readonly opts: KvDocumentOptions<S>) {}

  get key(): string {
    return this.opts.key;
  }

  /** The last state this process read or wrote (may be stale if another replica wrote since). */
  get last(): { state: S | undefined; revision: number } | undefined {
    return this.cached;
  }

  /** Forgets the in-memory copy: the next operation reads the key first. */
  invalidate(): void {
    this.cached = undefined;
  }

  /** Reads the stored state now (and refreshes the copy). */
  async read(): Promise<{ state: S | undefined; revision: number }> {
    const e = await this.opts.kv.get(this.opts.key);
    let state: S | undefined;
    if (e && e.operation === 'PUT' && e.value.length > 0) {
      state = this.opts.decode(JSON.parse(decoder.decode(e.value)) as unknown);
    }
    const fresh = { state, revision: e?.revision ?? 0 };
    // Only move forward: a concurrent write of ours may already be newer.
    if (this.cached === undefined || this.cached.revision <= fresh.revision) this.cached = fresh;
    return fresh;
  }

  /** Runs `op` on the current state and stores the result with compare-and-set. */
  apply<R>(op: DocOp<S, R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ op, resolve: resolve as (v: unknown) => void, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        await this.commit(batch);
      }
    } finally {
      this.running = false;
    }
  }

  private async commit(batch: Pending<S>[]): Promise<void> {
    const max = this.opts.maxAttempts ?? 50;
    for (let attempt = 0; attempt < max; attempt++) {
      let base: { state: S | undefined; revision: number };
      const fromCache = this.cached !== undefined;
      try {
        base = this.cached ?? (await this.read());
      } catch (err) {
        this.fail(batch, err);
        return;
      }
      let state = base.state;
      const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
      for (const p of batch) {
        try {
          const step = p.op(state);
          state = step.next;
          outcomes.push({ ok: true, value: step.result });
        } catch (error) {
          outcomes.push({ ok: false, error });
        }
      }
      try {
        if (state === base.state && state === undefined) {
          // Nothing stored and nothing to store: answer from a fresh read, never from the copy.
          if (fromCache) {
            this.cached = undefined;
            continue;
          }
          this.settle(batch, outcomes);
          return;
        }
        if (state === undefined) {
          await this.opts.kv.delete(this.opts.key, { previousSeq: base.revision });
          // A delete's own revision is not returned: read it back on the next use.
          this.cached = undefined;
        } else {
          // Also when nothing changed: an answer computed from the copy (a retried allocate
          // finding its address, a release finding nothing) is only true if the copy is still
          // current, and the compare-and-set of the same bytes is what proves it.
          const data = encoder.encode(JSON.stringify(state));
          const revision =
            base.revision === 0
              ? await this.opts.kv.create(this.opts.key, data)
              : await this.opts.kv.update(this.opts.key, data, base.revision);
          this.cached = { state, revision };
        }
        this.settle(batch, outcomes);
        return;
      } catch (err) {
        if (!isCasConflict(err)) {
          // The write may or may not have landed: forget the copy, fail the batch. Callers retry;
          // every operation is idempotent for its owner, so a retry finds what landed.
          this.cached = undefined;
          this.fail(batch, err);
          return;
        }
        this.opts.onConflict?.();
        this.cached = undefined;
        if (attempt > 2) await new Promise((r) => setTimeout(r, Math.random() * 2 * attempt));
      }
    }
    this.fail(
      batch,
      new CiliateError('conflict', `${this.opts.key}: too many concurrent writers, try again`),
    );
  }

  private settle(
    batch: Pending<S>[],
    outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }>,
  ): void {
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.ok) p.resolve(o.value);
      else p.reject(o.error);
    });
  }

  private fail(batch: Pending<S>[], err: unknown): void {
    const e =
      err instanceof CiliateError || this.opts.passThrough?.(err) === true
        ? err
        : new CiliateError(
            'unavailable',
            `${this.opts.what ?? this.opts.key} could not be read or written: ${err instanceof Error ? err.message : String(err)}`,
            { cause: err },
          );
    for (const p of batch) p.reject(e);
  }
}
