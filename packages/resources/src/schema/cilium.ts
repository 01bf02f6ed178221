// Cilium's bookkeeping kinds (cilium.io/v2): CiliumNode, CiliumIdentity, CiliumEndpoint. Ciliate
// writes these as mirrors of its own state; they are modelled so they can be read back and
// validated, with the cloud-IPAM blocks (ENI, Azure, AlibabaCloud) kept but not interpreted.

import { z } from 'zod';

import { parseSourcedKey } from '@ciliate/contracts';
import {
  cidrString,
  crossCheck,
  int32,
  int64,
  ipString,
  objectMeta,
  opaque,
  report,
  stringMap,
} from './kit.js';

const allocationIP = z.strictObject({
  owner: z.string().optional(),
  resource: z.string().optional(),
});

const ipamSpec = z.strictObject({
  podCIDRs: z.array(cidrString()).optional(),
  pool: z.record(z.string(), allocationIP).optional(),
  'ipv6-pool': z.record(z.string(), allocationIP).optional(),
  pools: z
    .strictObject({
      requested: z
        .array(
          z.strictObject({
            pool: z.string(),
            needed: z
              .strictObject({
                'ipv4-addrs': int32(0).optional(),
                'ipv6-addrs': int32(0).optional(),
              })
              .optional(),
          }),
        )
        .optional(),
      allocated: z
        .array(z.strictObject({ pool: z.string(), cidrs: z.array(cidrString()).optional() }))
        .optional(),
    })
    .optional(),
  'min-allocate': int32(0).optional(),
  'max-allocate': int32(0).optional(),
  'pre-allocate': int32(0).optional(),
  'max-above-watermark': int32(0).optional(),
  'pod-cidr-allocation-threshold': int32(0).optional(),
  'pod-cidr-release-threshold': int32(0).optional(),
  'static-ip-tags': stringMap().optional(),
});

const addressPair = z.strictObject({
  ipv4: ipString().optional(),
  ipv6: ipString().optional(),
});

const ciliumNodeSpec = z.strictObject({
  'instance-id': z.string().optional(),
  bootid: z.string().optional(),
  addresses: z
    .array(
      z.strictObject({
        type: z.string().optional(),
        ip: ipString().optional(),
      }),
    )
    .optional(),
  health: addressPair.optional(),
  ingress: addressPair.optional(),
  encryption: z.strictObject({ key: int32(0).optional() }).optional(),
  nodeidentity: int64(0).optional(),
  ipam: ipamSpec.optional(),
  eni: opaque().optional(),
  azure: opaque().optional(),
  'alibaba-cloud': opaque().optional(),
});

const ciliumNodeStatus = z.looseObject({
  ipam: z
    .looseObject({
      used: z.record(z.string(), allocationIP).optional(),
      'ipv6-used': z.record(z.string(), allocationIP).optional(),
      'operator-status': z.looseObject({ error: z.string().optional() }).optional(),
      'release-ips': z
        .record(
          z.string(),
          z.enum(['marked-for-release', 'ready-for-release', 'do-not-release', 'released']),
        )
        .optional(),
      'ipv6-release-ips': z
        .record(
          z.string(),
          z.enum(['marked-for-release', 'ready-for-release', 'do-not-release', 'released']),
        )
        .optional(),
      'pod-cidrs': z
        .record(
          z.string(),
          z.looseObject({ status: z.enum(['released', 'depleted', 'in-use']).optional() }),
        )
        .optional(),
    })
    .optional(),
});

export const ciliumNodeV2 = z.strictObject({
  apiVersion: z.literal('cilium.io/v2'),
  kind: z.literal('CiliumNode'),
  metadata: objectMeta('subdomain'),
  spec: ciliumNodeSpec,
  status: ciliumNodeStatus.optional(),
});
export type CiliumNode = z.output<typeof ciliumNodeV2>;

// ---------------------------------------------------------------------------------------------

export const ciliumIdentityV2 = crossCheck(
  z.strictObject({
    apiVersion: z.literal('cilium.io/v2'),
    kind: z.literal('CiliumIdentity'),
    metadata: objectMeta('numeric-identity'),
    'security-labels': stringMap(),
    status: z.looseObject({ nodes: z.record(z.string(), z.string()).optional() }).optional(),
  }),
  (id, ctx) => {
    for (const k of Object.keys(id['security-labels'] ?? {})) {
      const { source, key } = parseSourcedKey(k, '');
      if (source === '' || key === '') {
        report(ctx, 'Invalid value', 'security-labels', 'keys must be of the form "source:key"', k);
      }
    }
  },
);
export type CiliumIdentity = z.output<typeof ciliumIdentityV2>;

// ---------------------------------------------------------------------------------------------

const ENDPOINT_STATES = [
  'creating',
  'waiting-for-identity',
  'not-ready',
  'waiting-to-regenerate',
  'regenerating',
  'restoring',
  'ready',
  'disconnecting',
  'disconnected',
  'invalid',
] as const;

const endpointStatus = z.looseObject({
  id: int64().optional(),
  identity: z
    .looseObject({
      id: int64().optional(),
      labels: z.array(z.string()).optional(),
    })
    .optional(),
  networking: z
    .looseObject({
      addressing: z.array(addressPair),
      node: z.string().optional(),
    })
    .optional(),
  encryption: z.looseObject({ key: int32(0).optional() }).optional(),
  'named-ports': z
    .array(
      z.looseObject({
        name: z.string().optional(),
        port: int32(0, 65535).optional(),
        protocol: z.string().optional(),
      }),
    )
    .optional(),
  'service-account': z.string().optional(),
  state: z.enum(ENDPOINT_STATES).optional(),
  'external-identifiers': z.looseObject({}).optional(),
  policy: z.looseObject({}).optional(),
  health: z.looseObject({}).optional(),
  controllers: z.array(z.looseObject({})).optional(),
  log: z.array(z.looseObject({})).optional(),
  'visibility-policy-status': z.string().optional(),
});

export const ciliumEndpointV2 = z.strictObject({
  apiVersion: z.literal('cilium.io/v2'),
  kind: z.literal('CiliumEndpoint'),
  metadata: objectMeta('subdomain'),
  status: endpointStatus.optional(),
});
export type CiliumEndpoint = z.output<typeof ciliumEndpointV2>;
