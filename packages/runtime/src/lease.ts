// A lease on JetStream KV for singleton work, with a fencing token.
//
// The lease is one KV key. Its holder rewrites it every ttl/3 with compare-and-set on the last
// revision it wrote. The holder gives up by itself once ttl - m (m = ttl/5) has passed since it
// *sent* its last successful renewal. A contender takes the lease over (again with
// compare-and-set) once it has seen the key unchanged for ttl - m/2, measured on its own clock
// from the moment it saw the last revision, which is after the holder sent it: so a contender
// acts at least m/2 after the holder stopped, and no clocks are compared across machines. A dead
// holder is replaced within the lease time of its death.
//
// The fencing token is the KV revision of the write that acquired the lease: every acquisition
// is a distinct write to the stream, so tokens are unique and grow with each new holder.
// Whoever acts on the holder's behalf (a store, a device) should refuse a token lower than the
// highest it has seen; that covers a holder paused past its deadline (GC, a stalled event loop).
import { LeaseRecordSchema, leaseKey, type LeaseRecord } from '@ciliate/contracts';
import type { KV, KvEntry } from '@nats-io/kv';

import { isCasConflict } from './controller/errors.js';
import type { Logger } from './log.js';

export interface LeaseOptions {
  kv: KV;
  name: string;
  holder: string;
  ttlMs: number;
  log: Logger;
  onAcquired?: (token: number) => void;
  onLost?: (reason: string) => void;
}

export type LeaseState = { held: false } | { held: true; token: number };

const encoder = new TextEncoder();

