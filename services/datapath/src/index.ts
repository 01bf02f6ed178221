// @ciliate/datapath: the per-node datapath service (src/main.ts runs it), its CNI plugin and
// endpoint wiring, and the parts that connect it to NATS.
export { CniError, CniErrorCode, asCniError, isCniError } from './cni/errors.js';
export type { CniErrorCodeValue, CniErrorJson } from './cni/errors.js';
export {
  CNI_COMMANDS,
  KNOWN_CNI_ARGS,
  parseCniArgs,
  parseCniEnv,
  validContainerId,
  validIfname,
} from './cni/env.js';
export type { CniArgs, CniCommand, CniEnv } from './cni/env.js';
export { DEFAULT_SOCKET_PATH, parseNetConf, parsePrevResult } from './cni/config.js';
export type { NetConf, ValidAttachment } from './cni/config.js';
export { buildAddResult, formatResult } from './cni/result.js';
export type {
  CniDns,
  CniInterface,
  CniIpConfig,
  CniResult,
  CniRoute,
  EndpointWiring,
} from './cni/result.js';
export {
  CURRENT_VERSION,
  SUPPORTED_VERSIONS,
  checkCommandVersion,
  compareVersions,
  versionResult,
} from './cni/version.js';
export { PROTOCOL_VERSION } from './cni/protocol.js';
export type { AgentReply, AgentRequest, AgentTransport } from './cni/protocol.js';
export { runPlugin } from './cni/plugin.js';
export type { PluginOutput } from './cni/plugin.js';
export { unixTransport } from './cni/socket.js';

export { InitIdentitySource, PoolAddressSource } from './sources/local.js';
export type {
  AddressLease,
  AddressSource,
  IdentitySource,
  PodOwner,
  ResolvedIdentity,
} from './sources/local.js';
export { EndpointManager, endpointLabels, hostIfname, ownerOf } from './endpoints/manager.js';
export type {
  EndpointChange,
  EndpointManagerOptions,
  EndpointRequest,
  EndpointState,
} from './endpoints/manager.js';
export { Netlink } from './netlink/netlink.js';
export { startCniServer } from './cni/server.js';
export type { CniServer, CniServerOptions } from './cni/server.js';
export {
  AgentConfigError,
  DEFAULT_AGENT_CONFIG,
  createAgent,
  resolveAgentConfig,
} from './agent/agent.js';
export type { Agent, AgentConfig, AgentDeps } from './agent/agent.js';

export {
  DATAPATH_VERSION,
  datapathService,
  datapathSettings,
  setupDatapath,
} from './service.js';
export type { DatapathSettings } from './service.js';
export {
  NatsAddressSource,
  NatsIdentitySource,
  REQUEST_DEADLINE_MS,
  routerAddress,
  withDeadline,
} from './sources/nats.js';
export type { NatsIdentitySourceOptions, NatsSourceOptions } from './sources/nats.js';
export { IpcacheMirror, canonicalPrefix, desiredIpcache, diffIpcache } from './ipcache/mirror.js';
export type {
  DesiredIpcacheInput,
  IpcacheChange,
  IpcacheMirrorOptions,
  IpcacheRecordView,
  PeerNode,
  RoutingMode,
} from './ipcache/mirror.js';
export {
  ROUTE_PROTOCOL,
  VXLAN_DEVICE,
  VXLAN_OVERHEAD,
  VXLAN_PORT,
  ensureVxlanDevice,
  peerOf,
  planNodeRoutes,
  recordNodeAddress,
  syncRoutes,
} from './routes/routes.js';
export type { CiliumNodeLike, NodeRoute } from './routes/routes.js';
export {
  EndpointPublisher,
  ciliumEndpointStatus,
  claimOf,
  desiredPublications,
} from './publish/publisher.js';
export type { EndpointPublisherOptions } from './publish/publisher.js';
export {
  formatUnixNanos,
  realtimeOffsetNs,
  startEventPublisher,
  toWireEvent,
} from './events/publisher.js';
export type {
  EventPublisher,
  EventPublisherOptions,
  EventPublisherStats,
  EventResult,
  EventSource,
} from './events/publisher.js';
export {
  DEFAULT_CT_LIMIT,
  addDatapathEndpoints,
  comparePrefixes,
  ctEntryToWire,
  ctFlagsText,
  ctListToWire,
  endpointInfoFromRecord,
  endpointInfos,
  ipcacheEntryToWire,
  ipcacheListToWire,
  labelList,
} from './observe/rpc.js';
export type {
  DatapathEndpointsOptions,
  DatapathMaps,
  EndpointRecord,
  EndpointRegistrar,
} from './observe/rpc.js';
export { packetSummary, protoName, tcpFlagNames } from './events/packet-text.js';
