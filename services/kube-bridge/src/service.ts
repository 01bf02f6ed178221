// The kube-bridge as a Ciliate service: settings, wiring, and the order things start and stop in
// (the leader election stops first, so a replica gives up its lease and stops writing before its
// caches close).
import { ConfigError, setting, type ServiceDefinition } from '@ciliate/runtime';
import { ResourceStore } from '@ciliate/store';

import { KubeBridge } from './bridge.js';
import { KubeClient, loadKubeConfig, type KubeConfigSource } from './kube/client.js';
import { KubeLeaderElector } from './lease.js';
import { createBridgeMetrics } from './metrics.js';

export const KUBE_BRIDGE_VERSION = '0.1.0';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const kubeBridgeSettings = {
  kubeconfig: setting.readableFile({
    flag: 'kubeconfig',
    env: 'KUBECONFIG',
    describe:
      "kubeconfig file; when unset inside a pod (KUBERNETES_SERVICE_HOST set) the pod's service account is used",
  }),
  inClusterRoot: setting.string({
    flag: 'in-cluster-root',
    env: 'CILIATE_KUBE_BRIDGE_IN_CLUSTER_ROOT',
    default: '/',
    describe:
      "directory under which the pod's service account files are read (var/run/secrets/kubernetes.io/serviceaccount)",
  }),
  leaseNamespace: setting.string({
    flag: 'lease-namespace',
    env: 'CILIATE_KUBE_BRIDGE_LEASE_NAMESPACE',
    default: 'kube-system',
    pattern: DNS_LABEL,
    hint: 'a namespace name',
    describe: 'namespace of the coordination.k8s.io Lease the replicas elect a leader with',
  }),
  leaseName: setting.string({
    flag: 'lease-name',
    env: 'CILIATE_KUBE_BRIDGE_LEASE_NAME',
    default: 'ciliate-kube-bridge',
    pattern: /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
    hint: 'a DNS subdomain',
    describe: 'name of the Lease',
  }),
  leaseDuration: setting.duration({
    flag: 'lease-duration',
    env: 'CILIATE_KUBE_BRIDGE_LEASE_DURATION',
    default: 15_000,
    minMs: 1000,
    describe: 'how long a standby waits, after the last renewal it saw, before taking over',
  }),
  leaseRenewDeadline: setting.duration({
    flag: 'lease-renew-deadline',
    env: 'CILIATE_KUBE_BRIDGE_LEASE_RENEW_DEADLINE',
    default: 10_000,
    minMs: 500,
    describe: 'how long a leader keeps acting without a successful renewal (below the duration)',
  }),
  leaseRetryPeriod: setting.duration({
    flag: 'lease-retry-period',
    env: 'CILIATE_KUBE_BRIDGE_LEASE_RETRY_PERIOD',
    default: 2000,
    minMs: 100,
    describe: 'how often the leader renews and a standby tries',
  }),
  resyncPeriod: setting.duration({
    flag: 'resync-period',
    env: 'CILIATE_KUBE_BRIDGE_RESYNC_PERIOD',
    default: 600_000,
    minMs: 1000,
    describe: 'how often every kind is listed again and every object reconciled',
  }),
  kindRetryPeriod: setting.duration({
    flag: 'kind-retry-period',
    env: 'CILIATE_KUBE_BRIDGE_KIND_RETRY_PERIOD',
    default: 30_000,
    minMs: 100,
    describe: 'how often a kind the API does not serve (CRD not installed) is tried again',
  }),
  workers: setting.int({
    flag: 'workers',
    env: 'CILIATE_KUBE_BRIDGE_WORKERS',
    default: 16,
    min: 1,
    max: 256,
    describe: 'objects reconciled at once',
  }),
};

