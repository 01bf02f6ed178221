// A work queue of object keys with client-go's guarantees: a key is queued once however often it
// is added, never handed to two workers at once (added again while being worked on, it is
// handed out again after), and a failing key comes back after an exponential backoff. The
// controllers over the store (the kube-bridge, the lab's kubelet) share it.

/** A failing key's delay: `baseMs` after the first failure, doubling up to `maxMs`. */
export interface Backoff {
  baseMs: number;
  maxMs: number;
}

export class WorkQueue {
  private readonly order: string[] = [];
  private head = 0;
  private readonly queued = new Set<string>();
  private readonly active = new Set<string>();
  private readonly again = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, NodeJS.Timeout>();
  private waiters: ((key: string | undefined) => void)[] = [];
  private closed = false;

  constructor(private readonly backoff: Backoff = { baseMs: 100, maxMs: 30_000 }) {}

  get length(): number {
    return this.queued.size;
  }

  /** Keys queued, being worked on or waiting out a backoff. */
  get pending(): number {
    return this.queued.size + this.active.size + this.delayed.size;
  }

  /** Is `key` waiting out a backoff (it comes back by itself when that ends)? */
  waiting(key: string): boolean {
    return this.delayed.has(key);
  }

  add(key: string): void {
    if (this.closed) return;
    if (this.active.has(key)) {
      this.again.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.active.add(key);
      waiter(key);
      return;
    }
    this.queued.add(key);
    this.order.push(key);
  }

  /** The next key, waiting for one; undefined once the queue is closed. */
  take(): Promise<string | undefined> {
    while (this.head < this.order.length) {
      const key = this.order[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.order.length) {
        this.order.splice(0, this.head);
        this.head = 0;
      }
      if (!this.queued.delete(key)) continue;
      this.active.add(key);
      return Promise.resolve(key);
    }
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks the work on `key` finished; a key added meanwhile is queued again. */
  done(key: string): void {
    this.active.delete(key);
    if (this.again.delete(key)) this.add(key);
  }

  /** The key succeeded: its backoff starts over. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** The key failed: queue it again after a backoff that doubles per failure. */
  retry(key: string): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const ms = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** (n - 1));
    if (!this.delayed.has(key)) {
      const t = setTimeout(() => {
        this.delayed.delete(key);
        this.add(key);
      }, ms);
      this.delayed.set(key, t);
    }
    return ms;
  }

  /** Drops everything queued or waiting (a replica that stops leading). */
  clear(): void {
    this.queued.clear();
    this.order.length = 0;
    this.head = 0;
    this.again.clear();
    for (const t of this.delayed.values()) clearTimeout(t);
    this.delayed.clear();
    this.failures.clear();
  }

  close(): void {
    this.closed = true;
    this.clear();
    for (const w of this.waiters) w(undefined);
    this.waiters = [];
  }
}
