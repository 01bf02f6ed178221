// core/v1 kinds: Pod, Namespace, Node, Service. Fields that matter to networking are modelled and
// validated; the rest of what Kubernetes defines (probes, volumes, resources...) is accepted as
// opaque so that real manifests load, while a field Kubernetes does not define is still rejected.

import { z } from 'zod';

import { dns1123Label, parseCidr, parseIp } from '../validation.js';
import {
  checkIntOrStringPort,
  cidrString,
  conditions,
  crossCheck,
  dnsLabelString,
  ianaServiceNameString,
  int32,
  int64,
  intOrString,
  ipString,
  labelMap,
  objectMeta,
  opaque,
  portNumber,
  report,
  uniqueBy,
} from './kit.js';

export const protocolEnum = z.enum(['TCP', 'UDP', 'SCTP']);

// ---------------------------------------------------------------------------------------------
// Pod

const containerPort = z.strictObject({
  name: ianaServiceNameString().optional(),
  containerPort: portNumber(),
  hostPort: int32(0, 65535).optional(),
  hostIP: ipString().optional(),
  protocol: protocolEnum.default('TCP'),
});

const containerFields = {
  name: dnsLabelString(),
  image: z.string().optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  workingDir: z.string().optional(),
  ports: z.array(containerPort).optional(),
  imagePullPolicy: z.enum(['Always', 'Never', 'IfNotPresent']).optional(),
  restartPolicy: z.enum(['Always', 'Never', 'OnFailure']).optional(),
  envFrom: opaque().optional(),
  env: opaque().optional(),
  resources: opaque().optional(),
  resizePolicy: opaque().optional(),
  restartPolicyRules: opaque().optional(),
  volumeMounts: opaque().optional(),
  volumeDevices: opaque().optional(),
  livenessProbe: opaque().optional(),
  readinessProbe: opaque().optional(),
  startupProbe: opaque().optional(),
  lifecycle: opaque().optional(),
  terminationMessagePath: z.string().optional(),
  terminationMessagePolicy: z.enum(['File', 'FallbackToLogsOnError']).optional(),
  securityContext: opaque().optional(),
  stdin: z.boolean().optional(),
  stdinOnce: z.boolean().optional(),
  tty: z.boolean().optional(),
};

const container = z.strictObject(containerFields);
const ephemeralContainer = z.strictObject({
  ...containerFields,
  targetContainerName: z.string().optional(),
});

const podSpec = crossCheck(
  z.strictObject({
    containers: z.array(container).min(1),
    initContainers: z.array(container).optional(),
    ephemeralContainers: z.array(ephemeralContainer).optional(),
    volumes: opaque().optional(),
    restartPolicy: z.enum(['Always', 'OnFailure', 'Never']).default('Always'),
    terminationGracePeriodSeconds: int64(0).optional(),
    activeDeadlineSeconds: int64(1).optional(),
    dnsPolicy: z
      .enum(['ClusterFirstWithHostNet', 'ClusterFirst', 'Default', 'None'])
      .default('ClusterFirst'),
    nodeSelector: labelMap().optional(),
    serviceAccountName: z.string().optional(),
    serviceAccount: z.string().optional(),
    automountServiceAccountToken: z.boolean().optional(),
    nodeName: z.string().optional(),
    hostNetwork: z.boolean().optional(),
    hostPID: z.boolean().optional(),
    hostIPC: z.boolean().optional(),
    shareProcessNamespace: z.boolean().optional(),
    securityContext: opaque().optional(),
    imagePullSecrets: opaque().optional(),
    hostname: z.string().optional(),
    hostnameOverride: z.string().optional(),
    subdomain: z.string().optional(),
    affinity: opaque().optional(),
    schedulerName: z.string().optional(),
    tolerations: opaque().optional(),
    hostAliases: opaque().optional(),
    priorityClassName: z.string().optional(),
    priority: int32().optional(),
    dnsConfig: opaque().optional(),
    readinessGates: opaque().optional(),
    runtimeClassName: z.string().optional(),
    enableServiceLinks: z.boolean().optional(),
    preemptionPolicy: z.enum(['PreemptLowerPriority', 'Never']).optional(),
    overhead: opaque().optional(),
    topologySpreadConstraints: opaque().optional(),
    setHostnameAsFQDN: z.boolean().optional(),
    os: opaque().optional(),
    hostUsers: z.boolean().optional(),
    schedulingGates: opaque().optional(),
    resourceClaims: opaque().optional(),
    resources: opaque().optional(),
  }),
  (spec, ctx) => {
    const all = [
      ...(Array.isArray(spec.containers) ? spec.containers : []),
      ...(spec.initContainers ?? []),
    ];
    uniqueBy(
      all,
      (c) => c.name,
      ctx,
      (i) =>
        i < (spec.containers?.length ?? 0)
          ? `containers[${i}].name`
          : `initContainers[${i - (spec.containers?.length ?? 0)}].name`,
    );
    if (spec.hostNetwork === true) {
      (spec.containers ?? []).forEach((c, i) =>
        (c.ports ?? []).forEach((p, j) => {
          if (p && p.hostPort !== undefined && p.hostPort !== 0 && p.hostPort !== p.containerPort) {
            report(
              ctx,
              'Invalid value',
              `containers[${i}].ports[${j}].hostPort`,
              'must match `containerPort` when `hostNetwork` is true',
              p.hostPort,
            );
          }
        }),
      );
    }
  },
);

