// The BGP control plane v2 API: CiliumBGPClusterConfig, CiliumBGPPeerConfig and
// CiliumBGPAdvertisement, served as cilium.io/v2 (storage) and cilium.io/v2alpha1 (deprecated).
// The versions differ in one place: v2alpha1's peerConfigRef also names group and kind.

import { z } from 'zod';

import { parseIp } from '../validation.js';
import {
  conditions,
  crossCheck,
  int32,
  int64,
  k8sSelector,
  objectMeta,
  report,
  uniqueBy,
} from './kit.js';

const MAX_ASN = 4294967295;

const peerAddress = z.string().superRefine((v, ctx) => {
  if (!parseIp(v)) report(ctx, 'Invalid value', '', 'must be a valid IPv4 or IPv6 address', v);
});

const autoDiscovery = crossCheck(
  z.strictObject({
    mode: z.enum(['DefaultGateway']),
    defaultGateway: z.strictObject({ addressFamily: z.enum(['ipv4', 'ipv6']) }).optional(),
  }),
  (a, ctx) => {
    if (a.mode === 'DefaultGateway' && a.defaultGateway === undefined) {
      report(ctx, 'Required value', 'defaultGateway', 'must be set when mode is DefaultGateway');
    }
  },
);

function peer(version: 'v2' | 'v2alpha1') {
  const peerConfigRef =
    version === 'v2'
      ? z.strictObject({ name: z.string() })
      : z.strictObject({
          group: z.string().default('cilium.io'),
          kind: z.string().default('CiliumBGPPeerConfig'),
          name: z.string(),
        });
  return crossCheck(
    z.strictObject({
      name: z.string().min(1).max(255),
      peerASN: int64(0, MAX_ASN).default(0),
      peerAddress: peerAddress.optional(),
      autoDiscovery: autoDiscovery.optional(),
      peerConfigRef: peerConfigRef.optional(),
    }),
    (p, ctx) => {
      if (p.peerAddress === undefined && p.autoDiscovery === undefined) {
        report(
          ctx,
          'Required value',
          'peerAddress',
          'one of `peerAddress` or `autoDiscovery` must be set',
        );
      }
    },
  );
}

function instance(version: 'v2' | 'v2alpha1') {
  return crossCheck(
    z.strictObject({
      name: z.string().min(1).max(255),
      localASN: int64(1, MAX_ASN).optional(),
      localPort: int32(1, 65535).optional(),
      peers: z
        .array(peer(version))
        .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })
        .optional(),
    }),
    (inst, ctx) =>
      uniqueBy(
        inst.peers,
        (p) => p.name,
        ctx,
        (i) => `peers[${i}].name`,
      ),
  );
}

function clusterConfig<V extends string>(apiVersion: V, version: 'v2' | 'v2alpha1') {
  return z.strictObject({
    apiVersion: z.literal(apiVersion),
    kind: z.literal('CiliumBGPClusterConfig'),
    metadata: objectMeta('subdomain'),
    spec: crossCheck(
      z.strictObject({
        nodeSelector: k8sSelector().optional(),
        bgpInstances: z
          .array(instance(version))
          .min(1)
          .max(16)
          .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] }),
      }),
      (s, ctx) =>
        uniqueBy(
          s.bgpInstances,
          (i) => i.name,
          ctx,
          (i) => `bgpInstances[${i}].name`,
        ),
    ),
    status: z.looseObject({ conditions: conditions().optional() }).optional(),
  });
}

export const ciliumBGPClusterConfigV2 = clusterConfig('cilium.io/v2', 'v2');
export const ciliumBGPClusterConfigV2alpha1 = clusterConfig('cilium.io/v2alpha1', 'v2alpha1');
export type CiliumBGPClusterConfig =
  z.output<typeof ciliumBGPClusterConfigV2> | z.output<typeof ciliumBGPClusterConfigV2alpha1>;

// ---------------------------------------------------------------------------------------------

const AFIS = ['ipv4', 'ipv6', 'l2vpn', 'ls', 'opaque'] as const;
const SAFIS = [
  'unicast',
  'multicast',
  'mpls_label',
  'encapsulation',
  'vpls',
  'evpn',
  'ls',
  'sr_policy',
  'mup',
  'mpls_vpn',
  'mpls_vpn_multicast',
  'route_target_constraints',
  'flowspec_unicast',
  'flowspec_vpn',
  'key_value',
] as const;

const family = z.strictObject({
  afi: z.enum(AFIS),
  safi: z.enum(SAFIS),
  advertisements: k8sSelector().optional(),
});

const peerConfigSpec = crossCheck(
  z.strictObject({
    transport: z.strictObject({ peerPort: int32(1, 65535).default(179) }).optional(),
    timers: z
      .strictObject({
        connectRetryTimeSeconds: int32(1, 2147483647).default(120),
        holdTimeSeconds: int32(3, 65535).default(90),
        keepAliveTimeSeconds: int32(1, 65535).default(30),
      })
      .optional(),
    authSecretRef: z.string().optional(),
    gracefulRestart: z
      .strictObject({
        enabled: z.boolean(),
        restartTimeSeconds: int32(1, 4095).default(120),
      })
      .optional(),
    ebgpMultihop: int32(1, 255).default(1),
    families: z.array(family).optional(),
  }),
  (s, ctx) => {
    const t = s.timers;
    if (t && typeof t.keepAliveTimeSeconds === 'number' && typeof t.holdTimeSeconds === 'number') {
      if (t.keepAliveTimeSeconds > t.holdTimeSeconds) {
        report(
          ctx,
          'Invalid value',
          'timers.keepAliveTimeSeconds',
          'can not be larger than `holdTimeSeconds`',
          t.keepAliveTimeSeconds,
        );
      }
    }
  },
);

