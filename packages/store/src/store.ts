// The resource store: Kubernetes-shaped objects on JetStream KV, one key per object, the KV
// revision as resourceVersion. Writes are compare-and-set, so two writers never silently
// overwrite each other; spec and status live in separate buckets so that the source of an object
// (the kube-bridge or `ciliate apply`) and the services that report on it never collide.
import { randomUUID } from 'node:crypto';

import {
  CiliateError,
  buckets,
  parseResourceKey,
  resourceKey,
  resourceKeyFilter,
} from '@ciliate/contracts';
import {
  ManifestErrorCode,
  objectRef,
  toStorageVersion,
  validateObject,
  type KubeObject,
  type ManifestProblem,
  type ObjectRef,
  type ResourceObject,
} from '@ciliate/resources';
import { decodeJson, isCasConflict, watchKv } from '@ciliate/runtime';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

export interface StoredResource<T extends KubeObject = ResourceObject> {
  object: T;
  revision: number;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface RawEvent {
  ref: ObjectRef;
  key: string;
  revision: number;
  /** The stored JSON, undefined for a delete. */
  value: unknown;
}

export interface WatchHandle {
  /** Resolves once everything that existed when the watch started has been delivered. */
  readonly synced: Promise<void>;
  /** Revision of the last event delivered. */
  readonly revision: number;
  stop(): Promise<void>;
}

const encoder = new TextEncoder();

/** Bad input as a CiliateError naming the first offending field. */
export function problemToError(problem: ManifestProblem): CiliateError {
  const first = problem.issues[0];
  const unsupported =
    problem.code === ManifestErrorCode.kindNotSupported ||
    problem.code === ManifestErrorCode.versionNotServed;
  return new CiliateError(unsupported ? 'not_supported' : 'bad_request', problem.message, {
    ...(first?.path ? { field: first.path } : {}),
  });
}

export class ResourceStore {
  private constructor(
    private readonly js: JetStreamClient,
    readonly spec: KV,
    readonly status: KV,
    readonly sources: KV,
  ) {}

  static async open(nc: NatsConnection, opts: { replicas?: number } = {}): Promise<ResourceStore> {
    const kvm = new Kvm(nc);
    const o = { replicas: opts.replicas ?? 1, history: 1 };
    const [spec, status, sources] = await Promise.all([
      kvm.create(buckets.resources(), o),
      kvm.create(buckets.resourceStatus(), o),
      kvm.create(buckets.sources(), o),
    ]);
    return new ResourceStore(jetstream(nc), spec, status, sources);
  }

  /**
   * Validates and stores an object, keeping the uid and creation time of the stored one and
   * bumping `metadata.generation` when its spec changes. With `expectRevision` the write only
   * happens if the stored object is still at that revision (0: must not exist).
   *
   * With `keepMetadata` the source owns the object's identity (the Kubernetes API does: an
   * object deleted and recreated there under the same name is a new object with a new uid), so
   * the given uid, creationTimestamp and generation are stored as they are.
   *
   * `known` is the caller's view of the stored entry, from a watch: the object (undefined for
   * none or a deleted one) at `revision` (0: the key was never written). It saves the read before
   * the write; the write is still compare-and-set on that revision, so a stale view fails with a
   * conflict, never overwrites.
   */
  async apply<T extends ResourceObject>(
    input: unknown,
    opts: {
      expectRevision?: number;
      source?: string;
      keepMetadata?: boolean;
      known?: { object: KubeObject | undefined; revision: number };
    } = {},
  ): Promise<StoredResource<T> & { changed: boolean }> {
    const validated = validateObject(input, { where: { source: opts.source ?? 'store' } });
    if (!validated.ok) throw problemToError(validated.problem);
    const obj = toStorageVersion(validated.object) as T;
    const ref = objectRef(obj);
    const key = resourceKey(ref);
    for (let attempt = 0; attempt < 20; attempt++) {
      const known = attempt === 0 ? opts.known : undefined;
      const current = known
        ? known.revision > 0
          ? { revision: known.revision }
          : null
        : await this.spec.get(key);
      const existing = known
        ? known.object
        : current && (current as KvEntry).operation === 'PUT'
          ? (current as KvEntry).json<KubeObject>()
          : undefined;
      const revision = current?.revision ?? 0;
      if (opts.expectRevision !== undefined && opts.expectRevision !== (existing ? revision : 0)) {
        throw new CiliateError(
          'conflict',
          `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name} is at revision ${existing ? revision : 'none'}, not ${opts.expectRevision}`,
        );
      }
      const next = this.merge(obj, existing, opts.keepMetadata ?? false);
      if (existing && sameContent(existing, next)) {
        return { object: withVersion(next, revision), revision, changed: false };
      }
      try {
        const data = encoder.encode(JSON.stringify(next));
        // A deleted key keeps a tombstone: it is replaced with compare-and-set on the tombstone.
        const rev = current
          ? await this.spec.update(key, data, revision)
          : await this.spec.create(key, data);
        return { object: withVersion(next, rev), revision: rev, changed: true };
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        if (opts.expectRevision !== undefined || opts.known) {
          throw new CiliateError(
            'conflict',
            `${ref.kind} ${ref.name} changed while being written`,
            { cause: err },
          );
        }
      }
    }
    throw new CiliateError('conflict', `gave up writing ${key}: too many concurrent writers`);
  }