const podIP = z.looseObject({ ip: ipString() });

const podStatus = z.looseObject({
  phase: z.string().optional(),
  podIP: ipString().optional(),
  podIPs: z.array(podIP).optional(),
  hostIP: z.string().optional(),
  hostIPs: z.array(z.looseObject({ ip: z.string() })).optional(),
  nominatedNodeName: z.string().optional(),
  conditions: z.array(z.looseObject({ type: z.string(), status: z.string() })).optional(),
  message: z.string().optional(),
  reason: z.string().optional(),
  startTime: z.string().optional(),
  qosClass: z.string().optional(),
});

export const podV1 = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Pod'),
  metadata: objectMeta('subdomain'),
  spec: podSpec,
  status: podStatus.optional(),
});
export type Pod = z.output<typeof podV1>;

/**
 * What the API server's admission adds to every pod: the service account (`default` unless given;
 * the deprecated `serviceAccount` field is copied over). Cilium derives an identity label from it,
 * so standalone Ciliate must see the same value a cluster would.
 */
export function applyPodDefaults(pod: Pod): void {
  const spec = pod.spec;
  if (!spec.serviceAccountName) spec.serviceAccountName = spec.serviceAccount || 'default';
}

// ---------------------------------------------------------------------------------------------
// Namespace

export const namespaceV1 = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Namespace'),
  metadata: objectMeta('label'),
  spec: z.strictObject({ finalizers: z.array(z.string()).optional() }).optional(),
  status: z
    .looseObject({
      phase: z.enum(['Active', 'Terminating']).optional(),
      conditions: z.array(z.looseObject({})).optional(),
    })
    .optional(),
});
export type Namespace = z.output<typeof namespaceV1>;

/**
 * The label the API server puts on every namespace (NamespaceDefaultLabelName, Kubernetes 1.21+);
 * Cilium's identities include it as `io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name`.
 */
export function applyNamespaceDefaults(ns: Namespace): void {
  ns.metadata.labels = {
    ...(ns.metadata.labels ?? {}),
    'kubernetes.io/metadata.name': ns.metadata.name ?? '',
  };
}

// ---------------------------------------------------------------------------------------------
// Node

const taint = z.strictObject({
  key: z.string(),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
  timeAdded: z.string().nullable().optional(),
});

const nodeSpec = crossCheck(
  z.strictObject({
    podCIDR: cidrString().optional(),
    podCIDRs: z.array(cidrString()).max(2).optional(),
    providerID: z.string().optional(),
    unschedulable: z.boolean().optional(),
    taints: z.array(taint).optional(),
    configSource: opaque().optional(),
    externalID: z.string().optional(),
  }),
  (spec, ctx) => {
    const cidrs = spec.podCIDRs ?? [];
    if (spec.podCIDR && cidrs.length > 0 && cidrs[0] !== spec.podCIDR) {
      report(
        ctx,
        'Invalid value',
        'podCIDR',
        'must match the first entry of podCIDRs',
        spec.podCIDR,
      );
    }
    if (cidrs.length === 2) {
      const a = typeof cidrs[0] === 'string' ? parseCidr(cidrs[0]) : undefined;
      const b = typeof cidrs[1] === 'string' ? parseCidr(cidrs[1]) : undefined;
      if (a && b && typeof a !== 'string' && typeof b !== 'string' && a.family === b.family) {
        report(
          ctx,
          'Invalid value',
          'podCIDRs',
          'may specify no more than one CIDR for each IP family',
          cidrs,
        );
      }
    }
  },
);

