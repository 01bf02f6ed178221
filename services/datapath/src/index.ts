// @ciliate/datapath: the per-node datapath service's CNI plugin and endpoint wiring.
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

export { InitIdentitySource, PoolAddressSource } from './agent/sources.js';
export type { AddressLease, AddressSource, IdentitySource, PodOwner } from './agent/sources.js';
export { EndpointManager, endpointLabels, hostIfname, ownerOf } from './agent/endpoints.js';
export type { EndpointManagerOptions, EndpointRequest, EndpointState } from './agent/endpoints.js';
export { Netlink } from './agent/netlink.js';
export { startCniServer } from './agent/server.js';
export type { CniServer, CniServerOptions } from './agent/server.js';
export {
  AgentConfigError,
  DEFAULT_AGENT_CONFIG,
  createAgent,
  resolveAgentConfig,
} from './agent/agent.js';
export type { Agent, AgentConfig, AgentDeps } from './agent/agent.js';

export {
  formatUnixNanos,
  realtimeOffsetNs,
  startEventPublisher,
  toWireEvent,
} from './agent/events.js';
export type {
  EventPublisher,
  EventPublisherOptions,
  EventPublisherStats,
  EventResult,
  EventSource,
} from './agent/events.js';
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
} from './agent/rpc.js';
export type {
  DatapathEndpointsOptions,
  DatapathMaps,
  EndpointRecord,
  EndpointRegistrar,
} from './agent/rpc.js';
export { packetSummary, protoName, tcpFlagNames } from './agent/packet-text.js';