  private merge<T extends KubeObject>(
    obj: T,
    existing: KubeObject | undefined,
    keepMetadata: boolean,
  ): T {
    const meta = { ...obj.metadata } as Record<string, unknown>;
    delete meta.resourceVersion;
    const prev = existing?.metadata as Record<string, unknown> | undefined;
    const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const specChanged =
      !existing || JSON.stringify(specOf(existing)) !== JSON.stringify(specOf(obj));
    const prevGen = typeof prev?.generation === 'number' ? prev.generation : 0;
    const nextGen = specChanged ? prevGen + 1 : prevGen || 1;
    if (keepMetadata) {
      meta.uid ??= prev?.uid ?? randomUUID();
      meta.creationTimestamp ??= prev?.creationTimestamp ?? now();
      if (typeof meta.generation !== 'number') meta.generation = nextGen;
    } else {
      meta.uid = prev?.uid ?? meta.uid ?? randomUUID();
      meta.creationTimestamp = prev?.creationTimestamp ?? meta.creationTimestamp ?? now();
      meta.generation = nextGen;
    }
    // Status is the status channel's: an applied object never overwrites it.
    const { status: _status, ...rest } = obj as T & { status?: unknown };
    return { ...rest, metadata: meta } as unknown as T;
  }

  async get<T extends KubeObject = ResourceObject>(
    ref: ObjectRef,
  ): Promise<StoredResource<T> | undefined> {
    const e = await this.spec.get(resourceKey(ref));
    if (!e || e.operation !== 'PUT') return undefined;
    const obj = withVersion(e.json<T>(), e.revision);
    const st = await this.status.get(resourceKey(ref));
    if (st && st.operation === 'PUT') (obj as T & { status?: unknown }).status = st.json();
    return { object: obj, revision: e.revision };
  }

  /** Deletes an object and its status; true when it existed. */
  async delete(ref: ObjectRef, opts: { expectRevision?: number } = {}): Promise<boolean> {
    const key = resourceKey(ref);
    const e = await this.spec.get(key);
    if (!e || e.operation !== 'PUT') return false;
    if (opts.expectRevision !== undefined && opts.expectRevision !== e.revision) {
      throw new CiliateError(
        'conflict',
        `${ref.kind} ${ref.name} is at revision ${e.revision}, not ${opts.expectRevision}`,
      );
    }
    try {
      await this.spec.delete(key, { previousSeq: e.revision });
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      if (opts.expectRevision !== undefined)
        throw new CiliateError('conflict', `${ref.kind} ${ref.name} changed while being deleted`);
      return this.delete(ref, opts);
    }
    const st = await this.status.get(key);
    if (st && st.operation === 'PUT') await this.status.delete(key);
    return true;
  }

  /** Every object of a kind (or all kinds), optionally in one namespace, with status merged. */
  async list<T extends KubeObject = ResourceObject>(
    kind?: string,
    namespace?: string,
  ): Promise<StoredResource<T>[]> {
    const [specs, statuses] = await Promise.all([
      this.snapshot(this.spec, resourceKeyFilter(kind, namespace)),
      this.snapshot(this.status, resourceKeyFilter(kind, namespace)),
    ]);
    const out: StoredResource<T>[] = [];
    for (const [key, e] of specs) {
      const obj = withVersion(e.value as T, e.revision);
      const st = statuses.get(key);
      if (st) (obj as T & { status?: unknown }).status = st.value;
      out.push({ object: obj, revision: e.revision });
    }
    return out.sort((a, b) => {
      const x = objectRef(a.object);
      const y = objectRef(b.object);
      return (
        x.kind.localeCompare(y.kind) ||
        x.namespace.localeCompare(y.namespace) ||
        x.name.localeCompare(y.name)
      );
    });
  }

