// Keys and records of the identity state in a JetStream KV bucket.
//
//   id.<N>                 IdentityRecord   created only if absent: owning key "id.N" is owning N
//   labels.<sha256>        BindingRecord    created only if absent: the one number of a label set
//                                           (and the reference of the node that bound it)
//   ref.<N>.<node>         ReferenceRecord  a node uses N (written by or for that node)
//   lease.<node>           LeaseRecord      the node's heartbeat; its references die with it
//
// Keys use '.' so that tokens are NATS subject tokens: a watcher or the GC narrows on the
// server with `id.>`, `ref.<N>.>` or `ref.*.<node>`. Label text cannot be a key (':' and ';' are
// not key characters, and values are unbounded), hence the hash. Node names are DNS subdomains;
// their dots become '_' (never in a DNS name) to stay one token.
import { isNodeName, nodeFromToken, nodeNameProblem, nodeToken } from '@ciliate/contracts';

import { IdentityError, invalid } from './errors.js';
import { checkLabelSetKey, labelSetHash } from './labels.js';
import { LOCAL_IDENTITY_MAX, MIN_GLOBAL_IDENTITY } from './numeric.js';

export interface IdentityRecord {
  readonly v: 1;
  readonly id: number;
  /** KV label-set key (Cilium's SortedList). */
  readonly labels: string;
  /**
   * Set by the GC (compare-and-set) before it deletes a reservation nobody bound; an allocator
   * adopting the reservation rewrites the record without it, which makes that delete fail.
   */
  readonly releasing?: boolean;
}

export interface BindingRecord {
  readonly v: 1;
  readonly id: number;
  readonly labels: string;
  /**
   * Set by the GC (compare-and-set) before it deletes the binding; an allocator that finds it
   * set clears it the same way, which makes the GC's conditional delete fail.
   */
  readonly releasing?: boolean;
  /**
   * The node whose allocation created the binding: it holds a reference to the number exactly
   * as `ref.<N>.<node>` would, until it releases the number or its lease expires (both clear
   * the field with compare-and-set). Saves the third write of a new identity. Only the
   * binding's creation sets it; a binding being released never has one.
   */
  readonly holder?: string;
}

export interface ReferenceRecord {
  readonly v: 1;
  readonly id: number;
  readonly node: string;
}

export interface LeaseRecord {
  readonly v: 1;
  readonly node: string;
  /** Milliseconds since the epoch; the lease is live while now < expiresAt. */
  readonly expiresAt: number;
}

const HASH_RE = /^[0-9a-f]{64}$/;

/** A node name (contracts' rule) as a single KV key token; throws naming `field` if it is not one. */
export function nodeKeyToken(node: string, field = 'node'): string {
  const problem = nodeNameProblem(node);
  if (problem !== undefined) throw invalid('INVALID_ARGUMENT', field, node, problem);
  return nodeToken(node);
}

function checkGlobalId(id: unknown, field: string): number {
  if (
    typeof id !== 'number' ||
    !Number.isInteger(id) ||
    id < MIN_GLOBAL_IDENTITY ||
    id > LOCAL_IDENTITY_MAX
  ) {
    throw invalid(
      'INVALID_RECORD',
      field,
      id,
      `a global identity is an integer in ${MIN_GLOBAL_IDENTITY}-${LOCAL_IDENTITY_MAX}`,
    );
  }
  return id;
}

export const KV_PREFIX = {
  identity: 'id',
  binding: 'labels',
  reference: 'ref',
  lease: 'lease',
} as const;

export function identityKey(id: number): string {
  return `${KV_PREFIX.identity}.${checkGlobalId(id, 'id')}`;
}

export function bindingKey(labelsHash: string): string {
  if (!HASH_RE.test(labelsHash)) {
    throw invalid('INVALID_ARGUMENT', 'labelsHash', labelsHash, 'must be 64 lower-case hex digits');
  }
  return `${KV_PREFIX.binding}.${labelsHash}`;
}

export function bindingKeyForLabels(labelSetKeyText: string): string {
  return bindingKey(labelSetHash(labelSetKeyText));
}

export function referenceKey(id: number, node: string): string {
  return `${KV_PREFIX.reference}.${checkGlobalId(id, 'id')}.${nodeKeyToken(node)}`;
}

/** Subject filter for every reference to one identity. */
export function referencesOfIdentityFilter(id: number): string {
  return `${KV_PREFIX.reference}.${checkGlobalId(id, 'id')}.>`;
}

/** Subject filter for every reference a node holds. */
export function referencesOfNodeFilter(node: string): string {
  return `${KV_PREFIX.reference}.*.${nodeKeyToken(node)}`;
}

export function leaseKey(node: string): string {
  return `${KV_PREFIX.lease}.${nodeKeyToken(node)}`;
}

export type ParsedKey =
  | { readonly kind: 'identity'; readonly id: number }
  | { readonly kind: 'binding'; readonly hash: string }
  | { readonly kind: 'reference'; readonly id: number; readonly node: string }
  | { readonly kind: 'lease'; readonly node: string };

