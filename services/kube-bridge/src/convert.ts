// The pure core of the bridge: how an API object becomes a store object and back, and when two
// versions of an object are the same. Plain data in, plain data out.
import { createHash } from 'node:crypto';

import {
  apiVersionOf,
  toStorageVersion,
  validateObject,
  type KubeObject,
  type ManifestProblem,
  type ResourceObject,
} from '@ciliate/resources';

import type { BridgedKind } from './kinds.js';

/** Who wrote an object: on store objects `kubernetes` (imported by the bridge), on API objects `ciliate` (a mirror the bridge writes). */
export const SOURCE_ANNOTATION = 'ciliate.io/source';
export const SOURCE_KUBERNETES = 'kubernetes';
export const SOURCE_CILIATE = 'ciliate';
/** On mirrors in the API: the hash of what the bridge last wrote, so that removals are seen. */
export const HASH_ANNOTATION = 'ciliate.io/desired-hash';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function sourceOf(obj: KubeObject | undefined): string | undefined {
  return obj?.metadata.annotations?.[SOURCE_ANNOTATION];
}

/** A store object the bridge put there (and may update or delete). */
export function importedByBridge(obj: KubeObject | undefined): boolean {
  return sourceOf(obj) === SOURCE_KUBERNETES;
}

/** An API object that is Ciliate's mirror of a store object (never imported back). */
export function mirroredByBridge(obj: Json | undefined): boolean {
  const md = obj?.metadata;
  return (
    isObject(md) && isObject(md.annotations) && md.annotations[SOURCE_ANNOTATION] === SOURCE_CILIATE
  );
}

// Metadata the API server sets that means nothing in the store (or is the store's own).
const DROPPED_META = new Set(['managedFields', 'resourceVersion', 'selfLink']);

export type FromApiResult =
  | {
      ok: true;
      object: ResourceObject;
      /** The API's status, for kinds whose status is imported. */
      status: unknown;
      /** Fields Ciliate's model does not have, dropped (kubectl-style lines). */
      warnings: string[];
    }
  | { ok: false; problem: ManifestProblem };

/**
 * An object from the API (list items lack apiVersion and kind; they are given) as the store keeps
 * it: validated and defaulted, in the storage version, the API's uid, creation time and
 * generation kept, managed fields dropped, marked as imported from Kubernetes. Fields Ciliate
 * does not model are dropped with a warning rather than refusing the object (the API server may
 * be newer than the model); invalid values are a problem naming the field.
 */
export function fromApi(raw: Json, k: BridgedKind, version: string): FromApiResult {
  const md = isObject(raw.metadata) ? raw.metadata : {};
  const meta: Json = {};
  for (const [key, v] of Object.entries(md)) if (!DROPPED_META.has(key)) meta[key] = v;
  meta.annotations = {
    ...(isObject(md.annotations) ? md.annotations : {}),
    [SOURCE_ANNOTATION]: SOURCE_KUBERNETES,
  };
  const input: Json = {
    ...raw,
    apiVersion: apiVersionOf(k.group, version),
    kind: k.kind,
    metadata: meta,
  };
  const source = `kubernetes ${k.kind}`;
  const r = validateObject(input, { fieldValidation: 'Warn', where: { source } });
  if (!r.ok) return { ok: false, problem: r.problem };
  const converted = toStorageVersion(r.object) as ResourceObject & { status?: unknown };
  const { status, ...object } = converted;
  return {
    ok: true,
    object: object,
    status: k.statusMode === 'import' ? status : undefined,
    warnings: r.warnings,
  };
}

/** JSON with object keys sorted: equal data gives equal text. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    isObject(val)
      ? Object.fromEntries(
          Object.keys(val)
            .sort()
            .map((key) => [key, val[key]]),
        )
      : val,
  );
}

export function hashOf(v: unknown): string {
  return createHash('sha256').update(canonicalJson(v)).digest('hex').slice(0, 16);
}

/**
 * Whether the store already holds `desired` (a fromApi result): everything but resourceVersion,
 * and generation where the API sets none (the store then counts its own).
 */
export function sameStoreObject(desired: KubeObject, stored: KubeObject): boolean {
  const strip = (o: KubeObject, keepGeneration: boolean): unknown => {
    const m = { ...(o.metadata as Json) };
    delete m.resourceVersion;
    if (!keepGeneration) delete m.generation;
    const { status: _s, ...rest } = o as KubeObject & { status?: unknown };
    return { ...rest, metadata: m };
  };
  const gen = desired.metadata.generation !== undefined;
  return canonicalJson(strip(desired, gen)) === canonicalJson(strip(stored, gen));
}

/**
 * `want` is contained in `have`: every key of an object in `want` has a contained value in
 * `have` (extra keys in `have` are the API server's defaults and allowed); lists have the same
 * length and contained items; a missing list equals an empty one.
 */
