// cilium.io/v2 CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy: the rule API of
// pkg/policy/api, with the checks Cilium's rule sanitizer applies before accepting a policy.

import { z } from 'zod';
import { prefixContainsPrefix } from '@ciliate/netaddr';

import { parseCidr } from '../validation.js';
import {
  ciliumSelector,
  conditions,
  crossCheck,
  dnsSubdomainString,
  int32,
  intOrString,
  objectMeta,
  report,
  stringMap,
  type Ctx,
} from './kit.js';

// ---------------------------------------------------------------------------------------------
// Peers

export const POLICY_ENTITIES = [
  'all',
  'world',
  'cluster',
  'host',
  'init',
  'ingress',
  'unmanaged',
  'remote-node',
  'health',
  'none',
  'kube-apiserver',
  'world-ipv4',
  'world-ipv6',
] as const;

const entity = z.enum(POLICY_ENTITIES);

const cidr = z.string().superRefine((v, ctx) => {
  const r = parseCidr(v);
  if (typeof r === 'string') report(ctx, 'Invalid value', '', r, v);
});

const cidrRule = crossCheck(
  z
    .strictObject({
      cidr: z.string().optional(),
      cidrGroupRef: dnsSubdomainString().optional(),
      cidrGroupSelector: ciliumSelector().optional(),
      except: z.array(z.string()).optional(),
    })
    .meta({
      oneOf: [
        { required: ['cidr'] },
        { required: ['cidrGroupRef'] },
        { required: ['cidrGroupSelector'] },
      ],
    }),
  (r, ctx) => {
    const set = [r.cidr, r.cidrGroupRef, r.cidrGroupSelector].filter((x) => x !== undefined).length;
    if (set !== 1) {
      report(
        ctx,
        'Invalid value',
        '',
        'exactly one of `cidr`, `cidrGroupRef` or `cidrGroupSelector` must be set',
        r,
      );
    }
    const outer = typeof r.cidr === 'string' ? parseCidr(r.cidr) : undefined;
    if (typeof outer === 'string') report(ctx, 'Invalid value', 'cidr', outer, r.cidr);
    (r.except ?? []).forEach((e, i) => {
      if (typeof e !== 'string') return;
      const inner = parseCidr(e);
      if (typeof inner === 'string') report(ctx, 'Invalid value', `except[${i}]`, inner, e);
      else if (
        outer !== undefined &&
        typeof outer !== 'string' &&
        !prefixContainsPrefix(outer, inner)
      ) {
        report(ctx, 'Invalid value', `except[${i}]`, `must be contained in ${String(r.cidr)}`, e);
      } else if (outer === undefined && r.cidrGroupRef !== undefined) {
        report(
          ctx,
          'Forbidden',
          `except[${i}]`,
          '`except` cannot be used together with `cidrGroupRef`',
        );
      }
    });
  },
);

const k8sServiceSelectorNamespace = z.strictObject({
  selector: ciliumSelector(),
  namespace: z.string().optional(),
});

const k8sServiceNamespace = z.strictObject({
  serviceName: z.string().optional(),
  namespace: z.string().optional(),
});

const service = z.strictObject({
  k8sServiceSelector: k8sServiceSelectorNamespace.optional(),
  k8sService: k8sServiceNamespace.optional(),
});

const groups = z.strictObject({
  aws: z
    .strictObject({
      labels: stringMap().optional(),
      securityGroupsIds: z.array(z.string()).optional(),
      securityGroupsNames: z.array(z.string()).optional(),
      region: z.string().optional(),
    })
    .optional(),
});

const ICMP_V4_TYPES = [
  'EchoReply',
  'DestinationUnreachable',
  'Redirect',
  'Echo',
  'EchoRequest',
  'RouterAdvertisement',
  'RouterSelection',
  'TimeExceeded',
  'ParameterProblem',
  'Timestamp',
  'TimestampReply',
  'Photuris',
  'ExtendedEchoRequest',
  'ExtendedEchoReply',
];
const ICMP_V6_TYPES = [
  'DestinationUnreachable',
  'PacketTooBig',
  'TimeExceeded',
  'ParameterProblem',
  'EchoRequest',
  'EchoReply',
  'MulticastListenerQuery',
  'MulticastListenerReport',
  'MulticastListenerDone',
  'RouterSolicitation',
  'RouterAdvertisement',
  'NeighborSolicitation',
  'NeighborAdvertisement',
  'RedirectMessage',
  'RouterRenumbering',
  'ICMPNodeInformationQuery',
  'ICMPNodeInformationResponse',
  'InverseNeighborDiscoverySolicitation',
  'InverseNeighborDiscoveryAdvertisement',
  'HomeAgentAddressDiscoveryRequest',
  'HomeAgentAddressDiscoveryReply',
  'MobilePrefixSolicitation',
  'MobilePrefixAdvertisement',
  'DuplicateAddressRequestCodeSuffix',
  'DuplicateAddressConfirmationCodeSuffix',
  'ExtendedEchoRequest',
  'ExtendedEchoReply',
];