const nodeAddress = z.looseObject({
  type: z.string(),
  address: z.string(),
});

const nodeStatus = z.looseObject({
  addresses: z.array(nodeAddress).optional(),
  conditions: z.array(z.looseObject({ type: z.string(), status: z.string() })).optional(),
  capacity: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
  allocatable: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
  phase: z.string().optional(),
  nodeInfo: z.looseObject({}).optional(),
});

export const nodeV1 = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Node'),
  metadata: objectMeta('subdomain'),
  spec: nodeSpec.optional(),
  status: nodeStatus.optional(),
});
export type Node = z.output<typeof nodeV1>;

// ---------------------------------------------------------------------------------------------
// Service

const servicePort = z.strictObject({
  name: z.string().optional(),
  protocol: protocolEnum.default('TCP'),
  appProtocol: z.string().optional(),
  port: portNumber(),
  targetPort: intOrString().optional(),
  nodePort: int32(0, 65535).optional(),
});

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;

const serviceSpec = crossCheck(
  z.strictObject({
    type: z.enum(SERVICE_TYPES).default('ClusterIP'),
    selector: labelMap().optional(),
    ports: z.array(servicePort).optional(),
    clusterIP: z.string().optional(),
    clusterIPs: z.array(z.string()).max(2).optional(),
    externalIPs: z.array(ipString()).optional(),
    sessionAffinity: z.enum(['ClientIP', 'None']).default('None'),
    sessionAffinityConfig: z
      .strictObject({
        clientIP: z.strictObject({ timeoutSeconds: int32(1, 86400).optional() }).optional(),
      })
      .optional(),
    loadBalancerIP: z.string().optional(),
    loadBalancerSourceRanges: z.array(z.string()).optional(),
    loadBalancerClass: z.string().optional(),
    externalName: z.string().optional(),
    externalTrafficPolicy: z.enum(['Cluster', 'Local']).optional(),
    internalTrafficPolicy: z.enum(['Cluster', 'Local']).optional(),
    healthCheckNodePort: int32(0, 65535).optional(),
    publishNotReadyAddresses: z.boolean().optional(),
    ipFamilies: z
      .array(z.enum(['IPv4', 'IPv6']))
      .max(2)
      .optional(),
    ipFamilyPolicy: z.enum(['SingleStack', 'PreferDualStack', 'RequireDualStack']).optional(),
    allocateLoadBalancerNodePorts: z.boolean().optional(),
    trafficDistribution: z.string().optional(),
  }),
  (spec, ctx) => {
    const type = spec.type;
    const ports = Array.isArray(spec.ports) ? spec.ports : [];
    const headless = spec.clusterIP === 'None';
    if (type !== 'ExternalName' && !headless && ports.length === 0) {
      report(ctx, 'Required value', 'ports', '');
    }
    if (type === 'ExternalName') {
      if (!spec.externalName) report(ctx, 'Required value', 'externalName', '');
    }
    ports.forEach((p, i) => {
      if (!p || typeof p !== 'object') return;
      if (ports.length > 1 && !p.name) report(ctx, 'Required value', `ports[${i}].name`, '');
      if (typeof p.name === 'string' && p.name !== '') {
        for (const d of dns1123Label(p.name))
          report(ctx, 'Invalid value', `ports[${i}].name`, d, p.name);
      }
      if (p.targetPort !== undefined)
        checkIntOrStringPort(ctx, p.targetPort, `ports[${i}].targetPort`);
      if (
        p.nodePort !== undefined &&
        p.nodePort !== 0 &&
        (type === 'ClusterIP' || type === 'ExternalName')
      ) {
        report(
          ctx,
          'Forbidden',
          `ports[${i}].nodePort`,
          'may not be used when `type` is ' + `'${type}'`,
        );
      }
    });
    uniqueBy(
      ports,
      (p) => p.name || undefined,
      ctx,
      (i) => `ports[${i}].name`,
    );
    uniqueBy(
      ports,
      (p) => `${p.port}/${p.protocol}`,
      ctx,
      (i) => `ports[${i}]`,
    );
    const ips = [
      ...(spec.clusterIP !== undefined ? [spec.clusterIP] : []),
      ...(spec.clusterIPs ?? []),
    ];
    ips.forEach((ip) => {
      if (typeof ip !== 'string' || ip === '' || ip === 'None') return;
      if (!parseIp(ip)) {
        report(
          ctx,
          'Invalid value',
          'clusterIP',
          "must be empty, 'None', or a valid IP address",
          ip,
        );
      }
    });
    if (
      spec.clusterIP !== undefined &&
      spec.clusterIPs !== undefined &&
      spec.clusterIPs.length > 0 &&
      spec.clusterIPs[0] !== spec.clusterIP
    ) {
      report(
        ctx,
        'Invalid value',
        'clusterIPs',
        'first value must match `clusterIP`',
        spec.clusterIPs,
      );
    }
    (spec.loadBalancerSourceRanges ?? []).forEach((r, i) => {
      if (typeof r !== 'string') return;
      const c = parseCidr(r.trim());
      if (typeof c === 'string')
        report(ctx, 'Invalid value', `loadBalancerSourceRanges[${i}]`, c, r);
    });
    if (spec.loadBalancerIP && !parseIp(spec.loadBalancerIP)) {
      report(
        ctx,
        'Invalid value',
        'loadBalancerIP',
        'must be a valid IP address',
        spec.loadBalancerIP,
      );
    }
    if (spec.loadBalancerClass !== undefined && type !== 'LoadBalancer') {
      report(
        ctx,
        'Forbidden',
        'loadBalancerClass',
        "may only be used when `type` is 'LoadBalancer'",
      );
    }
    if (
      spec.externalTrafficPolicy !== undefined &&
      type !== 'NodePort' &&
      type !== 'LoadBalancer' &&
      (spec.externalIPs ?? []).length === 0
    ) {
      report(
        ctx,
        'Invalid value',
        'externalTrafficPolicy',
        'may only be set for externally-accessible services',
        spec.externalTrafficPolicy,
      );
    }
    uniqueBy(
      spec.ipFamilies,
      (f) => f,
      ctx,
      (i) => `ipFamilies[${i}]`,
    );
  },
);

