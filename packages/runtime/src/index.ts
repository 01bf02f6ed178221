export { ConfigError, describeSettings, loadConfig, parseDuration, setting } from './config.js';
export type { ConfigOf, ConfigSource, Setting, Settings } from './config.js';
export { commonSettings } from './common-settings.js';
export { Readiness } from './health.js';
export type { ReadinessCheck } from './health.js';
export { Lease } from './lease.js';
export type { LeaseOptions, LeaseState } from './lease.js';
export type { Component } from './lifecycle.js';
export { LOG_LEVELS, createLogger } from './log.js';
export type { Logger } from './log.js';
export { Counter, Gauge, Histogram, Registry } from './metrics.js';
export type { RuntimeMetrics } from './metrics.js';
export { connectNats, natsConnectionOptions, newInbox } from './nats.js';
export type { NatsLink, NatsSettings } from './nats.js';
export { RequestGate, addEndpoint, createRpcClient, subscribeEvents } from './rpc.js';
export type {
  EndpointDefinition,
  EndpointDeps,
  RefusalReason,
  RequestLimits,
  RpcClient,
} from './rpc.js';
export { allSettings, createService, runMain } from './service.js';
export type {
  RunningService,
  ServiceConfig,
  ServiceContext,
  ServiceDefinition,
  ServiceRunOptions,
} from './service.js';
export {
  SpanKind,
  disabledTracing,
  extractContext,
  inSpan,
  injectContext,
  setupTracing,
  tracesExporterFromEnv,
} from './tracing.js';
export type { Span, Tracer, Tracing } from './tracing.js';
export { discoverInstances, fetchHealth } from './discovery.js';
export type { DiscoveredInstance } from './discovery.js';
export {
  FencedError,
  isCasConflict,
  jetStreamErrorCode,
  storeFailureKind,
} from './controller/errors.js';
export { KvDocument } from './controller/kv-document.js';
export type { DocOp, DocStep, KvDocumentOptions } from './controller/kv-document.js';
export { decodeJson, decodeText, watchKv } from './controller/kv-watch.js';
export type { KvWatch, KvWatchEvent, KvWatchOptions } from './controller/kv-watch.js';
export { Reconciler, createReconcilerMetrics } from './controller/reconciler.js';
export type { PassOutcome, ReconcilerMetrics, ReconcilerOptions } from './controller/reconciler.js';
export { WorkQueue } from './controller/queue.js';
export type { Backoff } from './controller/queue.js';
export {
  credentialEnv,
  credentialFiles,
  principalNatsSettings,
  issueSecurity,
  natsSecurityConfig,
} from './security.js';
export type { IssuedPrincipal, SecurityBundle } from './security.js';
