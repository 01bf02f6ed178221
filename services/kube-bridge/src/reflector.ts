// List+watch of one kind, client-go's reflector in small: a full list gives the cache and a
// resourceVersion, a watch from there (with bookmarks, so the version stays fresh on quiet kinds)
// keeps it current; when the watch ends it resumes from the last version; when the version is
// too old (410 Gone) or the watch keeps failing, or the resync period has passed, it lists again
// and reports every difference, so a missed event (a lost delete above all) is found at the
// latest at the next list. A kind the API does not serve (its CRD is not installed) is reported
// unavailable and tried again later; nothing is swept for it meanwhile.
import { resourceKey } from '@ciliate/contracts';
import type { Logger } from '@ciliate/runtime';

import type { BridgeMetrics } from './metrics.js';
import { KubeApiError, type KubeClient, type WatchEvent, type WatchStream } from './kube/client.js';
import { collectionPath, type BridgedKind } from './kinds.js';

type Json = Record<string, unknown>;

export type ReflectorState = 'pending' | 'synced' | 'unavailable';

export interface ReflectorOptions {
  client: KubeClient;
  kind: BridgedKind;
  log: Logger;
  metrics: BridgeMetrics;
  /** Called with the keys whose object changed (added, modified or removed). */
  onChange: (keys: readonly string[]) => void;
  /** Called after every full list (the first, and each relist). */
  onListed: (kind: BridgedKind) => void;
  resyncMs: number;
  unavailableRetryMs: number;
  watchTimeoutSeconds?: number;
}

const sleepFor = (ms: number, signal: { stopped: boolean; wake?: () => void }): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.wake = () => {
      clearTimeout(t);
      resolve();
    };
  });

export function keyOf(k: BridgedKind, obj: Json): string | undefined {
  const md = obj.metadata as { name?: unknown; namespace?: unknown } | undefined;
  if (typeof md?.name !== 'string') return undefined;
  try {
    return resourceKey({
      kind: k.kind,
      namespace: k.namespaced && typeof md.namespace === 'string' ? md.namespace : '',
      name: md.name,
    });
  } catch {
    return undefined;
  }
}

export class Reflector {
  readonly cache = new Map<string, Json>();
  state: ReflectorState = 'pending';
  /** The API version the kind is served under (the storage version when served). */
  version: string;
  private resourceVersion = '';
  private stream: WatchStream | undefined;
  private readonly signal: { stopped: boolean; wake?: () => void } = { stopped: false };
  private relistDue = 0;
  private loop: Promise<void> | undefined;
  private settledResolve!: () => void;
  /** Resolves once the kind is listed or found unavailable (what the initial sync waits for). */
  readonly settled = new Promise<void>((r) => (this.settledResolve = r));

  constructor(private readonly o: ReflectorOptions) {
    this.version = o.kind.versions[0]!;
  }

  get kind(): BridgedKind {
    return this.o.kind;
  }

  start(): void {
    this.loop = this.run();
  }

  /** Ends the current watch and lists again now (the periodic resync calls this). */
  relist(): void {
    this.relistDue = 0;
    this.stream?.stop();
    this.signal.wake?.();
  }

  /** Sets the cached object after the bridge wrote it, before its watch event arrives. */
  remember(key: string, obj: Json | undefined): void {
    if (obj === undefined) this.cache.delete(key);
    else this.cache.set(key, obj);
  }

  private async run(): Promise<void> {
    const { kind, log, metrics } = this.o;
    let failures = 0;
    while (!this.signal.stopped) {
      try {
        const listed = await this.listAnyVersion();
        if (this.signal.stopped) return;
        if (!listed) {
          if (this.state !== 'unavailable') {
            log.warn(
              {
                event: 'kind.unavailable',
                kind: kind.kind,
                group: kind.group,
                versions: kind.versions,
              },
              `the API does not serve ${kind.kind} (is its CRD installed?); skipping it and trying again later`,
            );
          }
          this.state = 'unavailable';
          metrics.kindAvailable.set({ kind: kind.kind }, 0);
          this.settledResolve();
          await sleepFor(this.o.unavailableRetryMs, this.signal);
          continue;
        }
        if (this.state === 'unavailable') {
          log.info({ event: 'kind.available', kind: kind.kind }, `the API now serves ${kind.kind}`);
        }
        this.state = 'synced';
        metrics.kindAvailable.set({ kind: kind.kind }, 1);
        this.settledResolve();
        this.o.onListed(kind);
        failures = 0;
        // Jittered, so that the kinds (and the replicas) do not all list at the same moment.
        this.relistDue = Date.now() + this.o.resyncMs * (0.9 + 0.2 * Math.random());
        await this.watchUntilRelist();
      } catch (err) {
        if (this.signal.stopped) return;
        failures++;
        const status = err instanceof KubeApiError ? err.status : undefined;
        log.warn(
          {
            event: 'kind.list_failed',
            kind: kind.kind,
            status,
            err: err instanceof Error ? err.message : String(err),
          },
          `listing ${kind.kind} failed`,
        );
        await sleepFor(Math.min(30_000, 250 * 2 ** Math.min(failures, 7)), this.signal);
      }
    }
  }

