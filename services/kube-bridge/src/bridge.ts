// The kube-bridge: the one component that talks to the Kubernetes API. Every replica keeps two
// pictures warm, the API's (a reflector per kind) and the store's (watches on the spec and status
// buckets); only the leader reconciles one against the other, object by object, through a work
// queue. Reconciling an object key does, in order:
//
//   1. import: an API object (not a Ciliate mirror) is written into the store when it differs,
//      with its Kubernetes uid, creation time and generation, marked `ciliate.io/source:
//      kubernetes`; a store object so marked whose API object is gone is deleted. Objects from
//      other sources (`ciliate apply`, Ciliate's services) are never overwritten or deleted: a
//      name taken on both sides is a conflict, counted and logged.
//   2. mirror (CiliumNode, CiliumIdentity, CiliumEndpoint): a store object not imported from
//      Kubernetes is Ciliate's; its API copy is created or updated to match (status from the status
//      channel), and an API copy marked `ciliate.io/source: ciliate` whose store object is gone is
//      deleted.
//   3. status write-back (Service status.loadBalancer, pool status.conditions): the status
//      channel's value for the owned field is patched into the API's status subresource.
//
// A reconcile decides from the cached pictures and writes with compare-and-set (store revisions,
// API resourceVersions and uid preconditions), so a stale cache costs a retry, never a wrong write.
// Every replica relists each kind every resync period; the leader then reconciles every key of the
// kind, which finds whatever a lost event left behind.
import { CiliateError, parseResourceKey } from '@ciliate/contracts';
import { formatFieldIssue, type KubeObject, type ManifestProblem } from '@ciliate/resources';
import { WorkQueue, type Logger } from '@ciliate/runtime';
import type { RawEvent, ResourceStore, WatchHandle } from '@ciliate/store';

import {
  canonicalJson,
  contains,
  fromApi,
  importAction,
  importedByBridge,
  mirrorInSync,
  mirroredByBridge,
  SOURCE_KUBERNETES,
  toMirror,
  writebackStatus,
} from './convert.js';
import { KubeApiError, type KubeClient } from './kube/client.js';
import {
  bridgedKind,
  bridgedKinds,
  collectionPath,
  objectPath,
  type BridgedKind,
} from './kinds.js';
import type { BridgeMetrics } from './metrics.js';
import { Reflector } from './reflector.js';

type Json = Record<string, unknown>;

/** The source name the bridge marks in the store's sources bucket. */
export const KUBERNETES_SOURCE = SOURCE_KUBERNETES;

export interface KubeBridgeOptions {
  client: KubeClient;
  store: ResourceStore;
  log: Logger;
  metrics: BridgeMetrics;
  /** Default: every supported kind. */
  kinds?: readonly BridgedKind[];
  resyncMs: number;
  /** How often a kind the API does not serve is tried again. */
  unavailableRetryMs: number;
  workers?: number;
  watchTimeoutSeconds?: number;
}

interface SpecEntry {
  object: KubeObject | undefined;
  revision: number;
}

interface StatusEntry {
  value: unknown;
  revision: number;
}

export class KubeBridge {
  private readonly reflectors = new Map<string, Reflector>();
  private readonly spec = new Map<string, SpecEntry>();
  private readonly status = new Map<string, StatusEntry>();
  private readonly imported = new Map<string, number>();
  private readonly queue = new WorkQueue();
  private readonly memo = new Map<string, { hash: string; rv: string }>();
  private readonly reported = new Map<string, string>();
  private readonly kinds: readonly BridgedKind[];
  private specWatch: WatchHandle | undefined;
  private statusWatch: WatchHandle | undefined;
  private workers: Promise<void>[] = [];
  private leading = false;
  private leaderEpoch = 0;
  private initialPending: Set<string> | undefined;
  private initialDone = false;
  private stopped = false;
  private resolveInitial!: () => void;
  /** Resolves when a leader (this replica) has reconciled everything once and marked the source synced. */
  readonly initialSync = new Promise<void>((r) => (this.resolveInitial = r));
  private cachesSyncedP: Promise<void> | undefined;

