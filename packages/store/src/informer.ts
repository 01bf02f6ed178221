// A local cache of one kind (or one namespace of it) fed by a store watch, the way client-go's
// informers work: consumers wait for the initial sync before acting, get ADDED/MODIFIED/DELETED
// events, and a periodic resync re-delivers every object so that reconcilers correct drift.
//
// Objects are parsed here, once, with the kind's schema from @ciliate/resources: a consumer gets
// the typed object or nothing, never a cast. A stored object that fails validation (written by
// an older version, or by hand around the store's checks) is logged and counted, and the last
// valid version of it stays in the cache. A handler that throws is logged and counted; the cache
// and the other handlers go on.
import { resourceKey } from '@ciliate/contracts';
import { validateObject, type ResourceKind, type ResourceObject } from '@ciliate/resources';
import type { Counter, Logger } from '@ciliate/runtime';

import type { RawEvent, ResourceStore, WatchEventType, WatchHandle } from './store.js';

/**
 * The validated object type of one kind, as stored: a stored object always has its name (the
 * schema also allows generateName, which the store resolves before writing).
 */
export type ObjectOf<K extends ResourceKind> = Extract<ResourceObject, { kind: K }> & {
  readonly metadata: { readonly name: string };
};

export interface InformerEvent<T> {
  type: WatchEventType | 'RESYNC';
  object: T;
  /** For MODIFIED, the object before. */
  old?: T;
  revision: number;
}

/** Where an informer reports what it could not use (RuntimeMetrics.informers). */
export interface InformerMetrics {
  invalidObjects: Counter<'kind'>;
  handlerErrors: Counter<'kind'>;
}

export interface InformerOptions<K extends ResourceKind> {
  kind: K;
  namespace?: string;
  /** Re-deliver every cached object as RESYNC this often (0: never). */
  resyncMs?: number;
  log?: Logger;
  metrics?: InformerMetrics;
}

/** What both informers share: the cache, the events, the resync, the accounting. */
abstract class CacheOf<T> {
  private readonly cache = new Map<string, { object: T; revision: number }>();
  private readonly handlers: ((ev: InformerEvent<T>) => void)[] = [];
  private handle: WatchHandle | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private isSynced = false;
  /** Stored objects that failed validation, by key (kept until valid again or deleted). */
  private readonly invalidKeys = new Set<string>();

  protected constructor(
    protected readonly store: ResourceStore,
    protected readonly opts: {
      kind: string;
      namespace?: string;
      resyncMs?: number;
      log?: Logger;
      metrics?: InformerMetrics;
    },
  ) {}

  /** The stored value as T, or a reason it is not one. */
  protected abstract decode(value: unknown): { ok: true; value: T } | { ok: false; reason: string };

  protected abstract watch(
    filter: { kind: string; namespace?: string },
    onEvent: (ev: RawEvent) => void,
  ): Promise<WatchHandle>;

  on(handler: (ev: InformerEvent<T>) => void): this {
    this.handlers.push(handler);
    return this;
  }

  get kind(): string {
    return this.opts.kind;
  }

  get synced(): boolean {
    return this.isSynced;
  }

  /** Stored objects of this kind that failed validation right now. */
  get invalid(): number {
    return this.invalidKeys.size;
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
    this.handle = await this.watch(filter, (ev) => this.apply(ev));
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
      } catch (err) {
        this.opts.metrics?.handlerErrors.inc({ kind: this.opts.kind });
        this.opts.log?.warn(
          { event: 'informer.handler_failed', kind: this.opts.kind, type: ev.type, err },
          'an informer handler failed',
        );
      }
    }
  }

  private apply(ev: RawEvent): void {
    const prev = this.cache.get(ev.key);
    if (ev.value === undefined) {
      this.invalidKeys.delete(ev.key);
      if (!prev) return; // a tombstone of something never seen
      this.cache.delete(ev.key);
      this.emit({ type: 'DELETED', object: prev.object, revision: ev.revision });
      return;
    }
    const decoded = this.decode(ev.value);
    if (!decoded.ok) {
      this.invalidKeys.add(ev.key);
      this.opts.metrics?.invalidObjects.inc({ kind: this.opts.kind });
      this.opts.log?.warn(
        {
          event: 'informer.invalid_object',
          kind: this.opts.kind,
          key: ev.key,
          reason: decoded.reason,
        },
        'a stored object failed validation; keeping its last valid version',
      );
      return;
    }
    this.invalidKeys.delete(ev.key);
    const object = decoded.value;
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

/** The objects of one kind, validated and typed by the kind's schema. */
export class Informer<K extends ResourceKind> extends CacheOf<ObjectOf<K>> {
  constructor(store: ResourceStore, opts: InformerOptions<K>) {
    super(store, opts);
  }

  protected decode(
    value: unknown,
  ): { ok: true; value: ObjectOf<K> } | { ok: false; reason: string } {
    const r = validateObject(value, { where: { source: 'store' } });
    if (!r.ok) return { ok: false, reason: r.problem.message };
    if (r.object.kind !== this.opts.kind) {
      return { ok: false, reason: `kind ${r.object.kind} stored under ${this.opts.kind}` };
    }
    if (typeof r.object.metadata.name !== 'string' || r.object.metadata.name === '') {
      return { ok: false, reason: 'metadata.name is missing' };
    }
    return { ok: true, value: r.object as ObjectOf<K> };
  }

  protected watch(
    filter: { kind: string; namespace?: string },
    onEvent: (ev: RawEvent) => void,
  ): Promise<WatchHandle> {
    return this.store.watch(filter, {}, onEvent);
  }
}

/**
 * The status channel of one kind: what Ciliate's services reported for its objects (a JSON
 * object per object, whose shape the reporting service owns), keyed like the objects.
 */
export class StatusInformer extends CacheOf<Record<string, unknown>> {
  constructor(store: ResourceStore, opts: InformerOptions<ResourceKind>) {
    super(store, opts);
  }

  protected decode(
    value: unknown,
  ): { ok: true; value: Record<string, unknown> } | { ok: false; reason: string } {
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? { ok: true, value: value as Record<string, unknown> }
      : { ok: false, reason: 'a status must be a JSON object' };
  }

  protected watch(
    filter: { kind: string; namespace?: string },
    onEvent: (ev: RawEvent) => void,
  ): Promise<WatchHandle> {
    return this.store.watchStatus(filter, {}, onEvent);
  }
}