/** What a key of the bucket holds; undefined for keys this layout does not define. */
export function parseKey(key: string): ParsedKey | undefined {
  const parts = key.split('.');
  const num = (s: string | undefined): number | undefined =>
    s !== undefined && /^[1-9][0-9]*$/.test(s) ? Number(s) : undefined;
  const [head, a, b] = parts;
  if (head === KV_PREFIX.identity && parts.length === 2) {
    const id = num(a);
    return id !== undefined && id >= MIN_GLOBAL_IDENTITY && id <= LOCAL_IDENTITY_MAX
      ? { kind: 'identity', id }
      : undefined;
  }
  if (head === KV_PREFIX.binding && parts.length === 2 && HASH_RE.test(a ?? '')) {
    return { kind: 'binding', hash: a! };
  }
  if (head === KV_PREFIX.reference && parts.length === 3) {
    const id = num(a);
    if (id === undefined || id < MIN_GLOBAL_IDENTITY || id > LOCAL_IDENTITY_MAX) return undefined;
    if (b === undefined || b.includes('.') || !isNodeName(nodeFromToken(b))) return undefined;
    return { kind: 'reference', id, node: nodeFromToken(b) };
  }
  if (head === KV_PREFIX.lease && parts.length === 2 && a !== undefined) {
    return isNodeName(nodeFromToken(a)) ? { kind: 'lease', node: nodeFromToken(a) } : undefined;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Records

/** A stored record's JSON object (text or parsed), version 1; INVALID_RECORD names `field`. */
export function decodeRecord(value: unknown, field: string): Record<string, unknown> {
  let v = value;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v) as unknown;
    } catch (err) {
      throw new IdentityError('INVALID_RECORD', `${field}: not JSON: ${(err as Error).message}`, {
        field,
        cause: err,
      });
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw invalid('INVALID_RECORD', field, v, 'must be a JSON object');
  }
  const o = v as Record<string, unknown>;
  if (o.v !== 1) throw invalid('INVALID_RECORD', `${field}.v`, o.v, 'only version 1 is known');
  return o;
}

function checkLabels(labels: unknown, field: string): string {
  if (typeof labels !== 'string') {
    throw invalid('INVALID_RECORD', field, labels, 'must be a label-set key string');
  }
  try {
    checkLabelSetKey(labels, field);
  } catch (err) {
    if (err instanceof IdentityError) {
      throw new IdentityError('INVALID_RECORD', err.message, { field, cause: err });
    }
    throw err;
  }
  return labels;
}

// Records recently encoded or decoded, by their text: a replica decodes from its watch the very
// records it has just written, and decoding is most of what the watch costs. Only records that
// passed every check are remembered; they are frozen, as callers share them.
const RECENT_RECORDS = 4096;
const recentRecords = new Map<string, IdentityRecord & BindingRecord>();
function rememberRecord(text: string, record: IdentityRecord & BindingRecord): void {
  if (recentRecords.size >= RECENT_RECORDS) recentRecords.clear();
  recentRecords.set(text, Object.freeze(record));
}

/** Parses and checks an `id.<N>` value (a JSON string or an already parsed object). */
function decodeNumbered(
  value: unknown,
  field: string,
  binding: boolean,
): IdentityRecord & BindingRecord {
  const known = typeof value === 'string' ? recentRecords.get(value) : undefined;
  if (known !== undefined && (binding || known.holder === undefined)) return known;
  const decoded = decodeNumberedAfresh(value, field, binding);
  if (typeof value === 'string') rememberRecord(value, decoded);
  return decoded;
}

function decodeNumberedAfresh(
  value: unknown,
  field: string,
  binding: boolean,
): IdentityRecord & BindingRecord {
  const o = decodeRecord(value, field);
  const r = {
    v: 1 as const,
    id: checkGlobalId(o.id, `${field}.id`),
    labels: checkLabels(o.labels, `${field}.labels`),
  };
  if (o.releasing !== undefined && typeof o.releasing !== 'boolean') {
    throw invalid('INVALID_RECORD', `${field}.releasing`, o.releasing, 'must be a boolean');
  }
  let holder: string | undefined;
  if (o.holder !== undefined) {
    if (!binding)
      throw invalid('INVALID_RECORD', `${field}.holder`, o.holder, 'only a binding has a holder');
    if (typeof o.holder !== 'string') {
      throw invalid('INVALID_RECORD', `${field}.holder`, o.holder, 'must be a node name');
    }
    nodeKeyToken(o.holder, `${field}.holder`);
    holder = o.holder;
  }
  return bindingRecord(r.id, r.labels, o.releasing === true, holder);
}

/** Parses and checks an `id.<N>` value (a JSON string or an already parsed object). */
export function decodeIdentityRecord(value: unknown, field = 'record'): IdentityRecord {
  return decodeNumbered(value, field, false);
}

/** Parses and checks a `labels.<hash>` value. */
export function decodeBindingRecord(value: unknown, field = 'record'): BindingRecord {
  return decodeNumbered(value, field, true);
}

