// @ciliate/kube-bridge: the one Kubernetes API client of a Ciliate cluster.
export { KubeBridge, KUBERNETES_SOURCE } from './bridge.js';
export type { KubeBridgeOptions } from './bridge.js';
export {
  HASH_ANNOTATION,
  SOURCE_ANNOTATION,
  SOURCE_CILIATE,
  SOURCE_KUBERNETES,
  canonicalJson,
  contains,
  fromApi,
  importAction,
  importedByBridge,
  mirrorInSync,
  mirroredByBridge,
  sameStoreObject,
  toMirror,
  writebackStatus,
} from './convert.js';
export type { FromApiResult, ImportAction, MirrorObject } from './convert.js';
export { bridgedKind, bridgedKinds, collectionPath, objectPath, rbacName } from './kinds.js';
export type { BridgedKind, Direction, StatusMode } from './kinds.js';
export { KubeApiError, KubeClient, loadKubeConfig, rbacResource, rbacVerb } from './kube/client.js';
export type {
  KubeConfigSource,
  KubeList,
  RequestRecord,
  WatchEvent,
  WatchStream,
} from './kube/client.js';
export { KubeLeaderElector, leaseDecision, microTime } from './lease.js';
export type { KubeLeaseOptions, LeaseDecision, LeaseSpec } from './lease.js';
export { createBridgeMetrics } from './metrics.js';
export type { BridgeMetrics } from './metrics.js';
export { KUBE_BRIDGE_VERSION, kubeBridgeService, kubeBridgeSettings } from './service.js';
