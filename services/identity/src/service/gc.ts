// Garbage collection by lease, run by the one replica that holds the `identity-gc` lease. Each
// pass decides with the core's collectGarbage() over this replica's mirror and frees with the
// core's release machine, whose compare-and-set protocol lets any allocator that touches the
// identity meanwhile win. Nothing is decided before the mirror's initial sync.
import {
  collectGarbage,
  startRelease,
  stepRelease,
  type ReleaseStep,
  leaseKey,
  parseKey,
  referenceKey,
} from '@ciliate/identity-core';
import { FencedError, Reconciler, type Logger, type ReconcilerMetrics } from '@ciliate/runtime';

import { clearHolder } from './holder.js';
import type { KvExecutor } from './kv.js';
import type { IdentityMetrics } from './metrics.js';
import type { IdentityMirror } from './mirror.js';

export interface GcOptions {
  readonly executor: KvExecutor;
  readonly mirror: IdentityMirror;
  readonly graceMs: number;
  /** How long a mark is held before deleting; must exceed allocation deadline + KV timeout. */
  readonly holdMs: number;
  readonly intervalMs: number;
  readonly synced: () => boolean;
  readonly log: Logger;
  readonly metrics?: IdentityMetrics;
  readonly controllers?: ReconcilerMetrics;
  readonly clock?: () => number;
  /** Releases run at once at most. */
  readonly concurrency?: number;
  /**
   * How often the `id.*` keys are listed to find reservations (numbers nobody bound: an
   * allocator died between its two writes, or lost a race), which the mirror does not watch.
   * Default: a quarter of the grace period, within [intervalMs, 60s].
   */
  readonly reservationScanMs?: number;
}

export class GarbageCollector {
  readonly #o: GcOptions;
  readonly #clock: () => number;
  #token: number | undefined;
  readonly #loop: Reconciler;
  /** Idle times the core recorded on earlier passes. */
  #idle: Record<string, number> = {};
  readonly #releasing = new Set<number>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #sleepers = new Set<() => void>();
  #stopped = false;
  /** Reservations found by the last scan of the `id.*` keys. */
  #reservations: number[] = [];
  #lastScan = -Infinity;
  passes = 0;