function decodeRecord(e: KvEntry): LeaseRecord | undefined {
  if (e.operation !== 'PUT') return undefined;
  try {
    const parsed = LeaseRecordSchema.safeParse(e.json());
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export class Lease {
  private readonly key: string;
  private readonly renewEveryMs: number;
  private readonly marginMs: number;
  /** How long a contender waits, after seeing the last change, before taking over. */
  private readonly takeoverMs: number;
  private state: LeaseState = { held: false };
  private lastWrittenRevision = 0;
  private lastRenewSentAt = 0;
  private observedRevision = 0;
  private expiryTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private watcher: { stop(): void } | undefined;
  private watching: Promise<void> | undefined;
  private stopped = false;
  private busy = false;

  constructor(private readonly opts: LeaseOptions) {
    this.key = leaseKey(opts.name);
    if (opts.ttlMs < 300) throw new Error(`lease ttl ${opts.ttlMs}ms is below the 300ms minimum`);
    this.renewEveryMs = Math.floor(opts.ttlMs / 3);
    this.marginMs = Math.max(50, Math.floor(opts.ttlMs / 5));
    this.takeoverMs = opts.ttlMs - Math.floor(this.marginMs / 2);
  }

  get current(): LeaseState {
    return this.state;
  }

  /** Starts contending. Resolves once the first view of the key has been taken. */
  async start(): Promise<void> {
    const iter = await this.opts.kv.watch({ key: this.key });
    this.watcher = iter;
    let firstSeen: () => void = () => {};
    const first = new Promise<void>((r) => (firstSeen = r));
    // An empty key yields nothing, so also try at once.
    void this.tryAcquire(0).finally(() => firstSeen());
    this.watching = (async () => {
      for await (const e of iter) {
        this.onEntry(e);
        firstSeen();
      }
    })().catch((err: unknown) => {
      if (!this.stopped)
        this.opts.log.error(
          { event: 'lease.watch_failed', lease: this.key, err },
          'lease watch ended',
        );
    });
    await first;
  }

  private onEntry(e: KvEntry): void {
    if (this.stopped) return;
    this.observedRevision = e.revision;
    clearTimeout(this.expiryTimer);
    const record = decodeRecord(e);
    if (record === undefined) {
      // Released (deleted) or unreadable: free for the taking.
      if (!this.state.held) void this.tryAcquire(e.revision);
      return;
    }
    if (
      this.state.held &&
      e.revision > this.lastWrittenRevision &&
      record.holder !== this.opts.holder
    ) {
      this.lose(`taken over by ${record.holder}`);
    }
    if (!this.state.held) {
      const seen = e.revision;
      this.expiryTimer = setTimeout(() => void this.tryAcquire(seen), this.takeoverMs);
    }
  }

  private record(token: number, acquiredAt: string): Uint8Array {
    const now = new Date().toISOString();
    const rec: LeaseRecord = {
      holder: this.opts.holder,
      token,
      ttlMs: this.opts.ttlMs,
      acquiredAt,
      renewedAt: now,
    };
    return encoder.encode(JSON.stringify(rec));
  }

  /** Takes the lease if the key is still at `revision` (0: absent or deleted). */
  private async tryAcquire(revision: number): Promise<void> {
    if (this.stopped || this.state.held || this.busy) return;
    if (revision !== 0 && revision !== this.observedRevision) return; // something newer arrived
    this.busy = true;
    const sentAt = performance.now();
    const acquiredAt = new Date().toISOString();
    try {
      let rev: number;
      if (revision === 0) rev = await this.opts.kv.create(this.key, this.record(0, acquiredAt));
      else rev = await this.opts.kv.update(this.key, this.record(0, acquiredAt), revision);
      this.lastWrittenRevision = rev;
      this.lastRenewSentAt = sentAt;
      this.state = { held: true, token: rev };
      clearTimeout(this.expiryTimer);
      this.armDeadline();
      this.opts.log.info(
        { event: 'lease.acquired', lease: this.key, token: rev },
        'lease acquired',
      );
      this.opts.onAcquired?.(rev);
      // Record the token for readers right away.
      await this.renew();
      this.scheduleRenew();
    } catch (err) {
      if (!isCasConflict(err)) {
        this.opts.log.warn(
          { event: 'lease.acquire_failed', lease: this.key, err },
          'could not write the lease',
        );
      }
      // Someone else won, or NATS is away: the watch will tell us what happens next. Re-arm the
      // expiry so that a lost update does not leave us waiting forever.
      if (!this.state.held && !this.stopped) {
        const seen = this.observedRevision;
        clearTimeout(this.expiryTimer);
        this.expiryTimer = setTimeout(
          () => void this.tryAcquire(seen),
          revision === 0 && seen === 0 ? this.renewEveryMs : this.takeoverMs,
        );
      }
    } finally {
      this.busy = false;
    }
  }

  private scheduleRenew(): void {
    clearTimeout(this.renewTimer);
    if (!this.state.held || this.stopped) return;
    this.renewTimer = setTimeout(() => {
      void this.renew().finally(() => this.scheduleRenew());
    }, this.renewEveryMs);
  }

  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    const wait = this.lastRenewSentAt + this.opts.ttlMs - this.marginMs - performance.now();
    this.deadlineTimer = setTimeout(
      () => {
        if (this.state.held) this.lose('could not renew within the lease time');
      },
      Math.max(0, wait),
    );
  }

  private async renew(): Promise<void> {
    const st = this.state;
    if (!st.held || this.stopped) return;
    const sentAt = performance.now();
    try {
      const rev = await this.opts.kv.update(
        this.key,
        this.record(st.token, new Date().toISOString()),
        this.lastWrittenRevision,
      );
      if (!this.state.held || this.state.token !== st.token) return;
      this.lastWrittenRevision = rev;
      this.lastRenewSentAt = sentAt;
      this.armDeadline();
    } catch (err) {
      if (isCasConflict(err)) this.lose('the lease was changed by another writer');
      else
        this.opts.log.warn(
          { event: 'lease.renew_failed', lease: this.key, err },
          'lease renewal failed; will retry',
        );
    }
  }

  private lose(reason: string): void {
    if (!this.state.held) return;
    const token = this.state.token;
    this.state = { held: false };
    clearTimeout(this.renewTimer);
    clearTimeout(this.deadlineTimer);
    this.opts.log.warn({ event: 'lease.lost', lease: this.key, token, reason }, 'lease lost');
    this.opts.onLost?.(reason);
    if (!this.stopped) {
      const seen = this.observedRevision;
      clearTimeout(this.expiryTimer);
      this.expiryTimer = setTimeout(() => void this.tryAcquire(seen), this.takeoverMs);
    }
  }

  /** Stops contending; a holder releases the lease so that another takes it over at once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    const st = this.state;
    this.stopped = true;
    clearTimeout(this.expiryTimer);
    clearTimeout(this.renewTimer);
    clearTimeout(this.deadlineTimer);
    if (st.held) {
      this.state = { held: false };
      this.opts.onLost?.('stopped');
      try {
        await this.opts.kv.delete(this.key, { previousSeq: this.lastWrittenRevision });
        this.opts.log.info(
          { event: 'lease.released', lease: this.key, token: st.token },
          'lease released',
        );
      } catch (err) {
        this.opts.log.warn(
          { event: 'lease.release_failed', lease: this.key, err },
          'could not release the lease; it will expire',
        );
      }
    }
    this.watcher?.stop();
    await this.watching;
  }
}
