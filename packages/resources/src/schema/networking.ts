// networking.k8s.io/v1 NetworkPolicy, with the API server's validation and defaults.

import { z } from 'zod';
import { prefixContainsPrefix } from '@ciliate/netaddr';

import { parseCidr } from '../validation.js';
import {
  checkIntOrStringPort,
  crossCheck,
  int32,
  intOrString,
  k8sSelector,
  objectMeta,
  report,
  type Ctx,
} from './kit.js';
import { protocolEnum } from './core.js';

const ipBlock = z.strictObject({
  cidr: z.string(),
  except: z.array(z.string()).optional(),
});

const peer = z.strictObject({
  podSelector: k8sSelector().optional(),
  namespaceSelector: k8sSelector().optional(),
  ipBlock: ipBlock.optional(),
});

const policyPort = z.strictObject({
  protocol: protocolEnum.default('TCP'),
  port: intOrString().optional(),
  endPort: int32().optional(),
});

const ingressRule = z.strictObject({
  from: z.array(peer).optional(),
  ports: z.array(policyPort).optional(),
});

const egressRule = z.strictObject({
  to: z.array(peer).optional(),
  ports: z.array(policyPort).optional(),
});

type Peer = z.output<typeof peer>;
type PolicyPort = z.output<typeof policyPort>;

function checkPeers(ctx: Ctx, peers: readonly Peer[] | undefined, base: string): void {
  (peers ?? []).forEach((p, i) => {
    if (!p || typeof p !== 'object') return;
    const at = `${base}[${i}]`;
    const set = [p.podSelector, p.namespaceSelector, p.ipBlock].filter(
      (x) => x !== undefined,
    ).length;
    if (set === 0) {
      report(ctx, 'Required value', at, 'must specify a peer');
    } else if (p.ipBlock !== undefined && set > 1) {
      report(ctx, 'Forbidden', at, 'may not specify more than 1 peer type when ipBlock is set');
    }
    const b = p.ipBlock;
    if (b && typeof b.cidr === 'string') {
      const outer = parseCidr(b.cidr);
      if (typeof outer === 'string') {
        report(ctx, 'Invalid value', `${at}.ipBlock.cidr`, outer, b.cidr);
      }
      (b.except ?? []).forEach((e, j) => {
        if (typeof e !== 'string') return;
        const inner = parseCidr(e);
        if (typeof inner === 'string') {
          report(ctx, 'Invalid value', `${at}.ipBlock.except[${j}]`, inner, e);
        } else if (
          typeof outer !== 'string' &&
          !(prefixContainsPrefix(outer, inner) && inner.length > outer.length)
        ) {
          report(
            ctx,
            'Invalid value',
            `${at}.ipBlock.except[${j}]`,
            'must be a strict subset of `cidr`',
            e,
          );
        }
      });
    }
  });
}

function checkPorts(ctx: Ctx, ports: readonly PolicyPort[] | undefined, base: string): void {
  (ports ?? []).forEach((p, i) => {
    if (!p || typeof p !== 'object') return;
    const at = `${base}[${i}]`;
    if (p.port !== undefined) checkIntOrStringPort(ctx, p.port, `${at}.port`);
    if (p.endPort !== undefined) {
      if (p.port === undefined) {
        report(ctx, 'Required value', `${at}.port`, 'must be specified when endPort is specified');
      } else if (typeof p.port === 'string') {
        report(
          ctx,
          'Invalid value',
          `${at}.endPort`,
          'may not be specified when `port` is non-numeric',
          p.endPort,
        );
      } else if (typeof p.port === 'number' && p.endPort < p.port) {
        report(
          ctx,
          'Invalid value',
          `${at}.endPort`,
          'must be greater than or equal to `port`',
          p.endPort,
        );
      }
    }
  });
}

const spec = crossCheck(
  z.strictObject({
    podSelector: k8sSelector(),
    ingress: z.array(ingressRule).optional(),
    egress: z.array(egressRule).optional(),
    policyTypes: z
      .array(z.enum(['Ingress', 'Egress']))
      .max(2)
      .optional(),
  }),
  (s, ctx) => {
    (s.ingress ?? []).forEach((r, i) => {
      checkPeers(ctx, r?.from, `ingress[${i}].from`);
      checkPorts(ctx, r?.ports, `ingress[${i}].ports`);
    });
    (s.egress ?? []).forEach((r, i) => {
      checkPeers(ctx, r?.to, `egress[${i}].to`);
      checkPorts(ctx, r?.ports, `egress[${i}].ports`);
    });
  },
);

export const networkPolicyV1 = z.strictObject({
  apiVersion: z.literal('networking.k8s.io/v1'),
  kind: z.literal('NetworkPolicy'),
  metadata: objectMeta('subdomain'),
  spec: spec,
});
export type NetworkPolicy = z.output<typeof networkPolicyV1>;

/** The API server's default: Ingress always, Egress when egress rules are present. */
export function applyNetworkPolicyDefaults(np: NetworkPolicy): void {
  if (np.spec.policyTypes === undefined || np.spec.policyTypes.length === 0) {
    np.spec.policyTypes =
      np.spec.egress && np.spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
  }
}
