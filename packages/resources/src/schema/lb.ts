// LoadBalancer IP management and L2 announcements: CiliumLoadBalancerIPPool (cilium.io/v2, and
// the deprecated but still served v2alpha1) and CiliumL2AnnouncementPolicy (cilium.io/v2alpha1).

import { z } from 'zod';

import { parseCidr, parseIp } from '../validation.js';
import { conditions, crossCheck, k8sSelector, objectMeta, report } from './kit.js';

const ipBlock = crossCheck(
  z
    .strictObject({
      cidr: z.string().meta({ format: 'cidr' }).optional(),
      start: z.string().optional(),
      stop: z.string().optional(),
    })
    .meta({ oneOf: [{ required: ['cidr'] }, { required: ['start'] }] }),
  (b, ctx) => {
    const hasCidr = b.cidr !== undefined;
    const hasRange = b.start !== undefined || b.stop !== undefined;
    if (hasCidr && hasRange) {
      report(ctx, 'Invalid value', '', 'a block has either `cidr` or `start`/`stop`, not both', b);
    } else if (!hasCidr && !hasRange) {
      report(
        ctx,
        'Required value',
        'cidr',
        'a block needs `cidr`, or `start` (and optionally `stop`)',
      );
    }
    if (typeof b.cidr === 'string') {
      const c = parseCidr(b.cidr);
      if (typeof c === 'string') report(ctx, 'Invalid value', 'cidr', c, b.cidr);
    }
    if (b.stop !== undefined && b.start === undefined) {
      report(ctx, 'Required value', 'start', 'must be set when `stop` is set');
    }
    const start = typeof b.start === 'string' ? parseIp(b.start) : undefined;
    const stop = typeof b.stop === 'string' ? parseIp(b.stop) : undefined;
    if (typeof b.start === 'string' && !start)
      report(ctx, 'Invalid value', 'start', 'must be a valid IP address', b.start);
    if (typeof b.stop === 'string' && !stop)
      report(ctx, 'Invalid value', 'stop', 'must be a valid IP address', b.stop);
    if (start && stop) {
      if (start.family !== stop.family) {
        report(ctx, 'Invalid value', 'stop', 'must be of the same IP family as `start`', b.stop);
      } else if (stop.value < start.value) {
        report(ctx, 'Invalid value', 'stop', 'must not be lower than `start`', b.stop);
      }
    }
  },
);

const poolSpec = z.strictObject({
  allowFirstLastIPs: z.enum(['Yes', 'No']).optional(),
  blocks: z.array(ipBlock).optional(),
  disabled: z.boolean().default(false),
  serviceSelector: k8sSelector().optional(),
});

const poolStatus = z.looseObject({ conditions: conditions().optional() });

function pool<V extends string>(apiVersion: V) {
  return z.strictObject({
    apiVersion: z.literal(apiVersion),
    kind: z.literal('CiliumLoadBalancerIPPool'),
    metadata: objectMeta('subdomain'),
    spec: poolSpec,
    status: poolStatus.optional(),
  });
}

export const ciliumLoadBalancerIPPoolV2 = pool('cilium.io/v2');
export const ciliumLoadBalancerIPPoolV2alpha1 = pool('cilium.io/v2alpha1');
export type CiliumLoadBalancerIPPool =
  z.output<typeof ciliumLoadBalancerIPPoolV2> | z.output<typeof ciliumLoadBalancerIPPoolV2alpha1>;

const interfaceRegex = z.string().superRefine((v, ctx) => {
  try {
    new RegExp(v);
  } catch (e) {
    report(
      ctx,
      'Invalid value',
      '',
      `must be a valid regular expression: ${(e as Error).message}`,
      v,
    );
  }
});

export const ciliumL2AnnouncementPolicyV2alpha1 = z.strictObject({
  apiVersion: z.literal('cilium.io/v2alpha1'),
  kind: z.literal('CiliumL2AnnouncementPolicy'),
  metadata: objectMeta('subdomain'),
  spec: z
    .strictObject({
      serviceSelector: k8sSelector().optional(),
      nodeSelector: k8sSelector().optional(),
      interfaces: z.array(interfaceRegex).optional(),
      externalIPs: z.boolean().optional(),
      loadBalancerIPs: z.boolean().optional(),
    })
    .optional(),
  status: z.looseObject({ conditions: conditions().optional() }).optional(),
});
export type CiliumL2AnnouncementPolicy = z.output<typeof ciliumL2AnnouncementPolicyV2alpha1>;
