// What the identity service adds to the label model of @ciliate/contracts: the hash that
// addresses a label set in the KV store, and a remembered check of label-set keys (one label set
// passes through several checks within moments: the request, the allocation, the mirror).
import { createHash } from 'node:crypto';

import { parseLabelSetKey } from '@ciliate/contracts';

import { asIdentityInput } from './errors.js';

/**
 * SHA-256 (hex) of a label-set key. KV keys cannot hold the label text (':' and ';' are not
 * allowed in NATS KV keys, and values are unbounded), so label sets are addressed by this hash.
 */
export function labelSetHash(setKey: string): string {
  let hash = recentHashes.get(setKey);
  if (hash === undefined) {
    hash = createHash('sha256').update(setKey, 'utf8').digest('hex');
    remember(recentHashes, setKey, hash);
  }
  return hash;
}

/**
 * Checks that `key` is a label-set key exactly as labelSetKey() writes it (parseLabelSetKey()
 * without keeping the labels). Recent valid keys are remembered.
 */
export function checkLabelSetKey(key: string, field = 'labels'): void {
  if (recentValid.has(key)) return;
  asIdentityInput('INVALID_LABEL_SET', () => parseLabelSetKey(key, field));
  remember(recentValid, key, true);
}

// Small memos of pure functions: a label set is seen a few times within moments, rarely later.
const MEMO_SIZE = 4096;
const recentHashes = new Map<string, string>();
const recentValid = new Map<string, true>();
function remember<V>(memo: Map<string, V>, key: string, value: V): void {
  if (memo.size >= MEMO_SIZE) memo.clear();
  memo.set(key, value);
}