  constructor(options: GcOptions) {
    this.#o = options;
    this.#clock = options.clock ?? Date.now;
    this.#loop = new Reconciler({
      name: 'gc',
      log: options.log,
      ...(options.controllers ? { metrics: options.controllers } : {}),
      coalesceMs: 0,
      resyncMs: options.intervalMs,
      backoff: { baseMs: options.intervalMs, maxMs: 4 * options.intervalMs },
      reconcile: () =>
        this.pass().catch((err: unknown) => {
          if (!(err instanceof FencedError)) this.#o.metrics?.gcRuns.inc({ result: 'failed' });
          throw err;
        }),
    });
  }

  /** Reservations (unbound numbers) the last scan found; 0 before the first. */
  get reservations(): number {
    return this.#reservations.length;
  }

  get #scanEveryMs(): number {
    return (
      this.#o.reservationScanMs ??
      Math.min(60_000, Math.max(this.#o.intervalMs, this.#o.graceMs / 4))
    );
  }

  /** The numbers `id.*` holds that no binding in the mirror names. */
  async #scanReservations(now: number): Promise<void> {
    const r = await this.#o.executor.execute({ op: 'keys', filter: 'id.>' });
    if (r.kind !== 'keys') return;
    const found: number[] = [];
    for (const key of r.keys) {
      const parsed = parseKey(key);
      if (parsed?.kind === 'identity' && this.#o.mirror.table.identity(parsed.id) === undefined) {
        found.push(parsed.id);
      }
    }
    this.#reservations = found;
    this.#lastScan = now;
  }

  get leader(): boolean {
    return this.#token !== undefined;
  }

  /** Called with the fencing token when this replica acquires the lease. */
  acquired(token: number): void {
    if (this.#stopped) return;
    this.#token = token;
    // Idle times recorded under an earlier term may be stale; start from the mirror's.
    this.#idle = {};
    this.#loop.start();
  }

  lost(): void {
    this.#token = undefined;
    this.#loop.stop();
    // Releases holding their mark wake up and find themselves fenced.
    for (const wake of [...this.#sleepers]) wake();
  }

  #sleepUntil(until: number): Promise<void> {
    const ms = until - this.#clock();
    if (ms <= 0 || this.#token === undefined) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.#sleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#sleepers.add(done);
    });
  }

  #check(token: number): void {
    if (this.#token !== token) throw new FencedError('identity GC', token);
  }

  /** One pass: drop expired nodes' references and start releases of idle identities. */
  async pass(): Promise<void> {
    const token = this.#token;
    if (token === undefined) return;
    if (!this.#o.synced()) {
      this.#o.metrics?.gcRuns.inc({ result: 'skipped-unsynced' });
      return;
    }
    const now = this.#clock();
    if (now - this.#lastScan >= this.#scanEveryMs) await this.#scanReservations(now);
    this.#check(token);
    const input = this.#o.mirror.referenceState();
    const identities = [...input.identities];
    for (const id of this.#reservations) {
      if (this.#o.mirror.table.identity(id) === undefined) identities.push(id);
    }
    const res = collectGarbage(
      { ...input, identities, idleSince: { ...this.#idle, ...input.idleSince } },
      now,
      this.#o.graceMs,
      true,
    );
    this.#idle = res.state.idleSince;
    this.passes++;
    this.#o.metrics?.gcRuns.inc({ result: 'ok' });
    for (const node of res.expiredNodes) {
      this.#check(token);
      await this.#dropNode(node, now);
    }
    for (const id of res.free) {
      if (this.#releasing.has(id)) continue;
      if (this.#releasing.size >= (this.#o.concurrency ?? 256)) break;
      this.#releasing.add(id);
      const task = this.#release(id, token).finally(() => {
        this.#releasing.delete(id);
        this.#tasks.delete(task);
      });
      this.#tasks.add(task);
    }
  }

  /**
   * A node whose lease expired: its lease key goes first, compare-and-set on the revision seen
   * expired (a renewal meanwhile wins and keeps everything); then each reference, each at the
   * revision seen before, so one the node wrote again after renewing is kept.
   */
  async #dropNode(node: string, now: number): Promise<void> {
    const lease = this.#o.mirror.lease(node);
    if (lease !== undefined) {
      if (lease.expiresAt > now) return;
      const r = await this.#o.executor.execute({
        op: 'delete',
        key: leaseKey(node),
        revision: lease.revision,
      });
      if (r.kind === 'conflict') return;
    }
    const refs = this.#o.mirror.referencesOf(node);
    for (const [id, revision] of refs) {
      await this.#o.executor.execute({ op: 'delete', key: referenceKey(id, node), revision });
    }
    const held = this.#o.mirror.heldBindingsOf(node);
    for (const [id] of held) {
      const rec = this.#o.mirror.table.identity(id);
      if (rec !== undefined) await clearHolder(this.#o.executor, id, rec.labels, node);
    }
    this.#o.metrics?.expiredNodes.inc();
    this.#o.log.info(
      { event: 'gc.node_expired', node, references: refs.length + held.length },
      'node lease expired; its references are dropped',
    );
  }

  async #release(id: number, token: number): Promise<void> {
    let step: ReleaseStep = startRelease({ id, holdMs: this.#o.holdMs });
    try {
      while (step.op !== undefined) {
        this.#check(token);
        if (step.op.op === 'wait') {
          await this.#sleepUntil(step.op.until);
          this.#check(token);
        }
        const result = await this.#o.executor.execute(step.op);
        step = stepRelease(step.state, result, this.#clock());
      }
    } catch (err) {
      const fenced = err instanceof FencedError;
      this.#o.metrics?.releases.inc({ result: fenced ? 'fenced' : 'failed' });
      if (!fenced) {
        this.#o.log.warn({ event: 'gc.release_failed', id, err }, 'release failed; retried later');
      }
      return;
    }
    const { state } = step;
    const result = state.phase === 'failed' ? 'failed' : (state.result ?? 'failed');
    this.#o.metrics?.releases.inc({ result });
    if (result === 'freed') {
      this.#o.metrics?.frees.inc();
      this.#o.log.info({ event: 'gc.freed', id, labels: state.labels }, 'identity freed');
    } else if (state.phase === 'failed') {
      this.#o.log.warn(
        { event: 'gc.release_failed', id, error: state.error },
        'release failed; retried later',
      );
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.lost();
    await this.#loop.idle();
    await Promise.allSettled([...this.#tasks]);
  }
}