  /** Lists under the first served version; false when none is served. */
  private async listAnyVersion(): Promise<boolean> {
    const { client, kind, metrics } = this.o;
    const ordered = [this.version, ...kind.versions.filter((v) => v !== this.version)];
    for (const version of ordered) {
      try {
        const list = await client.list<Json>(collectionPath(kind, version));
        this.version = version;
        this.replace(list.items);
        this.resourceVersion = list.resourceVersion;
        metrics.lists.inc({ kind: kind.kind });
        return true;
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 404) continue;
        throw err;
      }
    }
    if (this.cache.size > 0) {
      // The kind went away (CRD deleted): its objects are no longer in the API; what the store
      // holds for them stays until the kind comes back and is listed (no sweep on a guess).
      this.cache.clear();
    }
    return false;
  }

  private replace(items: Json[]): void {
    const changed: string[] = [];
    const seen = new Set<string>();
    for (const item of items) {
      const key = keyOf(this.o.kind, item);
      if (!key) continue;
      seen.add(key);
      const prev = this.cache.get(key);
      if (!prev || rv(prev) !== rv(item)) {
        this.cache.set(key, item);
        changed.push(key);
      }
    }
    for (const key of this.cache.keys()) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        changed.push(key);
      }
    }
    this.o.metrics.apiObjects.set({ kind: this.o.kind.kind }, this.cache.size);
    if (changed.length > 0) this.o.onChange(changed);
  }

  private async watchUntilRelist(): Promise<void> {
    const { client, kind, log, metrics } = this.o;
    let failures = 0;
    while (!this.signal.stopped && Date.now() < this.relistDue) {
      let gone = false;
      try {
        const left = Math.max(1, Math.ceil((this.relistDue - Date.now()) / 1000));
        this.stream = await client.watch(
          collectionPath(kind, this.version),
          this.resourceVersion,
          (ev) => {
            if (this.onWatchEvent(ev) === 'gone') {
              gone = true;
              this.stream?.stop();
            }
          },
          { timeoutSeconds: Math.min(this.o.watchTimeoutSeconds ?? 300, left) },
        );
        await this.stream.ended;
        failures = 0;
      } catch (err) {
        if (this.signal.stopped) return;
        failures++;
        log.debug(
          {
            event: 'watch.failed',
            kind: kind.kind,
            err: err instanceof Error ? err.message : String(err),
          },
          'watch failed',
        );
        if (failures >= 3) return; // list afresh
        await sleepFor(200 * failures, this.signal);
      } finally {
        this.stream = undefined;
      }
      if (gone) {
        metrics.relists.inc({ kind: kind.kind, reason: 'gone' });
        return;
      }
    }
    if (!this.signal.stopped) metrics.relists.inc({ kind: kind.kind, reason: 'resync' });
  }

  private onWatchEvent(ev: WatchEvent): 'gone' | undefined {
    const { kind, metrics } = this.o;
    metrics.events.inc({ kind: kind.kind, type: ev.type });
    if (ev.type === 'ERROR') {
      const code = (ev.object as { code?: number }).code;
      if (code === 410) return 'gone';
      this.o.log.warn({ event: 'watch.error', kind: kind.kind, status: ev.object }, 'watch error');
      return 'gone';
    }
    const version = rv(ev.object);
    if (version) this.resourceVersion = version;
    if (ev.type === 'BOOKMARK') return undefined;
    const key = keyOf(kind, ev.object);
    if (!key) return undefined;
    if (ev.type === 'DELETED') this.cache.delete(key);
    else this.cache.set(key, ev.object);
    metrics.apiObjects.set({ kind: kind.kind }, this.cache.size);
    this.o.onChange([key]);
    return undefined;
  }

  async stop(): Promise<void> {
    this.signal.stopped = true;
    this.stream?.stop();
    this.signal.wake?.();
    await this.loop;
  }
}

function rv(obj: Json): string {
  const md = obj.metadata as { resourceVersion?: unknown } | undefined;
  return typeof md?.resourceVersion === 'string' ? md.resourceVersion : '';
}