  private async snapshot(kv: KV, filter: string): Promise<Map<string, RawEvent>> {
    const out = new Map<string, RawEvent>();
    const h = await this.watchRaw(kv, filter, {}, (ev) => {
      if (ev.value === undefined) out.delete(ev.key);
      else out.set(ev.key, ev);
    });
    await h.synced;
    await h.stop();
    return out;
  }

  /** Writes the status of an object (the status channel); `undefined` clears it. */
  async setStatus(ref: ObjectRef, status: unknown): Promise<number> {
    const key = resourceKey(ref);
    if (status === undefined) {
      await this.status.delete(key);
      return 0;
    }
    return this.status.put(key, encoder.encode(JSON.stringify(status)));
  }

  async getStatus(ref: ObjectRef): Promise<unknown> {
    const e = await this.status.get(resourceKey(ref));
    return e && e.operation === 'PUT' ? e.json() : undefined;
  }

  /** Records that `source` (kube-bridge, apply, ...) has put its initial state in the store. */
  async markSourceSynced(source: string, detail: Record<string, unknown> = {}): Promise<void> {
    await this.sources.put(
      source,
      encoder.encode(JSON.stringify({ syncedAt: new Date().toISOString(), ...detail })),
    );
  }

  async sourceSynced(source: string): Promise<boolean> {
    const e = await this.sources.get(source);
    return !!e && e.operation === 'PUT';
  }

  /** Raw events of the spec bucket; see watchRaw. */
  watch(
    filter: { kind?: string; namespace?: string },
    opts: { fromRevision?: number },
    onEvent: (ev: RawEvent) => void,
  ): Promise<WatchHandle> {
    return this.watchRaw(
      this.spec,
      resourceKeyFilter(filter.kind, filter.namespace),
      opts,
      onEvent,
    );
  }

  /** Raw events of the status bucket. */
  watchStatus(
    filter: { kind?: string; namespace?: string },
    opts: { fromRevision?: number },
    onEvent: (ev: RawEvent) => void,
  ): Promise<WatchHandle> {
    return this.watchRaw(
      this.status,
      resourceKeyFilter(filter.kind, filter.namespace),
      opts,
      onEvent,
    );
  }

  /**
   * Every current value under `filter`, then every change, in revision order. An ordered consumer
   * carries it: after a disconnect it resumes from the last delivered revision. Deletes arrive as
   * the tombstones KV keeps for them, so a watch resumed from any revision sees every delete that
   * happened after it.
   */
  private async watchRaw(
    kv: KV,
    filter: string,
    opts: { fromRevision?: number },
    onEvent: (ev: RawEvent) => void,
  ): Promise<WatchHandle> {
    // An unreadable value counts as gone rather than crashing the watcher.
    const w = await watchKv(
      this.js,
      kv,
      {
        filter,
        ...(opts.fromRevision ? { fromRevision: opts.fromRevision } : {}),
        decode: decodeJson,
      },
      (ev) => {
        const ref = parseResourceKey(ev.key);
        if (!ref) return;
        onEvent({
          ref,
          key: ev.key,
          revision: ev.revision,
          value:
            ev.value === undefined ? undefined : withVersion(ev.value as KubeObject, ev.revision),
        });
      },
    );
    return {
      synced: w.synced,
      get revision() {
        return w.revision;
      },
      stop: () => w.stop(),
    };
  }
}

function specOf(o: KubeObject): unknown {
  const { metadata, status: _s, ...rest } = o as KubeObject & { status?: unknown };
  const m = metadata as Record<string, unknown>;
  return {
    rest,
    labels: m.labels,
    annotations: m.annotations,
    ownerReferences: m.ownerReferences,
    finalizers: m.finalizers,
  };
}

function sameContent(a: KubeObject, b: KubeObject): boolean {
  const strip = (o: KubeObject): unknown => {
    const m = { ...(o.metadata as Record<string, unknown>) };
    delete m.resourceVersion;
    const { status: _s, ...rest } = o as KubeObject & { status?: unknown };
    return { ...rest, metadata: m };
  };
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

function withVersion<T extends KubeObject>(o: T, revision: number): T {
  if (typeof o !== 'object' || o === null || typeof o.metadata !== 'object') return o;
  return { ...o, metadata: { ...o.metadata, resourceVersion: String(revision) } };
}
