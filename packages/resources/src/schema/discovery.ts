// discovery.k8s.io/v1 EndpointSlice: the backends of Services, what the datapath load-balances to.

import { z } from 'zod';

import { dns1123Label, dns1123Subdomain, parseIp } from '../validation.js';
import { crossCheck, int32, objectMeta, report, uniqueBy } from './kit.js';
import { protocolEnum } from './core.js';

const objectReference = z.strictObject({
  kind: z.string().optional(),
  namespace: z.string().optional(),
  name: z.string().optional(),
  uid: z.string().optional(),
  apiVersion: z.string().optional(),
  resourceVersion: z.string().optional(),
  fieldPath: z.string().optional(),
});

const endpoint = z.strictObject({
  addresses: z.array(z.string()).min(1).max(100),
  conditions: z
    .strictObject({
      ready: z.boolean().nullable().optional(),
      serving: z.boolean().nullable().optional(),
      terminating: z.boolean().nullable().optional(),
    })
    .optional(),
  hostname: z.string().optional(),
  targetRef: objectReference.optional(),
  nodeName: z.string().optional(),
  zone: z.string().optional(),
  hints: z
    .strictObject({
      forZones: z.array(z.strictObject({ name: z.string() })).optional(),
      forNodes: z.array(z.strictObject({ name: z.string() })).optional(),
    })
    .optional(),
  deprecatedTopology: z.record(z.string(), z.string()).optional(),
});

const endpointPort = z.strictObject({
  name: z.string().nullable().optional(),
  protocol: protocolEnum.default('TCP'),
  port: int32(1, 65535).nullable().optional(),
  appProtocol: z.string().nullable().optional(),
});

export const endpointSliceV1 = crossCheck(
  z.strictObject({
    apiVersion: z.literal('discovery.k8s.io/v1'),
    kind: z.literal('EndpointSlice'),
    metadata: objectMeta('subdomain'),
    addressType: z.enum(['IPv4', 'IPv6', 'FQDN']),
    // `null` is how the API server writes an empty slice (Go nil, no omitempty).
    endpoints: z.array(endpoint).max(1000).nullable(),
    ports: z.array(endpointPort).max(100).nullable().optional(),
  }),
  (es, ctx) => {
    const family = es.addressType === 'IPv4' ? 4 : es.addressType === 'IPv6' ? 6 : undefined;
    (Array.isArray(es.endpoints) ? es.endpoints : []).forEach((ep, i) => {
      (Array.isArray(ep?.addresses) ? ep.addresses : []).forEach((a, j) => {
        if (typeof a !== 'string') return;
        const sub = `endpoints[${i}].addresses[${j}]`;
        if (es.addressType === 'FQDN') {
          for (const d of dns1123Subdomain(a)) report(ctx, 'Invalid value', sub, d, a);
        } else if (family !== undefined) {
          const ip = parseIp(a);
          if (!ip || ip.family !== family) {
            report(ctx, 'Invalid value', sub, `must be a valid ${es.addressType} address`, a);
          }
        }
      });
      if (typeof ep?.hostname === 'string') {
        for (const d of dns1123Label(ep.hostname))
          report(ctx, 'Invalid value', `endpoints[${i}].hostname`, d, ep.hostname);
      }
    });
    (es.ports ?? []).forEach((p, i) => {
      if (typeof p?.name === 'string' && p.name !== '') {
        for (const d of dns1123Label(p.name))
          report(ctx, 'Invalid value', `ports[${i}].name`, d, p.name);
      }
    });
    uniqueBy(
      es.ports,
      (p) => p.name ?? '',
      ctx,
      (i) => `ports[${i}].name`,
    );
  },
);
export type EndpointSlice = z.output<typeof endpointSliceV1>;
