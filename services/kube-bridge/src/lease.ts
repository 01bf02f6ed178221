// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: a holder renews the
// lease every retry period; others take it over only after they have seen the same record, unchanged,
// for a whole lease duration (measured on their own clock, so clocks need not agree); every
// write is compare-and-set on the resourceVersion; a leader that cannot renew within the renew
// deadline (shorter than the lease duration) stops acting as leader before anyone else may start.
import type { Logger } from '@ciliate/runtime';

import { KubeApiError, type KubeClient } from './kube/client.js';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

export type LeaseDecision = 'acquire' | 'renew' | 'held';

/**
 * What a candidate may do with the record it read. `observedAtMs` is when this candidate first saw
 * the record in its current form (holder and renew time), on its own clock.
 */
export function leaseDecision(input: {
  spec: LeaseSpec | undefined;
  observedAtMs: number;
  nowMs: number;
  me: string;
  durationMs: number;
}): LeaseDecision {
  const holder = input.spec?.holderIdentity ?? '';
  if (holder === input.me) return 'renew';
  if (holder === '') return 'acquire';
  const seconds = input.spec?.leaseDurationSeconds;
  // The holder's own duration counts when it says one (it renews on that schedule).
  const duration = typeof seconds === 'number' && seconds > 0 ? seconds * 1000 : input.durationMs;
  return input.nowMs - input.observedAtMs >= duration ? 'acquire' : 'held';
}

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export interface KubeLeaseOptions {
  client: Pick<KubeClient, 'request'>;
  namespace: string;
  name: string;
  identity: string;
  durationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  log: Logger;
  onStarted: () => void;
  onStopped: (reason: string) => void;
  now?: () => number;
}

interface LeaseObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

export class KubeLeaderElector {
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private observed: { key: string; atMs: number } | undefined;
  private lastRenewMs = 0;
  private running: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(private readonly o: KubeLeaseOptions) {
    if (o.renewDeadlineMs >= o.durationMs) {
      throw new Error('the lease renew deadline must be shorter than the lease duration');
    }
    this.now = o.now ?? (() => performance.timeOrigin + performance.now());
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases`;
  }

  start(): void {
    this.schedule(0);
    // A renewal stuck in a slow request must not keep a leader leading past its deadline: the
    // deadline is checked on its own clock, not when the request finally returns.
    this.watchdog = setInterval(() => this.checkDeadline(), Math.max(50, this.o.retryPeriodMs / 2));
  }

  private checkDeadline(): void {
    if (this.leading && this.now() - this.lastRenewMs >= this.o.renewDeadlineMs) {
      this.leading = false;
      this.o.log.warn(
        { event: 'lease.lost' },
        'could not renew the lease in time: no longer leader',
      );
      this.o.onStopped('renew deadline passed');
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = undefined;
        this.schedule(this.o.retryPeriodMs);
      });
    }, ms);
  }

  private async tick(): Promise<void> {
    // The renewal counts from when it was sent: the record says so, and others time it from then
    // or later.
    const started = this.now();
    let ok = false;
    try {
      ok = await this.tryAcquireOrRenew();
    } catch (err) {
      this.o.log.warn(
        { event: 'lease.error', err: err instanceof Error ? err.message : String(err) },
        'lease request failed',
      );
    }
    if (this.stopped) return;
    if (ok && this.now() - started < this.o.renewDeadlineMs) {
      this.lastRenewMs = started;
      if (!this.leading) {
        this.leading = true;
        this.o.log.info(
          {
            event: 'lease.acquired',
            lease: `${this.o.namespace}/${this.o.name}`,
            identity: this.o.identity,
          },
          'became leader',
        );
        this.o.onStarted();
      }
    } else {
      this.checkDeadline();
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.now();
    let current: LeaseObject | undefined;
    try {
      current = await this.o.client.request<LeaseObject>('GET', `${this.path}/${this.o.name}`);
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 404)) throw err;
    }
    const spec: LeaseSpec = {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(this.o.durationMs / 1000)),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    if (!current) {
      try {
        await this.o.client.request('POST', this.path, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec,
        });
        return true;
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 409) return false;
        throw err;
      }
    }
    const old = current.spec ?? {};
    const key = `${old.holderIdentity ?? ''}|${old.renewTime ?? ''}|${current.metadata.resourceVersion ?? ''}`;
    if (this.observed?.key !== key) this.observed = { key, atMs: now };
    const decision = leaseDecision({
      spec: old,
      observedAtMs: this.observed.atMs,
      nowMs: now,
      me: this.o.identity,
      durationMs: this.o.durationMs,
    });
    if (decision === 'held') return false;
    if (decision === 'renew') {
      spec.acquireTime = old.acquireTime ?? spec.acquireTime;
      spec.leaseTransitions = old.leaseTransitions ?? 0;
    } else {
      spec.leaseTransitions = (old.leaseTransitions ?? 0) + 1;
    }
    try {
      await this.o.client.request('PUT', `${this.path}/${this.o.name}`, {
        ...current,
        spec,
      });
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) return false;
      throw err;
    }
  }

  /** Stops contending; a leader gives the lease up so that a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.watchdog);
    await this.running;
    if (!this.leading) return;
    this.leading = false;
    this.o.onStopped('stopping');
    try {
      const current = await this.o.client.request<LeaseObject>(
        'GET',
        `${this.path}/${this.o.name}`,
      );
      if (current.spec?.holderIdentity !== this.o.identity) return;
      await this.o.client.request('PUT', `${this.path}/${this.o.name}`, {
        ...current,
        spec: {
          ...current.spec,
          holderIdentity: null,
          leaseDurationSeconds: 1,
          renewTime: microTime(this.now()),
        },
      });
      this.o.log.info({ event: 'lease.released' }, 'gave up the lease');
    } catch (err) {
      this.o.log.warn(
        { event: 'lease.release_failed', err: err instanceof Error ? err.message : String(err) },
        'could not release the lease; a standby takes over when it expires',
      );
    }
  }
}