const icmpField = crossCheck(
  z.strictObject({
    family: z.enum(['IPv4', 'IPv6']).default('IPv4'),
    type: intOrString(),
  }),
  (f, ctx) => {
    if (typeof f.type === 'number') {
      if (f.type < 0 || f.type > 255)
        report(ctx, 'Invalid value', 'type', 'must be between 0 and 255, inclusive', f.type);
    } else if (typeof f.type === 'string') {
      const names = f.family === 'IPv6' ? ICMP_V6_TYPES : ICMP_V4_TYPES;
      if (!/^(0|[1-9][0-9]{0,2})$/.test(f.type) || Number(f.type) > 255) {
        if (!names.includes(f.type)) {
          report(ctx, 'Unsupported value', 'type', '', f.type, names);
        }
      }
    }
  },
);

const icmpRule = z.strictObject({
  fields: z.array(icmpField).max(40).optional(),
});

const authentication = z.strictObject({
  mode: z.enum(['disabled', 'required', 'test-always-fail']),
});

// ---------------------------------------------------------------------------------------------
// Ports and L7

const PORT_PATTERN =
  /^(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})$/;
const NAMED_PORT_PATTERN = /^([a-zA-Z0-9]-?)*[a-zA-Z](-?[a-zA-Z0-9])*$/;

const portProtocol = crossCheck(
  z.strictObject({
    port: z.string().superRefine((v, ctx) => {
      if (!PORT_PATTERN.test(v) && !NAMED_PORT_PATTERN.test(v)) {
        report(
          ctx,
          'Invalid value',
          '',
          'must be a port number 0-65535 (as a string) or a port name',
          v,
        );
      }
    }),
    endPort: int32(0, 65535).optional(),
    protocol: z.enum(['TCP', 'UDP', 'SCTP', 'ANY']).optional(),
  }),
  (p, ctx) => {
    if (p.endPort === undefined || typeof p.port !== 'string') return;
    if (!PORT_PATTERN.test(p.port)) {
      report(
        ctx,
        'Invalid value',
        'endPort',
        'may not be specified when `port` is a port name',
        p.endPort,
      );
    } else if (p.endPort !== 0 && p.endPort < Number(p.port)) {
      report(ctx, 'Invalid value', 'endPort', 'must be greater than or equal to `port`', p.endPort);
    }
  },
);

const secret = z.strictObject({
  namespace: z.string().optional(),
  name: z.string(),
});

const tlsContext = z.strictObject({
  secret: secret.optional(),
  trustedCA: z.string().optional(),
  certificate: z.string().optional(),
  privateKey: z.string().optional(),
});

const headerMatch = z.strictObject({
  mismatch: z.enum(['LOG', 'ADD', 'DELETE', 'REPLACE']).optional(),
  name: z.string().min(1),
  secret: secret.optional(),
  value: z.string().optional(),
});

const httpRule = z.strictObject({
  path: z.string().optional(),
  method: z.string().optional(),
  host: z.string().optional(),
  headers: z.array(z.string()).optional(),
  headerMatches: z.array(headerMatch).optional(),
});

const kafkaRule = z.strictObject({
  role: z.enum(['produce', 'consume']).optional(),
  apiKey: z.string().optional(),
  apiVersion: z.string().optional(),
  clientID: z.string().optional(),
  topic: z
    .string()
    .max(255)
    .superRefine((v, ctx) => {
      if (!/^[a-zA-Z0-9._-]*$/.test(v)) {
        report(
          ctx,
          'Invalid value',
          '',
          "may only contain alphanumeric characters, '.', '_' and '-'",
          v,
        );
      }
    })
    .optional(),
});

const FQDN_NAME = /^([-a-zA-Z0-9_]+[.]?)+$/;
const FQDN_PATTERN = /^([-a-zA-Z0-9_*]+[.]?)+$/;