export function decodeReferenceRecord(value: unknown, field = 'record'): ReferenceRecord {
  const o = decodeRecord(value, field);
  if (typeof o.node !== 'string') {
    throw invalid('INVALID_RECORD', `${field}.node`, o.node, 'must be a node name');
  }
  nodeKeyToken(o.node, `${field}.node`);
  return { v: 1, id: checkGlobalId(o.id, `${field}.id`), node: o.node };
}

export function decodeLeaseRecord(value: unknown, field = 'record'): LeaseRecord {
  const o = decodeRecord(value, field);
  if (typeof o.node !== 'string') {
    throw invalid('INVALID_RECORD', `${field}.node`, o.node, 'must be a node name');
  }
  nodeKeyToken(o.node, `${field}.node`);
  if (typeof o.expiresAt !== 'number' || !Number.isFinite(o.expiresAt) || o.expiresAt < 0) {
    throw invalid(
      'INVALID_RECORD',
      `${field}.expiresAt`,
      o.expiresAt,
      'must be milliseconds since the epoch',
    );
  }
  return { v: 1, node: o.node, expiresAt: o.expiresAt };
}

export function identityRecord(id: number, labels: string, releasing = false): IdentityRecord {
  return releasing ? { v: 1, id, labels, releasing: true } : { v: 1, id, labels };
}

export function bindingRecord(
  id: number,
  labels: string,
  releasing = false,
  holder?: string,
): BindingRecord {
  const r: BindingRecord = releasing ? { v: 1, id, labels, releasing: true } : { v: 1, id, labels };
  return holder === undefined ? r : { ...r, holder };
}

export function referenceRecord(id: number, node: string): ReferenceRecord {
  return { v: 1, id, node };
}

export function leaseRecord(node: string, expiresAt: number): LeaseRecord {
  return { v: 1, node, expiresAt };
}

/**
 * JSON text of a record. Fields are written in one fixed order, so equal records are equal
 * bytes whoever wrote them.
 */
export function encodeRecord(
  record: IdentityRecord | BindingRecord | ReferenceRecord | LeaseRecord,
): string {
  if ('expiresAt' in record) return JSON.stringify(leaseRecord(record.node, record.expiresAt));
  if ('node' in record) return JSON.stringify(referenceRecord(record.id, record.node));
  const canonical = bindingRecord(
    record.id,
    record.labels,
    record.releasing === true,
    'holder' in record ? record.holder : undefined,
  );
  const text = JSON.stringify(canonical);
  // Checked here as a decoder would check it, so the watch that brings it back can skip that.
  if (!recentRecords.has(text)) {
    try {
      rememberRecord(text, decodeNumberedAfresh(canonical, 'record', true));
    } catch {
      // not remembered: whoever decodes it gets the error
    }
  }
  return text;
}

export interface StoreAudit {
  /** Broken invariants, each a sentence naming the keys; empty when the store is sound. */
  readonly violations: string[];
  /** Number of label sets bound to a number. */
  readonly bound: number;
  /** Numbers reserved (`id.<N>` present) but bound to nothing: in flight or orphaned. */
  readonly reservations: number[];
}

/**
 * Checks the invariants allocation relies on over a bucket's entries: every binding points at
 * an existing `id.<N>` with the same labels and hashes to its key, no number is bound twice,
 * every record sits under its own key. Used by tests against real buckets and by `ciliate
 * identity` diagnostics.
 */
export function auditIdentityStore(entries: Iterable<readonly [string, string]>): StoreAudit {
  const violations: string[] = [];
  const ids = new Map<number, IdentityRecord>();
  const bindings: [string, BindingRecord][] = [];
  for (const [key, value] of entries) {
    const parsed = parseKey(key);
    try {
      if (parsed?.kind === 'identity') {
        const rec = decodeIdentityRecord(value, key);
        if (rec.id !== parsed.id) violations.push(`${key} holds identity ${rec.id}`);
        ids.set(parsed.id, rec);
      } else if (parsed?.kind === 'binding') {
        const rec = decodeBindingRecord(value, key);
        if (labelSetHash(rec.labels) !== parsed.hash) {
          violations.push(`${key} holds labels that do not hash to it`);
        }
        bindings.push([key, rec]);
      }
    } catch (err) {
      violations.push((err as Error).message);
    }
  }
  const boundIds = new Map<number, string>();
  for (const [key, b] of bindings) {
    const rec = ids.get(b.id);
    if (rec === undefined) violations.push(`${key} binds ${b.id} but id.${b.id} does not exist`);
    else if (rec.labels !== b.labels) {
      violations.push(`${key} binds ${b.id} but id.${b.id} holds other labels`);
    }
    const other = boundIds.get(b.id);
    if (other !== undefined) violations.push(`number ${b.id} is bound by ${other} and ${key}`);
    boundIds.set(b.id, key);
  }
  const reservations = [...ids.keys()].filter((id) => !boundIds.has(id)).sort((a, b) => a - b);
  return { violations, bound: bindings.length, reservations };
}
