// @ciliate/datapath-core: what the datapath service plans, without doing any of it. Each
// function takes the facts (ipcache records, nodes, endpoints, Pods) and answers the desired
// state or the decision; services/datapath applies it to the kernel and to NATS.
export { canonicalPrefix, desiredIpcache, diffIpcache } from './ipcache.js';
export type {
  DesiredIpcacheInput,
  IpcacheChange,
  IpcacheEntry,
  IpcacheRecordView,
  PeerNode,
  RoutingMode,
} from './ipcache.js';
export {
  ROUTE_PROTOCOL,
  VXLAN_DEVICE,
  VXLAN_OVERHEAD,
  VXLAN_PORT,
  peerOf,
  planNodeRoutes,
} from './routes.js';
export type { CiliumNodeLike, NodeRoute } from './routes.js';
export { MIN_ROUTED_PREFIX, admitPeers } from './admit.js';
export type { AdmitPeersInput, AdmittedPeers, RouteRefusal, RouteRefusalReason } from './admit.js';
export { IPCACHE_SOURCE, ciliumEndpointStatus, claimOf, desiredPublications } from './publish.js';
export type { CepDesired, PublishedEndpoint, Publications } from './publish.js';
export {
  identityInputsOf,
  newIdentityInputs,
  planIdentityFollow,
  sameIdentityInputs,
} from './identity.js';
export type {
  FollowedEndpoint,
  IdentityFollowPlan,
  IdentityInputs,
  PodLike,
  PodLookup,
} from './identity.js';
