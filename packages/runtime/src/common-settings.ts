import { hostname } from 'node:os';

import { NODE_NAME_PATTERN, NODE_NAME_RULE } from '@ciliate/contracts';

import { LOG_LEVELS } from './log.js';
import { setting } from './config.js';

/**
 * Far above what a healthy caller keeps in flight (a datapath's CNI ADDs wait for their replies),
 * low enough that a flood is refused before it has queued work for seconds.
 */
export const DEFAULT_MAX_INFLIGHT_REQUESTS = 512;
/** No request of the contracts comes near it; a quarter of nats-server's default max_payload. */
export const DEFAULT_MAX_REQUEST_BYTES = 256 * 1024;

/** Settings every Ciliate service has, before its own. */
export function commonSettings(defaults: { httpAddress: string }) {
  return {
    natsUrl: setting.natsUrls({
      flag: 'nats-url',
      env: 'CILIATE_NATS_URL',
      default: 'nats://127.0.0.1:4222',
      describe: 'NATS server URLs, comma separated',
    }),
    natsCreds: setting.readableFile({
      flag: 'nats-creds',
      env: 'CILIATE_NATS_CREDS',
      describe: 'NATS credentials file (JWT and nkey seed)',
    }),
    natsNkey: setting.readableFile({
      flag: 'nats-nkey',
      env: 'CILIATE_NATS_NKEY',
      describe: 'NATS nkey seed file (when not using a credentials file)',
    }),
    natsTlsCa: setting.readableFile({
      flag: 'nats-tls-ca',
      env: 'CILIATE_NATS_TLS_CA',
      describe: 'CA certificate to verify the NATS server',
    }),
    natsTlsCert: setting.readableFile({
      flag: 'nats-tls-cert',
      env: 'CILIATE_NATS_TLS_CERT',
      describe: 'client certificate for NATS mutual TLS',
    }),
    natsTlsKey: setting.readableFile({
      flag: 'nats-tls-key',
      env: 'CILIATE_NATS_TLS_KEY',
      describe: 'client key for NATS mutual TLS',
    }),
    kvReplicas: setting.int({
      flag: 'kv-replicas',
      env: 'CILIATE_KV_REPLICAS',
      default: 1,
      min: 1,
      max: 5,
      describe: 'replicas of the JetStream KV buckets this service creates (3 on a NATS cluster)',
    }),
    node: setting.string({
      flag: 'node',
      env: 'CILIATE_NODE',
      default: () => hostname(),
      pattern: NODE_NAME_PATTERN,
      hint: `a node name, as Kubernetes names nodes: ${NODE_NAME_RULE}`,
      describe: 'name of the node this instance runs on',
    }),
    httpAddress: setting.listenAddress({
      flag: 'http-address',
      env: 'CILIATE_HTTP_ADDRESS',
      default: defaults.httpAddress,
      describe: 'listener for /metrics, /healthz and /readyz (port 0: any free port; empty: off)',
    }),
    clusterName: setting.string({
      flag: 'cluster-name',
      env: 'CILIATE_CLUSTER_NAME',
      default: 'default',
      describe:
        'cluster name (Cilium rules: at most 32 of a-z, 0-9, "-"); the io.cilium.k8s.policy.cluster label of every pod identity',
    }),
    clusterId: setting.int({
      flag: 'cluster-id',
      env: 'CILIATE_CLUSTER_ID',
      default: 0,
      describe: 'cluster ID for clustermesh (0: not meshed); it goes into identity bits 16-23',
    }),
    maxConnectedClusters: setting.oneOf({
      flag: 'max-connected-clusters',
      env: 'CILIATE_MAX_CONNECTED_CLUSTERS',
      values: ['255', '511'],
      default: '255',
      describe: 'clustermesh size; 511 takes one bit of the cluster-local identity range',
    }),
    maxInflightRequests: setting.int({
      flag: 'max-inflight-requests',
      env: 'CILIATE_MAX_INFLIGHT_REQUESTS',
      default: DEFAULT_MAX_INFLIGHT_REQUESTS,
      min: 1,
      describe:
        'requests this service handles at once, all endpoints together; more are answered `busy` (429) without being decoded',
    }),
    maxRequestBytes: setting.int({
      flag: 'max-request-bytes',
      env: 'CILIATE_MAX_REQUEST_BYTES',
      default: DEFAULT_MAX_REQUEST_BYTES,
      min: 1,
      describe:
        "largest request body in bytes; a larger one is answered `too_large` (413) without being decoded (nats-server's max_payload, 1 MiB by default, bounds it too)",
    }),
    logLevel: setting.oneOf({
      flag: 'log-level',
      env: 'CILIATE_LOG_LEVEL',
      values: LOG_LEVELS,
      default: 'info',
      describe: 'log level',
    }),
  };
}
