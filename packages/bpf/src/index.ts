// @ciliate/bpf: the native addon over libbpf and typed views of the datapath's maps and events.
export { BpfError, ErrorCodes, isBpfError, invalidValue } from './errors.js';
export type { BpfErrorDetails } from './errors.js';

export {
  array,
  be16,
  be32,
  bytes,
  camelToSnake,
  decode,
  encode,
  i32,
  i8,
  ipAddrBytes,
  ipBytes,
  ipFromBytes,
  ipv4,
  ipv4Bytes,
  mac,
  pad,
  struct,
  u16,
  u32,
  u64,
  u8,
  view,
} from './codec.js';
export type { Codec, CodecValue, FieldLayout, Layout, PadCodec, StructValue } from './codec.js';

export { BpfObject, BpfProgram, ProgramType } from './object.js';
export type {
  ConstantValue,
  OpenOptions,
  SkbContextIn,
  SkbContextOut,
  TestRunResult,
} from './object.js';
export { BpfMap, MapType, PerCpuMap, TypedMap, UpdateFlags, possibleCpus } from './map.js';
export type { BatchOptions, MapDescription } from './map.js';
export {
  XdpFlags,
  attachTc,
  attachTcx,
  attachXdp,
  destroyTcHook,
  detachTc,
  detachTcxPin,
  detachXdp,
  ifIndex,
  netnsPath,
  queryTc,
  queryXdp,
} from './attach.js';
export type {
  InterfaceRef,
  TcAttachPoint,
  TcAttachment,
  TcFilterRef,
  TcxAttachment,
  XdpAttachment,
  XdpMode,
} from './attach.js';
export { RingBufferReader, openRingBuffer } from './ringbuf.js';
export type { RingBufferOptions } from './ringbuf.js';
export { DEFAULT_BPFFS, ensureBpffs, isBpffs, libbpfVersion } from './bpffs.js';
export type { BtfComposite, BtfMember, BtfType } from './native.js';

export { compareLayout } from './layout-check.js';
export type { LayoutMismatch } from './layout-check.js';

export {
  CAPTURE_LEN,
  CtFlags,
  CtVerdict,
  DROP_REASONS,
  DropReason,
  EndpointFlags,
  Family,
  IpcacheFlags,
  MapNames,
  METRIC_REASON_FORWARDED,
  MetricDir,
  NotifyType,
  Programs,
  TRACE_POINT_NAMES,
  TRACE_REASON_NAMES,
  TraceMode,
  TraceObservationPoint,
  TraceReason,
  TunnelMode,
  HostRouting,
  TupleFlags,
  dropReasonName,
  dropReasonText,
} from './datapath/constants.js';
export {
  DEFAULT_CT_TIMEOUTS,
  DEFAULT_DATAPATH_CONFIG,
  datapathConstants,
  effectiveHostRouting,
  resolveDatapathConfig,
} from './datapath/config.js';
export type { CtTimeouts, DatapathConfig } from './datapath/config.js';
export {
  EVENT_LAYOUTS,
  IPCACHE_STATIC_PREFIX_BITS,
  MAP_LAYOUTS,
  ct4Key,
  ctEntry,
  dropNotify,
  endpointInfo,
  endpointKey,
  endpointKeyRaw,
  eventStats,
  ipcacheKey,
  ipcacheKeyRaw,
  ipcacheValue,
  ipcacheValueRaw,
  metricsKey,
  metricsValue,
  traceNotify,
} from './datapath/layouts.js';
export type {
  Ct4Key,
  CtEntry,
  DropNotify,
  EndpointInfo,
  EndpointKey,
  EventStats,
  IpcacheKey,
  IpcacheValue,
  MapLayout,
  MetricsKey,
  MetricsValue,
  TraceNotify,
} from './datapath/layouts.js';
export { decodeEvent, summarizePacket } from './datapath/events.js';
export type {
  DatapathEvent,
  DropEvent,
  PacketSummary,
  TraceEvent,
  UnknownEvent,
} from './datapath/events.js';
export { Datapath, bpfObjectPath, ctExpiresIn, monotonicSeconds } from './datapath/datapath.js';
export type {
  AttachOptions,
  DatapathObjectName,
  DatapathOptions,
  MetricsRow,
} from './datapath/datapath.js';
