// Mirrors bound identities into the resource store as CiliumIdentity objects (cilium.io/v2,
// name = the number, `security-labels` = the label set) so that `kubectl get ciliumidentities`
// works once the kube-bridge writes them to Kubernetes. One writer: the replica holding the
// identity-gc lease. A full reconcile on taking the lease corrects whatever drifted while
// nobody was writing; then each change of an identity is queued and written once.
import type { Logger } from '@ciliate/runtime';
import type { CiliumIdentity } from '@ciliate/resources';
import type { ResourceStore } from '@ciliate/store';

import { parseLabelSetKey } from '@ciliate/contracts';

import { POD_NAMESPACE_LABEL, labelSetHash } from '@ciliate/identity-core';
import type { IdentityMetrics } from './metrics.js';
import type { IdentityMirror } from './mirror.js';

const KIND = 'CiliumIdentity';

export function ciliumIdentityObject(id: number, labels: string): CiliumIdentity {
  const security: Record<string, string> = {};
  let namespace: string | undefined;
  for (const l of parseLabelSetKey(labels)) {
    security[`${l.source}:${l.key}`] = l.value;
    if (l.source === 'k8s' && l.key === POD_NAMESPACE_LABEL) namespace = l.value;
  }
  return {
    apiVersion: 'cilium.io/v2',
    kind: KIND,
    metadata: {
      name: String(id),
      ...(namespace === undefined ? {} : { labels: { [POD_NAMESPACE_LABEL]: namespace } }),
    },
    'security-labels': security,
  };
}

export class CiliumIdentityMirror {
  readonly #dirty = new Set<number>();
  #leader = false;
  #worker: Promise<void> | undefined;

  constructor(
    private readonly store: ResourceStore,
    private readonly mirror: IdentityMirror,
    private readonly log: Logger,
    private readonly metrics?: IdentityMetrics,
  ) {}

  /** An identity's number or binding changed. */
  touch(id: number): void {
    if (!this.#leader) return;
    this.#dirty.add(id);
    this.#kick();
  }

  /** Became the writer: queue every identity the store or the mirror knows. */
  async lead(): Promise<void> {
    this.#leader = true;
    const existing = await this.store.list(KIND);
    for (const o of existing) {
      const n = Number(o.object.metadata.name);
      if (Number.isInteger(n)) this.#dirty.add(n);
    }
    for (const rec of this.mirror.table.identities()) this.#dirty.add(rec.id);
    this.#kick();
  }

  resign(): void {
    this.#leader = false;
    this.#dirty.clear();
  }

  #desired(id: number): CiliumIdentity | undefined {
    const rec = this.mirror.table.identity(id);
    if (rec === undefined) return undefined;
    const b = this.mirror.table.binding(labelSetHash(rec.labels));
    if (b === undefined || b.id !== id) return undefined;
    return ciliumIdentityObject(id, rec.labels);
  }

  #kick(): void {
    if (this.#worker !== undefined) return;
    this.#worker = this.#drain().finally(() => {
      this.#worker = undefined;
      if (this.#dirty.size > 0 && this.#leader) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#leader && this.#dirty.size > 0) {
      const id = this.#dirty.values().next().value!;
      this.#dirty.delete(id);
      try {
        const want = this.#desired(id);
        if (want !== undefined) {
          const r = await this.store.apply(want, { source: 'identity' });
          if (r.changed) this.metrics?.mirrorWrites.inc({ op: 'apply' });
        } else if (await this.store.delete({ kind: KIND, namespace: '', name: String(id) })) {
          this.metrics?.mirrorWrites.inc({ op: 'delete' });
        }
      } catch (err) {
        this.log.warn(
          { event: 'ciliumidentity.write_failed', id, err },
          'could not mirror CiliumIdentity; retrying',
        );
        this.#dirty.add(id);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  async stop(): Promise<void> {
    this.resign();
    await this.#worker;
  }
}
