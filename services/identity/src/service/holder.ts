// Clearing the holder a binding names: how a node's release, or the expiry of its lease, ends
// the reference its allocation left in the binding it created (see BindingRecord.holder).
import {
  bindingKey,
  bindingRecord,
  decodeBindingRecord,
  encodeRecord,
  labelSetHash,
} from '@ciliate/identity-core';
import type { KvExecutor } from './kv.js';

/**
 * Rewrites the binding of `labels` without its holder when it binds `id` and names `node`;
 * compare-and-set on the revision read, re-read on conflict. Returns whether this call cleared
 * it (false: the binding names another node, none, or is gone).
 */
export async function clearHolder(
  executor: KvExecutor,
  id: number,
  labels: string,
  node: string,
  attempts = 5,
): Promise<boolean> {
  const key = bindingKey(labelSetHash(labels));
  for (let i = 0; i < attempts; i++) {
    const got = await executor.execute({ op: 'get', key });
    if (got.kind !== 'value') return false;
    const b = decodeBindingRecord(got.value, key);
    if (b.id !== id || b.holder !== node) return false;
    const r = await executor.execute({
      op: 'update',
      key,
      value: encodeRecord(bindingRecord(b.id, b.labels, b.releasing === true)),
      revision: got.revision,
    });
    if (r.kind === 'written') return true;
  }
  throw new Error(`binding of identity ${id} kept changing; its holder ${node} was not cleared`);
}
