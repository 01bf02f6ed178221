// Who may do what on NATS. Every component connects as its own principal, and its publish and
// subscribe rights are derived here from the same subject and bucket builders the code uses, so
// the permission table and the wire cannot drift apart (access.test.ts checks every subject has a
// rule). Rendering the table into a nats-server configuration lives in @ciliate/runtime.
import { buckets, kvSubjectPrefix, resourceKey } from './buckets.js';
import { DATAPATH_COMPONENT, DATAPATH_EVENT_TYPES, datapathSubjects } from './datapath.js';
import {
  IDENTITY_CLUSTER_ENDPOINTS,
  IDENTITY_COMPONENT,
  IDENTITY_NODE_ENDPOINTS,
} from './identity.js';
import { IPAM_CLUSTER_ENDPOINTS, IPAM_COMPONENT, IPAM_NODE_ENDPOINTS, ipamKeys } from './ipam.js';
import { nodeNameProblem, nodeToken } from './nodes.js';
import { subjects } from './subjects.js';
import { PROJECT, WIRE_VERSION } from './version.js';

/** The kinds of principal. A node-scoped role acts for one node and carries its name. */
export const ROLES = [
  'ipam',
  'identity',
  'datapath',
  'kube-bridge',
  'kubelet',
  'lb-announcer',
  'clustermesh',
  'flow-relay',
  'viewer',
  'admin',
] as const;
export type Role = (typeof ROLES)[number];

/** Roles whose principal is one per node (its credentials act only for that node). */
export const NODE_ROLES: ReadonlySet<Role> = new Set<Role>(['datapath', 'kubelet']);

export interface Principal {
  role: Role;
  /** The node a node-scoped role acts for; absent for the others. */
  node?: string;
}

/** Why `p` is not a valid principal, or undefined. */
export function principalProblem(p: Principal): string | undefined {
  if (!(ROLES as readonly string[]).includes(p.role)) {
    return `role: must be one of ${ROLES.join(', ')}`;
  }
  if (NODE_ROLES.has(p.role)) {
    if (p.node === undefined) return `node: the ${p.role} role acts for one node: name it`;
    const problem = nodeNameProblem(p.node);
    if (problem !== undefined) return `node: ${problem}`;
  } else if (p.node !== undefined) {
    return `node: the ${p.role} role is not node-scoped`;
  }
  return undefined;
}

/** The NATS user name of a principal: `ciliate-<role>` or `ciliate-<role>-<node token>`. */
export function principalName(p: Principal): string {
  return p.node === undefined
    ? `${PROJECT}-${p.role}`
    : `${PROJECT}-${p.role}-${nodeToken(p.node)}`;
}

/**
 * The inbox prefix a principal's connection uses for replies: its own, so that nobody can
 * subscribe to the replies meant for someone else.
 */
export function inboxPrefix(p: Principal): string {
  return `_INBOX_${principalName(p)}`;
}

export interface Permissions {
  publish: string[];
  subscribe: string[];
  /** Whether it may publish replies to the requests it receives (servers of endpoints). */
  allowResponses: boolean;
}

const ROOT = `${PROJECT}.${WIRE_VERSION}`;
const STREAM = (bucket: string): string => `KV_${bucket}`;

/** Reading one bucket: open it, get keys, watch it (an ordered consumer and its flow control). */
function kvRead(bucket: string): string[] {
  const s = STREAM(bucket);
  return [
    '$JS.API.INFO',
    `$JS.API.STREAM.INFO.${s}`,
    `$JS.API.STREAM.MSG.GET.${s}`,
    `$JS.API.DIRECT.GET.${s}`,
    `$JS.API.DIRECT.GET.${s}.>`,
    `$JS.API.CONSUMER.CREATE.${s}`,
    `$JS.API.CONSUMER.CREATE.${s}.>`,
    `$JS.API.CONSUMER.DELETE.${s}.>`,
    `$JS.API.CONSUMER.INFO.${s}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${s}.>`,
    `$JS.ACK.${s}.>`,
    `$JS.FC.${s}.>`,
  ];
}

/**
 * Reading a bucket that a reader may find missing at start (a node's agent before the identity
 * service, a service before the kube-bridge): it may create it, with the project's settings, so
 * start order does not matter. Creating gives no right to write a key.
 */
function kvOpen(bucket: string): string[] {
  return [...kvRead(bucket), `$JS.API.STREAM.CREATE.${STREAM(bucket)}`];
}

/** Reading one key of a bucket by a direct get (the bucket's other keys stay unreadable). */
function kvGetKey(bucket: string, key: string): string {
  return `$JS.API.DIRECT.GET.${STREAM(bucket)}.${kvSubjectPrefix(bucket)}${key}`;
}