function peerConfig<V extends string>(apiVersion: V) {
  return z.strictObject({
    apiVersion: z.literal(apiVersion),
    kind: z.literal('CiliumBGPPeerConfig'),
    metadata: objectMeta('subdomain'),
    spec: peerConfigSpec,
    status: z.looseObject({ conditions: conditions().optional() }).optional(),
  });
}

export const ciliumBGPPeerConfigV2 = peerConfig('cilium.io/v2');
export const ciliumBGPPeerConfigV2alpha1 = peerConfig('cilium.io/v2alpha1');
export type CiliumBGPPeerConfig =
  z.output<typeof ciliumBGPPeerConfigV2> | z.output<typeof ciliumBGPPeerConfigV2alpha1>;

// ---------------------------------------------------------------------------------------------

const U32 =
  '([0-9]|[1-9][0-9]{1,8}|[1-3][0-9]{9}|4[01][0-9]{8}|42[0-8][0-9]{7}|429[0-3][0-9]{6}|4294[0-8][0-9]{5}|42949[0-5][0-9]{4}|429496[0-6][0-9]{3}|4294967[01][0-9]{2}|42949672[0-8][0-9]|429496729[0-5])';
const U16 =
  '([0-9]|[1-9][0-9]{1,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])';
const STANDARD_COMMUNITY = new RegExp(`^${U32}$|^${U16}:${U16}$`);
const LARGE_COMMUNITY = new RegExp(`^${U32}:${U32}:${U32}$`);

const WELL_KNOWN_COMMUNITIES = [
  'internet',
  'planned-shut',
  'accept-own',
  'route-filter-translated-v4',
  'route-filter-v4',
  'route-filter-translated-v6',
  'route-filter-v6',
  'llgr-stale',
  'no-llgr',
  'blackhole',
  'no-export',
  'no-advertise',
  'no-export-subconfed',
  'no-peer',
] as const;

const standardCommunity = z.string().superRefine((v, ctx) => {
  if (!STANDARD_COMMUNITY.test(v)) {
    report(
      ctx,
      'Invalid value',
      '',
      'must be a 32-bit decimal number or two 16-bit numbers as "a:b"',
      v,
    );
  }
});
const largeCommunity = z.string().superRefine((v, ctx) => {
  if (!LARGE_COMMUNITY.test(v))
    report(ctx, 'Invalid value', '', 'must be three 32-bit decimal numbers as "a:b:c"', v);
});

const advertisement = z.strictObject({
  advertisementType: z.enum(['PodCIDR', 'CiliumPodIPPool', 'Service']),
  service: z
    .strictObject({
      addresses: z.array(z.enum(['LoadBalancerIP', 'ClusterIP', 'ExternalIP'])).min(1),
    })
    .optional(),
  selector: k8sSelector().optional(),
  attributes: z
    .strictObject({
      communities: z
        .strictObject({
          standard: z.array(standardCommunity).optional(),
          wellKnown: z.array(z.enum(WELL_KNOWN_COMMUNITIES)).optional(),
          large: z.array(largeCommunity).optional(),
        })
        .optional(),
      localPreference: int64().optional(),
    })
    .optional(),
});

function advertisementObject<V extends string>(apiVersion: V) {
  return z.strictObject({
    apiVersion: z.literal(apiVersion),
    kind: z.literal('CiliumBGPAdvertisement'),
    metadata: objectMeta('subdomain'),
    spec: z.strictObject({ advertisements: z.array(advertisement) }),
  });
}

export const ciliumBGPAdvertisementV2 = advertisementObject('cilium.io/v2');
export const ciliumBGPAdvertisementV2alpha1 = advertisementObject('cilium.io/v2alpha1');
export type CiliumBGPAdvertisement =
  z.output<typeof ciliumBGPAdvertisementV2> | z.output<typeof ciliumBGPAdvertisementV2alpha1>;

/** v2alpha1 -> v2: the peer config reference loses group and kind (always cilium.io's peer config). */
export function bgpClusterConfigToV2(
  obj: z.output<typeof ciliumBGPClusterConfigV2alpha1>,
): z.output<typeof ciliumBGPClusterConfigV2> {
  return {
    ...obj,
    apiVersion: 'cilium.io/v2',
    spec: {
      ...obj.spec,
      bgpInstances: obj.spec.bgpInstances.map((inst) => ({
        ...inst,
        ...(inst.peers
          ? {
              peers: inst.peers.map(({ peerConfigRef, ...rest }) =>
                peerConfigRef ? { ...rest, peerConfigRef: { name: peerConfigRef.name } } : rest,
              ),
            }
          : {}),
      })),
    },
  };
}