const fqdnSelector = crossCheck(
  z.strictObject({
    matchName: z
      .string()
      .max(255)
      .superRefine((v, ctx) => {
        if (!FQDN_NAME.test(v))
          report(
            ctx,
            'Invalid value',
            '',
            'must be a DNS name (letters, digits, "-", "_" and ".")',
            v,
          );
      })
      .optional(),
    matchPattern: z
      .string()
      .max(255)
      .superRefine((v, ctx) => {
        if (!FQDN_PATTERN.test(v)) {
          report(
            ctx,
            'Invalid value',
            '',
            'must be a DNS name pattern (letters, digits, "-", "_", "." and "*")',
            v,
          );
        }
      })
      .optional(),
  }),
  (s, ctx) => {
    const n = (s.matchName ? 1 : 0) + (s.matchPattern ? 1 : 0);
    if (n === 0)
      report(ctx, 'Required value', '', 'one of `matchName` or `matchPattern` must be set');
    if (n === 2)
      report(ctx, 'Invalid value', '', 'only one of `matchName` or `matchPattern` may be set', s);
  },
);

const l7Rules = crossCheck(
  z.strictObject({
    http: z.array(httpRule).optional(),
    kafka: z.array(kafkaRule).optional(),
    dns: z.array(fqdnSelector).optional(),
    l7proto: z.string().optional(),
    l7: z.array(stringMap()).optional(),
  }),
  (r, ctx) => {
    const kinds = (['http', 'kafka', 'dns', 'l7'] as const).filter((k) => r[k] !== undefined);
    if (kinds.length > 1) {
      report(
        ctx,
        'Invalid value',
        '',
        `multiple L7 protocol rule types specified in a single rule: ${kinds.join(', ')}`,
        r,
      );
    }
    if (r.l7 !== undefined && !r.l7proto) {
      report(ctx, 'Required value', 'l7proto', 'must be set when `l7` rules are given');
    }
  },
);

const listener = z.strictObject({
  envoyConfig: z.strictObject({
    kind: z.enum(['CiliumEnvoyConfig', 'CiliumClusterwideEnvoyConfig']).optional(),
    name: z.string().min(1),
  }),
  name: z.string().min(1),
  priority: int32(1, 100).optional(),
});

const MAX_PORTS = 40;

const portRule = z.strictObject({
  ports: z.array(portProtocol).max(MAX_PORTS).optional(),
  terminatingTLS: tlsContext.optional(),
  originatingTLS: tlsContext.optional(),
  serverNames: z.array(z.string().min(1)).optional(),
  listener: listener.optional(),
  rules: l7Rules.optional(),
});

const portDenyRule = z.strictObject({
  ports: z.array(portProtocol).max(MAX_PORTS).optional(),
});

// ---------------------------------------------------------------------------------------------
// Ingress / egress rules

const ingressCommon = {
  fromEndpoints: z.array(ciliumSelector()).optional(),
  fromRequires: z.array(ciliumSelector()).optional(),
  fromCIDR: z.array(cidr).optional(),
  fromCIDRSet: z.array(cidrRule).optional(),
  fromEntities: z.array(entity).optional(),
  fromGroups: z.array(groups).optional(),
  fromNodes: z.array(ciliumSelector()).optional(),
};

const egressCommon = {
  toEndpoints: z.array(ciliumSelector()).optional(),
  toRequires: z.array(ciliumSelector()).optional(),
  toCIDR: z.array(cidr).optional(),
  toCIDRSet: z.array(cidrRule).optional(),
  toEntities: z.array(entity).optional(),
  toServices: z.array(service).optional(),
  toGroups: z.array(groups).optional(),
  toNodes: z.array(ciliumSelector()).optional(),
};

const INGRESS_L3 = [
  'fromEndpoints',
  'fromCIDR',
  'fromCIDRSet',
  'fromEntities',
  'fromGroups',
  'fromNodes',
] as const;
const EGRESS_L3 = [
  'toEndpoints',
  'toCIDR',
  'toCIDRSet',
  'toEntities',
  'toServices',
  'toFQDNs',
  'toGroups',
  'toNodes',
] as const;

interface PortRuleLike {
  ports?: unknown[] | undefined;
  rules?: { dns?: unknown[] | undefined } | undefined;
}

function checkRuleSection(
  r: Record<string, unknown>,
  l3: readonly string[],
  ctx: Ctx,
  ingress: boolean,
): void {
  const present = l3.filter((k) => Array.isArray(r[k]) && (r[k] as unknown[]).length > 0);
  if (present.length > 1) {
    report(
      ctx,
      'Invalid value',
      '',
      `combining ${present.join(' and ')} is not supported`,
      present,
    );
  }
  const toPorts = Array.isArray(r.toPorts) ? (r.toPorts as PortRuleLike[]) : [];
  if (Array.isArray(r.icmps) && r.icmps.length > 0 && toPorts.length > 0) {
    report(ctx, 'Invalid value', '', '`icmps` cannot be combined with `toPorts`', [
      'icmps',
      'toPorts',
    ]);
  }
  if (ingress) {
    toPorts.forEach((pr, i) => {
      if (pr && Array.isArray(pr.rules?.dns) && pr.rules.dns.length > 0) {
        report(ctx, 'Forbidden', `toPorts[${i}].rules.dns`, 'DNS rules are only allowed on egress');
      }
    });
  }
}