/** Writing keys of a bucket (exact keys or wildcards below the bucket), and reading it. */
function kvWrite(bucket: string, keys: readonly string[] = ['>']): string[] {
  return [...kvRead(bucket), ...keys.map((k) => `${kvSubjectPrefix(bucket)}${k}`)];
}

/** Owning a bucket: creating and reconfiguring it, and writing any key. */
function kvOwn(bucket: string): string[] {
  const s = STREAM(bucket);
  return [...kvWrite(bucket), `$JS.API.STREAM.CREATE.${s}`, `$JS.API.STREAM.UPDATE.${s}`];
}

const STORE_BUCKETS = [buckets.resources(), buckets.resourceStatus(), buckets.sources()];

/** The resource store, read: every object and status. */
function storeRead(): string[] {
  return STORE_BUCKETS.flatMap(kvOpen);
}

/** Writing objects of some kinds into the store: spec, status, or both. */
function storeWrite(kinds: readonly string[], what: 'spec' | 'status' | 'both'): string[] {
  const keys = kinds.map((k) => `${k}.>`);
  return [
    ...storeRead(),
    ...(what !== 'status' ? kvWrite(buckets.resources(), keys) : []),
    ...(what !== 'spec' ? kvWrite(buckets.resourceStatus(), keys) : []),
  ];
}

/** One object's key in the store (a node's own CiliumNode). */
function storeObjectKey(kind: string, name: string): string {
  return resourceKey({ kind, namespace: '', name });
}

/** Holding named leases; the leases bucket is shared, so each holder may create it. */
function leases(names: readonly string[]): string[] {
  return [...kvWrite(buckets.leases(), names), `$JS.API.STREAM.CREATE.${STREAM(buckets.leases())}`];
}

/** Serving a micro service: its endpoints, $SRV discovery and its health subject. */
function serve(
  component: string,
  node: string | undefined,
  endpoints: readonly string[],
): string[] {
  const nodePart = node === undefined ? '*' : nodeToken(node);
  return ['$SRV.>', `${ROOT}.health.${nodePart}.${component}.*`, ...endpoints];
}

/** Finding instances and asking their health (the CLI's status, discovery). */
const DISCOVER = ['$SRV.>', subjects.healthAll()];

function dedupe(xs: readonly string[]): string[] {
  return [...new Set(xs)].sort();
}