export function contains(want: unknown, have: unknown): boolean {
  if (Array.isArray(want)) {
    const h = have === undefined ? [] : have;
    return Array.isArray(h) && h.length === want.length && want.every((w, i) => contains(w, h[i]));
  }
  if (isObject(want)) {
    const h = have === undefined ? {} : have;
    if (!isObject(h)) return false;
    return Object.entries(want).every(([key, w]) => w === undefined || contains(w, h[key]));
  }
  return want === have;
}

export interface MirrorObject {
  /** The object to create or update, without status for kinds with a status subresource. */
  body: Json;
  /** The status to write through /status (kinds with a status subresource), if any. */
  status: Json | undefined;
  hash: string;
}

// Store-only metadata: the API assigns its own uid, times and versions; finalizers in the API
// would wait for a controller that does not exist.
const MIRROR_META = ['name', 'namespace', 'labels', 'annotations', 'ownerReferences'] as const;

/** What the API should hold for a store object of a mirror kind (and its status-channel value). */
export function toMirror(stored: KubeObject, status: unknown, k: BridgedKind): MirrorObject {
  const {
    apiVersion: _v,
    kind: _k,
    metadata,
    status: ownStatus,
    ...fields
  } = stored as KubeObject & Json & { status?: unknown };
  const md = metadata as Json;
  const meta: Json = {};
  for (const key of MIRROR_META) if (md[key] !== undefined) meta[key] = md[key];
  const st = (status ?? ownStatus) as Json | undefined;
  const annotations: Json = {
    ...(isObject(md.annotations) ? md.annotations : {}),
    [SOURCE_ANNOTATION]: SOURCE_CILIATE,
  };
  const hash = hashOf({ labels: md.labels, annotations, fields, status: st });
  meta.annotations = { ...annotations, [HASH_ANNOTATION]: hash };
  if (!k.namespaced) delete meta.namespace;
  const body: Json = {
    apiVersion: apiVersionOf(k.group, k.descriptor.storageVersion),
    kind: k.kind,
    metadata: meta,
    ...fields,
  };
  if (!k.statusSubresource && st !== undefined) body.status = st;
  return { body, status: k.statusSubresource ? st : undefined, hash };
}

/** Whether the API copy of a mirror matches what the store wants. */
export function mirrorInSync(desired: MirrorObject, actual: Json): boolean {
  const md = isObject(actual.metadata) ? actual.metadata : {};
  const ann = isObject(md.annotations) ? md.annotations : {};
  if (ann[HASH_ANNOTATION] !== desired.hash) return false;
  // Labels select (identities, policies): an added one is a change, not a default.
  const wantLabels = ((desired.body.metadata as Json).labels ?? {}) as Json;
  if (canonicalJson(wantLabels) !== canonicalJson(md.labels ?? {})) return false;
  const { metadata: wantMeta, ...wantRest } = desired.body;
  const want = {
    ...wantRest,
    metadata: { labels: (wantMeta as Json).labels, annotations: (wantMeta as Json).annotations },
  };
  if (!contains(want, actual)) return false;
  return desired.status === undefined || contains(desired.status, actual.status);
}

/**
 * The status to patch into the API for a `writeback` kind, or undefined when the API already has
 * it. Only the owned field is replaced; the rest of the API's status is kept.
 */
export function writebackStatus(
  k: BridgedKind,
  channel: unknown,
  apiStatus: unknown,
): Json | undefined {
  const field = k.ownedStatusField;
  if (!field || !isObject(channel) || !(field in channel)) return undefined;
  let want = channel[field];
  // An empty loadBalancer is how a service releases the address; compared as "no ingress".
  if (field === 'loadBalancer') {
    const lb = isObject(want) ? want : {};
    want = { ...lb, ingress: Array.isArray(lb.ingress) ? lb.ingress : [] };
  }
  const current = isObject(apiStatus) ? apiStatus : {};
  if (contains(want, current[field])) return undefined;
  return { ...current, [field]: want };
}

export type ImportAction =
  /** The store already holds the API's object (or there is nothing on either side). */
  | 'none'
  /** Write the API's object into the store. */
  | 'put'
  /** The API's object has a new uid (deleted and created again): delete, then put. */
  | 'replace'
  /** The API no longer has an object the bridge imported: delete it from the store. */
  | 'delete'
  /** The store holds a same-named object from another source: leave both alone. */
  | 'conflict';

/**
 * What importing one object means, from the API's object as the store would keep it (`desired`,
 * undefined when the API has none, or only Ciliate's own mirror) and what the store holds.
 */
export function importAction(
  desired: KubeObject | undefined,
  stored: KubeObject | undefined,
): ImportAction {
  if (!desired) return stored && importedByBridge(stored) ? 'delete' : 'none';
  if (!stored) return 'put';
  if (!importedByBridge(stored)) return 'conflict';
  if (stored.metadata.uid !== desired.metadata.uid) return 'replace';
  return sameStoreObject(desired, stored) ? 'none' : 'put';
}