function kubeConfigSource(kubeconfig: string | undefined, root: string): KubeConfigSource {
  if (kubeconfig) return { kubeconfig };
  if (process.env.KUBERNETES_SERVICE_HOST) return { inCluster: true, root };
  throw new ConfigError(
    'kubeconfig',
    'missing setting --kubeconfig (KUBECONFIG) [kubeconfig]: no kubeconfig given and not running in a pod (KUBERNETES_SERVICE_HOST is unset)',
  );
}

export const kubeBridgeService: ServiceDefinition<typeof kubeBridgeSettings> = {
  component: 'kube-bridge',
  role: 'kube-bridge',
  version: KUBE_BRIDGE_VERSION,
  description:
    'the only Kubernetes API client: informers into the resource store, status write-back and mirrors, under a Lease',
  settings: kubeBridgeSettings,
  httpAddress: '127.0.0.1:9964',
  async setup(ctx) {
    const { config } = ctx;
    if (config.leaseRenewDeadline >= config.leaseDuration) {
      throw new ConfigError(
        'leaseRenewDeadline',
        `invalid setting --lease-renew-deadline: ${config.leaseRenewDeadline}ms must be shorter than --lease-duration (${config.leaseDuration}ms)`,
      );
    }
    if (config.leaseRetryPeriod >= config.leaseRenewDeadline) {
      throw new ConfigError(
        'leaseRetryPeriod',
        `invalid setting --lease-retry-period: ${config.leaseRetryPeriod}ms must be shorter than --lease-renew-deadline (${config.leaseRenewDeadline}ms)`,
      );
    }
    let kc;
    try {
      kc = loadKubeConfig(kubeConfigSource(config.kubeconfig, config.inClusterRoot));
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(
        'kubeconfig',
        `invalid setting --kubeconfig (KUBECONFIG) [kubeconfig]: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const log = ctx.logger('kube-bridge');
    const apiLog = ctx.logger('kube-api');
    const metrics = createBridgeMetrics(ctx.metrics.registry);
    const client = new KubeClient(kc, {
      onRequest: (r) => {
        metrics.apiRequests.inc({ verb: r.verb, resource: r.resource, code: String(r.status) });
        if (r.status === 401 || r.status === 403) {
          apiLog.error(
            { event: 'api.forbidden', verb: r.verb, resource: r.resource, status: r.status },
            `the API refused ${r.verb} on ${r.resource} (${r.status}): check the kube-bridge's RBAC role`,
          );
        }
      },
    });
    const store = await ResourceStore.open(ctx.nc, { replicas: config.kvReplicas });
    const bridge = new KubeBridge({
      client,
      store,
      log,
      metrics,
      resyncMs: config.resyncPeriod,
      unavailableRetryMs: config.kindRetryPeriod,
      workers: config.workers,
    });
    let cachesSynced = false;
    let initialSynced = false;
    ctx.readiness.add('initial-sync', () => {
      // A leader is ready once the store holds the API's objects; a standby once its caches are
      // warm enough to take over.
      if (initialSynced) return { ok: true };
      if (cachesSynced && !bridge.isLeader) return { ok: true, detail: 'standby' };
      return { ok: false, detail: cachesSynced ? 'reconciling' : 'listing the API and the store' };
    });
    ctx.add({
      name: 'bridge',
      start: async () => {
        await bridge.start();
        void bridge.cachesSynced.then(() => (cachesSynced = true));
        void bridge.initialSync.then(() => (initialSynced = true));
      },
      stop: async () => {
        await bridge.stop();
        client.close();
      },
    });
    const identity = `${config.node}_${ctx.instanceId}`;
    const elector = new KubeLeaderElector({
      client,
      namespace: config.leaseNamespace,
      name: config.leaseName,
      identity,
      durationMs: config.leaseDuration,
      renewDeadlineMs: config.leaseRenewDeadline,
      retryPeriodMs: config.leaseRetryPeriod,
      log: ctx.logger('lease'),
      onStarted: () => bridge.setLeader(true),
      onStopped: () => bridge.setLeader(false),
    });
    ctx.add({ name: 'leader-election', start: () => elector.start(), stop: () => elector.stop() });
  },
};
