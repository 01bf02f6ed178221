// The label sets identities are made of: a pod's (its labels, its namespace's labels, namespace,
// service account and cluster) and a CIDR's (`cidr:<prefix>` plus the world label).
import {
  label,
  labelSetKey,
  normalizeLabelSet,
  type Label,
  reservedLabel,
} from '@ciliate/contracts';
import { formatAddress, type IpPrefix } from '@ciliate/netaddr';

import { asIdentityInput, invalid, required } from './errors.js';
import { parsePrefix } from './ip.js';
import { defaultLabelFilter, type LabelFilter } from './label-filter.js';

export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
export const NAMESPACE_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels';
export const SERVICE_ACCOUNT_LABEL = 'io.cilium.k8s.policy.serviceaccount';
export const CLUSTER_LABEL = 'io.cilium.k8s.policy.cluster';
/** Keys under this prefix are Cilium's to set; a pod carrying them could forge another's identity. */
export const CILIUM_K8S_LABEL_PREFIX = 'io.cilium.k8s.';

export interface PodIdentityInput {
  readonly podLabels?: Readonly<Record<string, string>>;
  readonly namespace: string;
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  /** Defaults to `default`, which Kubernetes' admission assigns to a pod that names none. */
  readonly serviceAccount?: string;
  readonly clusterName: string;
  /** Defaults to Cilium's default filter. */
  readonly filter?: LabelFilter;
}

export interface IdentityLabels {
  /** Identity-relevant labels, sorted by key. */
  readonly labels: Label[];
  /** Labels kept on the endpoint but not part of the identity, sorted by key. */
  readonly information: Label[];
  /** KV encoding of `labels`. */
  readonly key: string;
}

function k8sLabel(key: string, value: string, field: string): Label {
  if (typeof value !== 'string') {
    throw invalid('INVALID_LABEL', field, value, 'label values are strings');
  }
  return asIdentityInput('INVALID_LABEL', () => label('k8s', key, value, field));
}

/**
 * A pod's identity labels as Cilium derives them: pod labels (minus any under `io.cilium.k8s.`),
 * every namespace label as `io.cilium.k8s.namespace.labels.<key>`, all passed through the
 * identity-relevant filter; then namespace, service account and cluster labels, which are
 * always part of the identity whatever the filter says, because namespace isolation and
 * service-account and cluster selectors depend on them.
 */
export function podIdentityLabels(input: PodIdentityInput, field = 'pod'): IdentityLabels {
  const { namespace, clusterName } = input;
  if (typeof namespace !== 'string' || namespace.length === 0) {
    throw required('INVALID_LABEL', `${field}.namespace`, 'a pod belongs to a namespace');
  }
  if (typeof clusterName !== 'string' || clusterName.length === 0) {
    throw required('INVALID_LABEL', `${field}.clusterName`, 'the cluster label needs a name');
  }
  const serviceAccount = input.serviceAccount ?? 'default';
  if (typeof serviceAccount !== 'string' || serviceAccount.length === 0) {
    throw invalid(
      'INVALID_LABEL',
      `${field}.serviceAccount`,
      serviceAccount,
      'must be a non-empty name',
    );
  }
  const candidates: Label[] = [];
  for (const [k, v] of Object.entries(input.podLabels ?? {})) {
    if (k.startsWith(CILIUM_K8S_LABEL_PREFIX)) continue;
    // A user label spelling the namespace would be overwritten below anyway.
    if (k === POD_NAMESPACE_LABEL) continue;
    candidates.push(k8sLabel(k, v, `${field}.podLabels[${JSON.stringify(k)}]`));
  }
  for (const [k, v] of Object.entries(input.namespaceLabels ?? {})) {
    candidates.push(
      k8sLabel(
        `${NAMESPACE_LABELS_PREFIX}.${k}`,
        v,
        `${field}.namespaceLabels[${JSON.stringify(k)}]`,
      ),
    );
  }
  const { identity, information } = (input.filter ?? defaultLabelFilter()).filter(candidates);
  identity.push(
    k8sLabel(POD_NAMESPACE_LABEL, namespace, `${field}.namespace`),
    k8sLabel(SERVICE_ACCOUNT_LABEL, serviceAccount, `${field}.serviceAccount`),
    k8sLabel(CLUSTER_LABEL, clusterName, `${field}.clusterName`),
  );
  return asIdentityInput('INVALID_LABEL_SET', () => {
    const labels = normalizeLabelSet(identity, `${field}.labels`);
    return {
      labels,
      information: normalizeLabelSet(information, `${field}.information`),
      key: labelSetKey(labels),
    };
  });
}

/**
 * The `cidr:` label key of a prefix, as Cilium writes it: IPv6 ':' becomes '-' (':' separates
 * the source), and a leading or trailing '-' gets a '0' so that selectors accept the key
 * (`2001:db8::/32` gives `2001-db8--0/32`).
 */
export function cidrLabelKey(prefix: IpPrefix): string {
  const text = formatAddress(prefix.family, prefix.network);
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== ':') {
      out += c;
    } else if (i === 0) {
      out += '0-';
    } else if (i === text.length - 1) {
      out += '-0';
    } else {
      out += '-';
    }
  }
  return `${out}/${prefix.length}`;
}

/** Inverse of cidrLabelKey. */
export function prefixFromCidrLabelKey(key: string, field = 'label.key'): IpPrefix {
  return parsePrefix(key.replaceAll('-', ':'), field);
}

/**
 * Labels of a CIDR identity: `cidr:<prefix>` plus `reserved:world`, or `reserved:world-ipv4` /
 * `world-ipv6` in dual stack. A /0 prefix is just the world.
 */
export function cidrLabels(
  prefix: string | IpPrefix,
  options: { dualStack?: boolean } = {},
  field = 'prefix',
): Label[] {
  const p = typeof prefix === 'string' ? parsePrefix(prefix, field) : prefix;
  const world =
    options.dualStack === true ? (p.family === 4 ? 'world-ipv4' : 'world-ipv6') : 'world';
  const out: Label[] = [reservedLabel(world)];
  if (p.length > 0) out.push(label('cidr', cidrLabelKey(p), ''));
  return normalizeLabelSet(out);
}