/** Publish and subscribe rights of one principal. Throws on an invalid principal. */
export function permissionsOf(p: Principal): Permissions {
  const problem = principalProblem(p);
  if (problem !== undefined) throw new Error(`principal ${JSON.stringify(p)}: ${problem}`);
  const inbox = `${inboxPrefix(p)}.>`;
  let pub: string[] = [];
  let sub: string[] = [];
  switch (p.role) {
    case 'ipam':
      sub = serve(IPAM_COMPONENT, undefined, [
        ...IPAM_CLUSTER_ENDPOINTS.map((e) => subjects.endpoint(IPAM_COMPONENT, e)),
        ...IPAM_NODE_ENDPOINTS.map((e) => subjects.nodeEndpointAll(IPAM_COMPONENT, e)),
      ]);
      pub = [
        ...kvOwn(buckets.ipam()),
        ...leases(['ipam-lb', 'ipam-nodes']),
        ...storeWrite(['CiliumNode'], 'spec'),
        // LB-IPAM answers in status: a Service's ingress, a pool's conditions (IPsUsed, ...).
        ...storeWrite(['Service', 'CiliumLoadBalancerIPPool'], 'status'),
      ];
      break;
    case 'identity':
      sub = serve(IDENTITY_COMPONENT, undefined, [
        ...IDENTITY_CLUSTER_ENDPOINTS.map((e) => subjects.endpoint(IDENTITY_COMPONENT, e)),
        ...IDENTITY_NODE_ENDPOINTS.map((e) => subjects.nodeEndpointAll(IDENTITY_COMPONENT, e)),
      ]);
      pub = [
        ...kvOwn(buckets.identities()),
        ...kvOwn(buckets.ipcache()),
        ...kvRead(buckets.ipam()),
        ...leases(['identity-gc']),
        ...storeWrite(['CiliumIdentity'], 'spec'),
      ];
      break;
    case 'datapath': {
      const node = p.node!;
      sub = serve(DATAPATH_COMPONENT, node, [
        subjects.nodeEndpointFilter(DATAPATH_COMPONENT, { node }),
      ]);
      pub = [
        ...IPAM_NODE_ENDPOINTS.map((e) => subjects.nodeEndpoint(IPAM_COMPONENT, node, e)),
        subjects.endpoint(IPAM_COMPONENT, 'list'),
        ...IDENTITY_NODE_ENDPOINTS.map((e) => subjects.nodeEndpoint(IDENTITY_COMPONENT, node, e)),
        ...DATAPATH_EVENT_TYPES.map((t) => datapathSubjects.event(t, node)),
        ...kvOpen(buckets.ipcache()),
        // The pod CIDRs IPAM gave every node (routes to peers are checked against them): that
        // one key, by a direct get, and nothing else of the IPAM bucket.
        kvGetKey(buckets.ipam(), ipamKeys.nodeCidrs),
        ...storeWrite(['CiliumEndpoint'], 'both'),
        ...kvWrite(buckets.resources(), [storeObjectKey('CiliumNode', node)]),
      ];
      break;
    }
    case 'kube-bridge':
      sub = serve('kube-bridge', undefined, []);
      pub = STORE_BUCKETS.flatMap(kvOwn);
      break;
    case 'kubelet':
      // The lab's kubelet plays the node's kubelet and the API server's pod bookkeeping.
      sub = serve('lab', p.node, []);
      pub = storeWrite(['Pod'], 'both');
      break;
    case 'lb-announcer':
      sub = serve('lb-announcer', undefined, []);
      pub = storeRead();
      break;
    case 'clustermesh':
      sub = serve('clustermesh', undefined, []);
      // Remote clusters' entries go into the local ipcache through the cluster-wide claims.
      pub = [
        ...storeRead(),
        ...kvRead(buckets.identities()),
        ...kvRead(buckets.ipcache()),
        subjects.endpoint(IDENTITY_COMPONENT, 'ipcache-upsert'),
        subjects.endpoint(IDENTITY_COMPONENT, 'ipcache-delete'),
      ];
      break;
    case 'flow-relay':
      sub = [...serve('flow-relay', undefined, []), datapathSubjects.events()];
      pub = storeRead();
      break;
    case 'viewer':
      // Reads state and taps events; changes nothing.
      sub = [datapathSubjects.events()];
      pub = [
        ...DISCOVER,
        ...IPAM_CLUSTER_ENDPOINTS.map((e) => subjects.endpoint(IPAM_COMPONENT, e)),
        ...(['lookup', 'list'] as const).map((e) => subjects.endpoint(IDENTITY_COMPONENT, e)),
        subjects.nodeEndpointFilter(DATAPATH_COMPONENT),
        ...STORE_BUCKETS.flatMap(kvRead),
        ...kvRead(buckets.ipcache()),
        ...kvRead(buckets.identities()),
        ...kvRead(buckets.ipam()),
        ...kvRead(buckets.leases()),
      ];
      break;
    case 'admin':
      pub = ['>'];
      sub = ['>'];
      break;
  }
  return {
    publish: dedupe(pub),
    subscribe: dedupe([...sub, inbox]),
    allowResponses: p.role !== 'viewer',
  };
}

/**
 * Whether a NATS subject pattern (`a.*.c`, `a.>`) covers a concrete subject: the server's
 * matching rule, for tests and tools that check a subject against the table.
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Whether `perms` lets a principal publish (or subscribe to) `subject`. */
export function allows(perms: Permissions, op: 'publish' | 'subscribe', subject: string): boolean {
  return perms[op].some((pattern) => subjectMatches(pattern, subject));
}

/**
 * The permission table as Markdown (docs/permissions.md is this text; a test keeps it current).
 * Node-scoped roles are shown for a node named `<node>`.
 */
export function permissionTableMarkdown(): string {
  const PLACEHOLDER = 'the-node';
  const lines = [
    '# NATS permissions',
    '',
    'Generated from `packages/contracts/src/access.ts` by `npm run gen:permissions`; do not edit.',
    'Each principal also replies to the requests it serves when "responses" says yes.',
    '',
  ];
  for (const role of ROLES) {
    const p: Principal = NODE_ROLES.has(role) ? { role, node: PLACEHOLDER } : { role };
    const perms = permissionsOf(p);
    const show = (s: string): string => `\`${s.replaceAll(PLACEHOLDER, '<node>')}\``;
    lines.push(`## ${principalName(p).replaceAll(PLACEHOLDER, '<node>')}`, '');
    lines.push(`- responses: ${perms.allowResponses ? 'yes' : 'no'}`);
    lines.push(`- publish: ${perms.publish.map(show).join(', ')}`);
    lines.push(`- subscribe: ${perms.subscribe.map(show).join(', ')}`, '');
  }
  return lines.join('\n');
}

/** Every cluster-wide principal, and the node-scoped ones of each of `nodes`. */
export function principalsFor(nodes: readonly string[]): Principal[] {
  return [
    ...ROLES.filter((r) => !NODE_ROLES.has(r)).map((role) => ({ role })),
    ...nodes.flatMap((node) => [...NODE_ROLES].map((role) => ({ role, node }))),
  ];
}