  constructor(private readonly o: KubeBridgeOptions) {
    this.kinds = o.kinds ?? bridgedKinds();
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Resolves once the store is read and every kind is listed or found unavailable. */
  get cachesSynced(): Promise<void> {
    if (!this.cachesSyncedP) throw new Error('the bridge is not started');
    return this.cachesSyncedP;
  }

  /** The reflector state of every kind (for tests and logs). */
  kindStates(): Record<string, string> {
    return Object.fromEntries([...this.reflectors].map(([k, r]) => [k, r.state]));
  }

  async start(): Promise<void> {
    const { store, log } = this.o;
    this.specWatch = await store.watch({}, {}, (ev) => this.onStoreSpec(ev));
    this.statusWatch = await store.watchStatus({}, {}, (ev) => this.onStoreStatus(ev));
    const storeSynced = Promise.all([this.specWatch.synced, this.statusWatch.synced]);
    for (const kind of this.kinds) {
      const r = new Reflector({
        client: this.o.client,
        kind,
        log: this.o.log,
        metrics: this.o.metrics,
        onChange: (keys) => {
          for (const key of keys) this.enqueue(key);
        },
        onListed: (k) => this.enqueueKind(k),
        resyncMs: this.o.resyncMs,
        unavailableRetryMs: this.o.unavailableRetryMs,
        ...(this.o.watchTimeoutSeconds !== undefined
          ? { watchTimeoutSeconds: this.o.watchTimeoutSeconds }
          : {}),
      });
      this.reflectors.set(kind.kind, r);
      r.start();
    }
    this.cachesSyncedP = Promise.all([
      storeSynced,
      ...[...this.reflectors.values()].map((r) => r.settled),
    ]).then(() => {
      const states = this.kindStates();
      log.info(
        {
          event: 'caches.synced',
          unavailable: Object.entries(states)
            .filter(([, s]) => s === 'unavailable')
            .map(([k]) => k),
          storeObjects: this.spec.size,
        },
        'API and store caches synced',
      );
    });
    for (let i = 0; i < (this.o.workers ?? 16); i++) this.workers.push(this.work());
  }

  /** Leader or not: only a leader reconciles (writes to the store or the API). */
  setLeader(leader: boolean): void {
    if (leader === this.leading || this.stopped) return;
    this.leading = leader;
    this.leaderEpoch++;
    this.o.metrics.leader.set(leader ? 1 : 0);
    this.o.metrics.leaseTransitions.inc();
    if (!leader) {
      this.queue.clear();
      this.initialPending = undefined;
      return;
    }
    const epoch = this.leaderEpoch;
    void this.cachesSynced.then(() => {
      if (epoch === this.leaderEpoch && this.leading) this.fullPass();
    });
  }

  private fullPass(): void {
    const keys = this.allKeys();
    if (!this.initialDone) this.initialPending = new Set(keys);
    for (const key of keys) this.queue.add(key);
    this.o.metrics.queueDepth.set(this.queue.length);
    this.o.log.info({ event: 'reconcile.full_pass', keys: keys.length }, 'reconciling everything');
    this.checkInitial();
  }

  private allKeys(kind?: BridgedKind): string[] {
    const keys = new Set<string>();
    const kinds = kind ? [kind] : this.kinds;
    for (const k of kinds) {
      const r = this.reflectors.get(k.kind);
      if (r?.state === 'synced') for (const key of r.cache.keys()) keys.add(key);
    }
    const prefixes = kinds.map((k) => `${k.kind}.`);
    const relevant = (key: string): boolean => prefixes.some((p) => key.startsWith(p));
    for (const [key, e] of this.spec) if (e.object && relevant(key)) keys.add(key);
    for (const [key, e] of this.status) if (e.value !== undefined && relevant(key)) keys.add(key);
    return [...keys];
  }

  private enqueueKind(kind: BridgedKind): void {
    if (!this.leading) return;
    for (const key of this.allKeys(kind)) this.queue.add(key);
    this.o.metrics.queueDepth.set(this.queue.length);
  }

  private enqueue(key: string): void {
    if (!this.leading) return;
    this.queue.add(key);
    this.o.metrics.queueDepth.set(this.queue.length);
  }

  private onStoreSpec(ev: RawEvent): void {
    const cur = this.spec.get(ev.key);
    if (cur && cur.revision >= ev.revision) return;
    this.setSpec(ev.key, { object: ev.value as KubeObject | undefined, revision: ev.revision });
    if (this.reflectors.has(ev.ref.kind)) this.enqueue(ev.key);
  }

  private setSpec(key: string, entry: SpecEntry): void {
    const before = this.spec.get(key)?.object;
    this.spec.set(key, entry);
    const was = importedByBridge(before) ? 1 : 0;
    const is = importedByBridge(entry.object) ? 1 : 0;
    if (was !== is) {
      const kind = key.slice(0, key.indexOf('.'));
      const n = (this.imported.get(kind) ?? 0) + is - was;
      this.imported.set(kind, n);
      this.o.metrics.storeObjects.set({ kind }, n);
    }
  }

  private onStoreStatus(ev: RawEvent): void {
    const cur = this.status.get(ev.key);
    if (cur && cur.revision >= ev.revision) return;
    this.status.set(ev.key, { value: ev.value, revision: ev.revision });
    const k = this.reflectors.get(ev.ref.kind)?.kind;
    if (k && (k.statusMode === 'writeback' || k.statusMode === 'mirror')) this.enqueue(ev.key);
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.take();
      if (key === undefined) return;
      this.o.metrics.queueDepth.set(this.queue.length);
      const epoch = this.leaderEpoch;
      const progress = { imported: false };
      try {
        if (this.leading) await this.reconcile(key, epoch, progress);
        this.queue.forget(key);
        progress.imported = true;
      } catch (err) {
        const kind = key.slice(0, key.indexOf('.'));
        this.o.metrics.reconcileErrors.inc({ kind });
        const ms = this.queue.retry(key);
        const status = err instanceof KubeApiError ? err.status : undefined;
        const fields = {
          event: 'reconcile.failed',
          key,
          status,
          retryMs: ms,
          err: err instanceof Error ? err.message : String(err),
        };
        // Conflicts are expected while a cache catches up with a write; anything else is news.
        if (err instanceof CiliateError && err.code === 'conflict')
          this.o.log.debug(fields, 'retrying');
        else if (status === 409) this.o.log.debug(fields, 'retrying');
        else this.o.log.warn(fields, `reconciling ${key} failed`);
      } finally {
        this.queue.done(key);
        if (progress.imported && this.initialPending?.delete(key)) this.checkInitial();
      }
    }
  }