const ingressRule = crossCheck(
  z.strictObject({
    ...ingressCommon,
    toPorts: z.array(portRule).optional(),
    icmps: z.array(icmpRule).optional(),
    authentication: authentication.optional(),
  }),
  (r, ctx) => checkRuleSection(r, INGRESS_L3, ctx, true),
);

const ingressDenyRule = crossCheck(
  z.strictObject({
    ...ingressCommon,
    toPorts: z.array(portDenyRule).optional(),
    icmps: z.array(icmpRule).optional(),
  }),
  (r, ctx) => checkRuleSection(r, INGRESS_L3, ctx, true),
);

const egressRule = crossCheck(
  z.strictObject({
    ...egressCommon,
    toPorts: z.array(portRule).optional(),
    toFQDNs: z.array(fqdnSelector).optional(),
    icmps: z.array(icmpRule).optional(),
    authentication: authentication.optional(),
  }),
  (r, ctx) => checkRuleSection(r, EGRESS_L3, ctx, false),
);

const egressDenyRule = crossCheck(
  z.strictObject({
    ...egressCommon,
    toPorts: z.array(portDenyRule).optional(),
    icmps: z.array(icmpRule).optional(),
  }),
  (r, ctx) => checkRuleSection(r, EGRESS_L3, ctx, false),
);

const ruleLabel = z.strictObject({
  key: z.string(),
  value: z.string().optional(),
  source: z.string().optional(),
});

/** One Cilium policy rule (`spec`, or an element of `specs`). */
function rule(clusterwide: boolean) {
  return crossCheck(
    z
      .strictObject({
        endpointSelector: ciliumSelector().optional(),
        nodeSelector: ciliumSelector().optional(),
        ingress: z.array(ingressRule).optional(),
        ingressDeny: z.array(ingressDenyRule).optional(),
        egress: z.array(egressRule).optional(),
        egressDeny: z.array(egressDenyRule).optional(),
        labels: z.array(ruleLabel).optional(),
        enableDefaultDeny: z
          .strictObject({ ingress: z.boolean().optional(), egress: z.boolean().optional() })
          .optional(),
        description: z.string().optional(),
        log: z.strictObject({ value: z.string().max(32).optional() }).optional(),
      })
      .meta({ oneOf: [{ required: ['endpointSelector'] }, { required: ['nodeSelector'] }] }),
    (r, ctx) => {
      const hasEp = r.endpointSelector !== undefined;
      const hasNode = r.nodeSelector !== undefined;
      if (!hasEp && !hasNode) {
        report(
          ctx,
          'Required value',
          'endpointSelector',
          'one of `endpointSelector` or `nodeSelector` is required',
        );
      } else if (hasEp && hasNode) {
        report(
          ctx,
          'Forbidden',
          'nodeSelector',
          '`endpointSelector` and `nodeSelector` are mutually exclusive',
        );
      } else if (hasNode && !clusterwide) {
        report(
          ctx,
          'Forbidden',
          'nodeSelector',
          'only a CiliumClusterwideNetworkPolicy may select nodes',
        );
      }
    },
  );
}

const namespacedRule = rule(false);
const clusterwideRule = rule(true);
export type PolicyRule = z.output<typeof namespacedRule>;

const policyStatus = z.looseObject({
  conditions: conditions().optional(),
  derivativePolicies: z.record(z.string(), z.looseObject({})).optional(),
});

function policyObject<K extends string>(kind: K, clusterwide: boolean) {
  const r = clusterwide ? clusterwideRule : namespacedRule;
  return crossCheck(
    z.strictObject({
      apiVersion: z.literal('cilium.io/v2'),
      kind: z.literal(kind),
      metadata: objectMeta('subdomain'),
      spec: r.optional(),
      specs: z.array(r).optional(),
      status: policyStatus.optional(),
    }),
    (o, ctx) => {
      if (o.spec === undefined && (o.specs === undefined || o.specs.length === 0)) {
        report(ctx, 'Required value', 'spec', 'a policy needs `spec` or `specs` (empty policy)');
      }
    },
  );
}

export const ciliumNetworkPolicyV2 = policyObject('CiliumNetworkPolicy', false);
export const ciliumClusterwideNetworkPolicyV2 = policyObject(
  'CiliumClusterwideNetworkPolicy',
  true,
);
export type CiliumNetworkPolicy = z.output<typeof ciliumNetworkPolicyV2>;
export type CiliumClusterwideNetworkPolicy = z.output<typeof ciliumClusterwideNetworkPolicyV2>;
