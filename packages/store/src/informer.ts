// A local cache of one kind (or one namespace of it) fed by a store watch, the way client-go's
// informers work: consumers wait for the initial sync before acting, get ADDED/MODIFIED/DELETED
// events, and a periodic resync re-delivers every object so that reconcilers correct drift.
import { resourceKey } from '@ciliate/contracts';
import type { KubeObject } from '@ciliate/resources';

import type { RawEvent, ResourceStore, WatchEventType, WatchHandle } from './store.js';

export interface InformerEvent<T extends KubeObject> {
  type: WatchEventType | 'RESYNC';
  object: T;
  /** For MODIFIED, the object before. */
  old?: T;
  revision: number;
}

export interface InformerOptions {
  kind: string;
  namespace?: string;
  /** Re-deliver every cached object as RESYNC this often (0: never). */
  resyncMs?: number;
  /** Watch the status bucket instead of the spec bucket. */
  status?: boolean;
}

export class Informer<T extends KubeObject = KubeObject> {
  private readonly cache = new Map<string, { object: T; revision: number }>();
  private readonly handlers: ((ev: InformerEvent<T>) => void)[] = [];
  private handle: WatchHandle | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private isSynced = false;

  constructor(
    private readonly store: ResourceStore,
    private readonly opts: InformerOptions,
  ) {}

  on(handler: (ev: InformerEvent<T>) => void): this {
    this.handlers.push(handler);
    return this;
  }

  get synced(): boolean {
    return this.isSynced;
  }

  /** Revision of the last event seen (for resuming elsewhere). */
  get revision(): number {
    return this.handle?.revision ?? 0;
  }

  /** Starts watching and resolves once the initial state is cached and delivered. */
  async start(): Promise<void> {
    const filter = {
      kind: this.opts.kind,
      ...(this.opts.namespace !== undefined ? { namespace: this.opts.namespace } : {}),
    };
    const onEvent = (ev: RawEvent): void => this.apply(ev);
    this.handle = this.opts.status
      ? await this.store.watchStatus(filter, {}, onEvent)
      : await this.store.watch(filter, {}, onEvent);
    await this.handle.synced;
    this.isSynced = true;
    if (this.opts.resyncMs) {
      this.resyncTimer = setInterval(() => this.resync(), this.opts.resyncMs);
      this.resyncTimer.unref();
    }
  }

  private emit(ev: InformerEvent<T>): void {
    for (const h of this.handlers) {
      try {
        h(ev);
      } catch {
        // A handler's failure is its own; the cache and the other handlers go on.
      }
    }
  }

  private apply(ev: RawEvent): void {
    const prev = this.cache.get(ev.key);
    if (ev.value === undefined) {
      if (!prev) return; // a tombstone of something never seen
      this.cache.delete(ev.key);
      this.emit({ type: 'DELETED', object: prev.object, revision: ev.revision });
      return;
    }
    const object = ev.value as T;
    this.cache.set(ev.key, { object, revision: ev.revision });
    this.emit(
      prev
        ? { type: 'MODIFIED', object, old: prev.object, revision: ev.revision }
        : { type: 'ADDED', object, revision: ev.revision },
    );
  }

  resync(): void {
    for (const { object, revision } of this.cache.values())
      this.emit({ type: 'RESYNC', object, revision });
  }

  list(): T[] {
    return [...this.cache.values()].map((e) => e.object);
  }

  get(namespace: string, name: string): T | undefined {
    return this.cache.get(resourceKey({ kind: this.opts.kind, namespace, name }))?.object;
  }

  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    await this.handle?.stop();
  }
}
