// The one reconcile loop every controller runs: triggers are coalesced into passes (a burst of
// changes costs one pass, a change during a pass costs one more after it), a failed pass is
// retried after a jittered exponential backoff, a periodic resync runs a pass even when nothing
// was signalled, and a lease holder's loop stops the moment a pass reports it fenced. Passes are
// counted by result, drift (changes a pass had to make) is counted, and every failure is logged
// with a stable event name.
import type { Logger } from '../log.js';
import { Counter, Histogram, type Registry } from 'prom-client';
import { FencedError } from './errors.js';

/** What a pass may report: how many changes it had to make to reach the desired state. */
export interface PassOutcome {
  changes?: number;
}

export interface ReconcilerOptions {
  /** Names the loop in logs (`event: <name>.…`) and metrics (`controller` label). */
  name: string;
  /** One pass: read desired and actual, write the difference. Throw to retry later. */
  reconcile: () => Promise<PassOutcome | void> | PassOutcome | void;
  log: Logger;
  metrics?: ReconcilerMetrics;
  /** Wait after the first trigger before a pass, so a burst of changes makes one pass. */
  coalesceMs?: number;
  /** Retry after a failed pass: base doubling per failure up to max, with ±20% jitter. */
  backoff?: { baseMs: number; maxMs: number };
  /** A pass at least this often, signalled or not (0: never). */
  resyncMs?: number;
  /** The pass threw FencedError: the loop has stopped itself. */
  onFenced?: (err: FencedError) => void;
  /** A source of randomness for the jitter (tests). */
  random?: () => number;
}

export interface ReconcilerMetrics {
  passes: Counter<'controller' | 'result'>;
  drift: Counter<'controller'>;
  passSeconds: Histogram<'controller'>;
}

/** The reconcile metrics of one registry (RuntimeMetrics.controllers), shared by its loops. */
export function createReconcilerMetrics(registry: Registry): ReconcilerMetrics {
  return {
    passes: new Counter({
      name: 'ciliate_controller_passes_total',
      help: 'Reconcile passes, by controller and result (ok, failed, fenced)',
      labelNames: ['controller', 'result'],
      registers: [registry],
    }),
    drift: new Counter({
      name: 'ciliate_controller_drift_changes_total',
      help: 'Changes reconcile passes had to make because actual state differed from desired',
      labelNames: ['controller'],
      registers: [registry],
    }),
    passSeconds: new Histogram({
      name: 'ciliate_controller_pass_duration_seconds',
      help: 'Time one reconcile pass took',
      labelNames: ['controller'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
  };
}

const DEFAULT_BACKOFF = { baseMs: 200, maxMs: 30_000 };

/**
 * The wait before retry number `failures` (1 after the first failure): base doubling per
 * failure up to max, times a jitter factor in [0.8, 1.2) so replicas that failed together do not
 * retry together.
 */
export function backoffDelay(
  failures: number,
  backoff: { baseMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const ms = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
  return Math.round(ms * (0.8 + 0.4 * random()));
}

export class Reconciler {
  readonly #o: ReconcilerOptions;
  #active = false;
  #timer: NodeJS.Timeout | undefined;
  /** The armed timer is a retry's backoff (idle() does not wait for it). */
  #backingOff = false;
  /** Resolves when the armed timer fires and its pass has begun. */
  #fired: Promise<void> | undefined;
  #fire: (() => void) | undefined;
  #resync: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #failures = 0;
  #passes = 0;
  /** Counts start()s: a pass fenced under an earlier term does not stop a later one. */
  #term = 0;

  constructor(options: ReconcilerOptions) {
    this.#o = options;
  }

  /** Passes run while active; inactive, triggers are ignored (a replica that is not leading). */
  get active(): boolean {
    return this.#active;
  }

  /** Consecutive failed passes (0 after a success). */
  get failures(): number {
    return this.#failures;
  }

  /** Passes completed, successful or not. */
  get passes(): number {
    return this.#passes;
  }

  /** Starts the loop with a first pass; idempotent. */
  start(): void {
    if (this.#active) return;
    this.#active = true;
    this.#term++;
    this.#failures = 0;
    const every = this.#o.resyncMs ?? 0;
    if (every > 0) {
      this.#resync = setInterval(() => this.trigger(), every);
      this.#resync.unref();
    }
    this.trigger(0);
  }

  /** Stops triggering passes; a pass in progress finishes (await idle() for it). */
  stop(): void {
    this.#active = false;
    this.#again = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#fire?.();
    clearInterval(this.#resync);
    this.#resync = undefined;
  }

  /**
   * Asks for a pass. One already scheduled is not pushed back (a steady stream of triggers would
   * starve it); one running is followed by exactly one more.
   */
  trigger(delayMs = this.#o.coalesceMs ?? 20): void {
    if (!this.#active) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer !== undefined) return;
    this.#arm(delayMs);
  }

  /**
   * Resolves when no pass is running or scheduled, a retry's backoff aside (tests, and start-up
   * code that needs a first pass done).
   */
  async idle(): Promise<void> {
    for (;;) {
      if (this.#running) await this.#running;
      else if (this.#timer !== undefined && !this.#backingOff && this.#fired) await this.#fired;
      else return;
    }
  }

  /** Stops and waits for a pass in progress. */
  async close(): Promise<void> {
    this.stop();
    await this.idle();
  }

  #arm(delayMs: number, backoff = false): void {
    this.#backingOff = backoff;
    this.#fired = new Promise((resolve) => (this.#fire = resolve));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#pass().finally(() => {
        this.#running = undefined;
        if (!this.#active) return;
        if (this.#failures > 0) {
          if (this.#timer === undefined) this.#arm(this.#backoffMs(), true);
        } else if (this.#again) {
          this.#again = false;
          this.trigger(0);
        }
      });
      this.#fire?.();
    }, delayMs);
  }

  #backoffMs(): number {
    return backoffDelay(this.#failures, this.#o.backoff ?? DEFAULT_BACKOFF, this.#o.random);
  }

  async #pass(): Promise<void> {
    const { name, metrics, log } = this.#o;
    const term = this.#term;
    this.#again = false;
    const end = metrics?.passSeconds.startTimer({ controller: name });
    try {
      const outcome = await this.#o.reconcile();
      this.#failures = 0;
      metrics?.passes.inc({ controller: name, result: 'ok' });
      const changes = outcome?.changes ?? 0;
      if (changes > 0) metrics?.drift.inc({ controller: name }, changes);
    } catch (err) {
      if (err instanceof FencedError) {
        metrics?.passes.inc({ controller: name, result: 'fenced' });
        if (term !== this.#term || !this.#active) return; // stopped or started again since
        log.warn(
          { event: `${name}.fenced`, err },
          `${name}: a newer lease holder exists; stopping`,
        );
        this.stop();
        this.#o.onFenced?.(err);
        return;
      }
      this.#failures++;
      metrics?.passes.inc({ controller: name, result: 'failed' });
      log.warn(
        { event: `${name}.pass_failed`, err, failures: this.#failures },
        `${name}: pass failed; retrying`,
      );
    } finally {
      this.#passes++;
      end?.();
    }
  }
}