  private checkInitial(): void {
    if (this.initialDone || !this.initialPending || this.initialPending.size > 0) return;
    this.initialDone = true;
    this.initialPending = undefined;
    void this.markSynced();
  }

  private async markSynced(): Promise<void> {
    const states = this.kindStates();
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        if (!this.leading) {
          // A standby does not write; whoever leads next marks it after its own pass.
          this.initialDone = false;
          return;
        }
        await this.o.store.markSourceSynced(KUBERNETES_SOURCE, {
          kinds: Object.keys(states).filter((k) => states[k] === 'synced'),
          unavailable: Object.keys(states).filter((k) => states[k] === 'unavailable'),
        });
        this.o.log.info(
          { event: 'initial_sync.done' },
          "initial sync complete: the store holds the API's objects",
        );
        this.resolveInitial();
        return;
      } catch (err) {
        this.o.log.warn(
          {
            event: 'initial_sync.mark_failed',
            attempt,
            err: err instanceof Error ? err.message : String(err),
          },
          'could not mark the source synced; retrying',
        );
        await new Promise((r) => setTimeout(r, Math.min(5000, 200 * attempt)));
      }
    }
  }

  private async reconcile(
    key: string,
    epoch: number,
    progress: { imported: boolean },
  ): Promise<void> {
    const ref = parseResourceKey(key);
    const k = ref && bridgedKind(ref.kind);
    const r = k && this.reflectors.get(k.kind);
    if (!ref || !k || !r || r.state !== 'synced') return;
    const still = (): boolean => this.leading && epoch === this.leaderEpoch;

    const api = r.cache.get(key);
    const entry = this.spec.get(key);
    const stored = entry?.object;
    if (api && !mirroredByBridge(api)) {
      await this.importObject(k, r, key, ref, api, entry, still);
    } else if (importAction(undefined, stored) === 'delete' && entry && still()) {
      const deleted = await this.o.store.delete(ref, { expectRevision: entry.revision });
      this.setSpec(key, { object: undefined, revision: entry.revision });
      if (deleted) {
        this.o.metrics.storeWrites.inc({ kind: k.kind, op: 'delete' });
        this.o.log.debug({ event: 'store.deleted', key }, 'deleted from the store');
      }
    }
    progress.imported = true;

    if (k.direction === 'mirror') await this.mirror(k, r, key, ref, still);
    else if (k.statusMode === 'writeback') await this.writeback(k, r, key, ref, still);
  }

  private async importObject(
    k: BridgedKind,
    r: Reflector,
    key: string,
    ref: { kind: string; namespace: string; name: string },
    api: Json,
    entry: SpecEntry | undefined,
    still: () => boolean,
  ): Promise<void> {
    const { store, metrics, log } = this.o;
    const stored = entry?.object;
    if (stored && !importedByBridge(stored)) {
      this.conflict(k, key, 'the store holds an object of the same name from another source');
      return;
    }
    const conv = fromApi(api, k, r.version);
    if (!conv.ok) {
      this.invalid(k, key, api, conv.problem);
      return;
    }
    this.reported.delete(key);
    if (conv.warnings.length > 0) {
      metrics.unknownFields.inc({ kind: k.kind }, conv.warnings.length);
      log.debug(
        { event: 'object.unknown_fields', key, warnings: conv.warnings },
        'dropped fields Ciliate does not model',
      );
    }
    if (!still()) return;
    const action = importAction(conv.object, stored);
    let revision = entry?.object ? entry.revision : 0;
    if (action === 'replace' && entry) {
      // Deleted and created again in the API while nobody watched: a new object, so the store
      // sees a delete and an add, not an update that keeps the old identity.
      await store.delete(ref, { expectRevision: entry.revision });
      metrics.storeWrites.inc({ kind: k.kind, op: 'delete' });
      this.setSpec(key, { object: undefined, revision: entry.revision });
      revision = 0;
    }
    if (action === 'put' || action === 'replace') {
      let res;
      try {
        res = await store.apply(conv.object, {
          expectRevision: revision,
          keepMetadata: true,
          source: `kubernetes ${k.kind}`,
          // The watch's view saves a read; after the delete above the tombstone's revision is not
          // known yet, so the store reads it.
          ...(action === 'put'
            ? { known: { object: entry?.object, revision: entry?.revision ?? 0 } }
            : {}),
        });
      } catch (err) {
        if (err instanceof CiliateError && err.code === 'bad_request') {
          // The store's validation is the last word: counted and logged like any invalid object.
          metrics.invalid.inc({ kind: k.kind });
          log.warn(
            { event: 'object.invalid', key, err: err.message },
            `${key} refused by the store`,
          );
          return;
        }
        throw err;
      }
      if (res.changed) metrics.storeWrites.inc({ kind: k.kind, op: 'put' });
      const cur = this.spec.get(key);
      if (!cur || cur.revision < res.revision)
        this.setSpec(key, { object: res.object, revision: res.revision });
    }
    if (k.statusMode === 'import') {
      const cur = this.status.get(key)?.value;
      if (canonicalJson(conv.status) !== canonicalJson(cur) && still()) {
        if (conv.status === undefined) {
          await store.setStatus(ref, undefined);
          this.status.set(key, { value: undefined, revision: this.status.get(key)?.revision ?? 0 });
        } else {
          const rev = await store.setStatus(ref, conv.status);
          const c = this.status.get(key);
          if (!c || c.revision < rev) this.status.set(key, { value: conv.status, revision: rev });
        }
        metrics.storeWrites.inc({ kind: k.kind, op: 'status' });
      }
    }
  }

  private async mirror(
    k: BridgedKind,
    r: Reflector,
    key: string,
    ref: { kind: string; namespace: string; name: string },
    still: () => boolean,
  ): Promise<void> {
    const { client, log } = this.o;
    const api = r.cache.get(key);
    const stored = this.spec.get(key)?.object;
    const owned = stored !== undefined && !importedByBridge(stored);
    if (owned) {
      if (api && !mirroredByBridge(api)) {
        this.conflict(
          k,
          key,
          'the API holds an object of the same name that Ciliate did not create',
        );
        return;
      }
      const desired = toMirror(stored, this.status.get(key)?.value, k);
      const memo = this.memo.get(key);
      if (
        api &&
        (mirrorInSync(desired, api) || (memo?.hash === desired.hash && memo.rv === rvOf(api)))
      )
        return;
      if (!still()) return;
      let written: Json;
      if (!api) {
        written = await this.apiWrite(k, 'create', () =>
          client.request<Json>('POST', collectionPath(k, r.version, ref.namespace), desired.body),
        );
      } else {
        const body = {
          ...desired.body,
          metadata: { ...(desired.body.metadata as Json), resourceVersion: rvOf(api) },
        };
        written = await this.apiWrite(k, 'update', () =>
          client.request<Json>('PUT', objectPath(k, r.version, ref), body),
        );
      }
      if (desired.status !== undefined && !contains(desired.status, written.status)) {
        written = await this.apiWrite(k, 'status', () =>
          client.request<Json>(
            'PATCH',
            objectPath(k, r.version, ref, 'status'),
            [
              { op: 'test', path: '/metadata/uid', value: (written.metadata as Json).uid },
              { op: 'add', path: '/status', value: desired.status },
            ],
            'application/json-patch+json',
          ),
        );
      }
      r.remember(key, written);
      this.memo.set(key, { hash: desired.hash, rv: rvOf(written) });
      log.debug({ event: 'mirror.written', key }, 'mirror written to the API');
      return;
    }
    if (api && mirroredByBridge(api) && still()) {
      try {
        await this.apiWrite(k, 'delete', () =>
          client.request('DELETE', objectPath(k, r.version, ref), {
            apiVersion: 'v1',
            kind: 'DeleteOptions',
            preconditions: { uid: (api.metadata as Json).uid },
          }),
        );
      } catch (err) {
        if (!(err instanceof KubeApiError && err.status === 404)) throw err;
      }
      r.remember(key, undefined);
      this.memo.delete(key);
      log.debug({ event: 'mirror.deleted', key }, 'mirror deleted from the API');
    }
  }

  private async writeback(
    k: BridgedKind,
    r: Reflector,
    key: string,
    ref: { kind: string; namespace: string; name: string },
    still: () => boolean,
  ): Promise<void> {
    const api = r.cache.get(key);
    const stored = this.spec.get(key)?.object;
    // Only for the API's own object, as imported: not for a same-named object from elsewhere.
    if (!api || mirroredByBridge(api) || !importedByBridge(stored)) return;
    if ((stored!.metadata.uid ?? '') !== (api.metadata as Json).uid) return;
    const patch = writebackStatus(k, this.status.get(key)?.value, api.status);
    if (!patch || !still()) return;
    try {
      const written = await this.apiWrite(k, 'status', () =>
        this.o.client.request<Json>(
          'PATCH',
          objectPath(k, r.version, ref, 'status'),
          [
            { op: 'test', path: '/metadata/uid', value: (api.metadata as Json).uid },
            { op: 'add', path: '/status', value: patch },
          ],
          'application/json-patch+json',
        ),
      );
      r.remember(key, written);
      this.o.log.debug({ event: 'status.written', key }, 'status written to the API');
    } catch (err) {
      // Gone, or another incarnation (the uid test failed): the next event decides again.
      if (err instanceof KubeApiError && (err.status === 404 || err.status === 422)) return;
      throw err;
    }
  }

  private async apiWrite<T>(k: BridgedKind, op: string, write: () => Promise<T>): Promise<T> {
    try {
      const res = await write();
      this.o.metrics.writebacks.inc({ kind: k.kind, op, outcome: 'ok' });
      return res;
    } catch (err) {
      const outcome = err instanceof KubeApiError ? String(err.status) : 'error';
      this.o.metrics.writebacks.inc({ kind: k.kind, op, outcome });
      throw err;
    }
  }

  private conflict(k: BridgedKind, key: string, why: string): void {
    if (this.reported.get(key) === `conflict:${why}`) return;
    this.reported.set(key, `conflict:${why}`);
    this.o.metrics.conflicts.inc({ kind: k.kind });
    this.o.log.warn({ event: 'object.conflict', key }, `${key}: ${why}; left alone`);
  }

  private invalid(k: BridgedKind, key: string, api: Json, problem: ManifestProblem): void {
    const sig = `invalid:${rvOf(api)}`;
    if (this.reported.get(key) === sig) return;
    this.reported.set(key, sig);
    this.o.metrics.invalid.inc({ kind: k.kind });
    this.o.log.warn(
      {
        event: 'object.invalid',
        key,
        fields: problem.issues.map((i) => i.path),
        issues: problem.issues.map(formatFieldIssue),
      },
      problem.message,
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.setLeader(false);
    this.queue.close();
    await Promise.all([...this.reflectors.values()].map((r) => r.stop()));
    await Promise.all(this.workers);
    await this.specWatch?.stop();
    await this.statusWatch?.stop();
  }
}

function rvOf(obj: Json): string {
  const md = obj.metadata as { resourceVersion?: unknown } | undefined;
  return typeof md?.resourceVersion === 'string' ? md.resourceVersion : '';
}