const portStatus = z.looseObject({
  port: portNumber(),
  protocol: protocolEnum,
  error: z.string().optional(),
});

const serviceStatus = z.looseObject({
  loadBalancer: z
    .looseObject({
      ingress: z
        .array(
          z.looseObject({
            ip: ipString().optional(),
            hostname: z.string().optional(),
            ipMode: z.enum(['VIP', 'Proxy']).optional(),
            ports: z.array(portStatus).optional(),
          }),
        )
        .optional(),
    })
    .optional(),
  conditions: conditions().optional(),
});

export const serviceV1 = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Service'),
  metadata: objectMeta('dns1035'),
  spec: serviceSpec,
  status: serviceStatus.optional(),
});
export type Service = z.output<typeof serviceV1>;

/** The API server's defaults for the fields whose default depends on other fields. */
export function applyServiceDefaults(svc: Service): void {
  const spec = svc.spec;
  for (const p of spec.ports ?? []) p.targetPort ??= p.port;
  if (spec.type !== 'ExternalName') spec.internalTrafficPolicy ??= 'Cluster';
  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer')
    spec.externalTrafficPolicy ??= 'Cluster';
  if (spec.type === 'LoadBalancer') spec.allocateLoadBalancerNodePorts ??= true;
  if (spec.sessionAffinity === 'ClientIP') {
    spec.sessionAffinityConfig ??= {};
    spec.sessionAffinityConfig.clientIP ??= {};
    spec.sessionAffinityConfig.clientIP.timeoutSeconds ??= 10800;
  }
}
