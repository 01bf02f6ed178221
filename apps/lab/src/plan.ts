// The address and naming plan of a lab: pure, derived from the lab's name, its node count and
// the indexes other labs already hold, so that two labs never share an address range, a
// namespace name or a pin directory.
import { createHash } from 'node:crypto';

export type RoutingMode = 'native' | 'vxlan';

export class LabError extends Error {
  override readonly name = 'LabError';
  constructor(
    readonly code: 'bad_request' | 'not_found' | 'conflict' | 'failed' | 'not_supported',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Lab names are DNS labels short enough to keep every derived name readable. */
export const LAB_NAME = /^[a-z]([-a-z0-9]{0,18}[a-z0-9])?$/;
export const MAX_NODES = 16;
/** Labs take indexes 100-199: underlay 192.168.<k>.0/24, pods 10.<k>.0.0/16. */
const INDEX_BASE = 100;
const INDEX_COUNT = 100;

export function validateLabName(name: string, field = 'name'): void {
  if (!LAB_NAME.test(name)) {
    throw new LabError(
      'bad_request',
      `${field}: Invalid value: ${JSON.stringify(name)}: must be 1-20 lower-case letters, digits or "-", starting with a letter and not ending with "-"`,
    );
  }
}

/** The index a lab named `name` takes: its hash's slot, or the next one no other lab holds. */
export function labIndex(name: string, taken: ReadonlySet<number>): number {
  const h = createHash('sha256').update(name).digest().readUInt32BE(0);
  for (let i = 0; i < INDEX_COUNT; i++) {
    const k = INDEX_BASE + ((h + i) % INDEX_COUNT);
    if (!taken.has(k)) return k;
  }
  throw new LabError('conflict', `no lab index left: ${INDEX_COUNT} labs exist`);
}

export interface NodePlan {
  /** Node name in the cluster (the Node object, --node of its services). */
  name: string;
  /** 1-based. */
  index: number;
  netns: string;
  /** The node's port on the segment's bridge (inside the hub namespace). */
  hubPort: string;
  underlayDevice: string;
  ip: string;
  pinDir: string;
}

export interface LabPlan {
  name: string;
  index: number;
  routing: RoutingMode;
  /** Every namespace of this lab starts with this (pods included). */
  netnsPrefix: string;
  hubNetns: string;
  bridge: string;
  underlayCidr: string;
  clusterPoolCidr: string;
  clusterPoolMaskSize: number;
  /** Parent of the nodes' pin directories. */
  pinRoot: string;
  nodes: NodePlan[];
}

export const PIN_BASE = '/sys/fs/bpf/ciliate-lab';

export function planLab(opts: {
  name: string;
  nodes: number;
  routing: RoutingMode;
  taken: ReadonlySet<number>;
}): LabPlan {
  validateLabName(opts.name);
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > MAX_NODES) {
    throw new LabError(
      'bad_request',
      `nodes: Invalid value: ${JSON.stringify(opts.nodes)}: must be an integer 1-${MAX_NODES}`,
    );
  }
  if (opts.routing !== 'native' && opts.routing !== 'vxlan') {
    throw new LabError(
      'bad_request',
      `routing: Invalid value: ${JSON.stringify(opts.routing)}: must be "native" or "vxlan"`,
    );
  }
  const k = labIndex(opts.name, opts.taken);
  const prefix = netnsPrefix(opts.name);
  const pinRoot = `${PIN_BASE}/${opts.name}`;
  const nodes: NodePlan[] = [];
  for (let i = 1; i <= opts.nodes; i++) {
    const name = `node-${i}`;
    nodes.push({
      name,
      index: i,
      netns: `${prefix}${name}`,
      hubPort: `port${i}`,
      underlayDevice: 'eth0',
      ip: `192.168.${k}.${10 + i}`,
      pinDir: `${pinRoot}/${name}`,
    });
  }
  return {
    name: opts.name,
    index: k,
    routing: opts.routing,
    netnsPrefix: prefix,
    hubNetns: `${prefix}hub`,
    bridge: 'br0',
    underlayCidr: `192.168.${k}.0/24`,
    clusterPoolCidr: `10.${k}.0.0/16`,
    clusterPoolMaskSize: 24,
    pinRoot,
    nodes,
  };
}

/** Dots cannot occur in a lab name, so no lab's prefix is a prefix of another's. */
export function netnsPrefix(lab: string): string {
  return `cil.${lab}.`;
}

/** A pod's namespace: readable when short, hashed when the names are long. */
export function podNetns(lab: string, namespace: string, pod: string): string {
  const plain = `${netnsPrefix(lab)}pod.${namespace}.${pod}`;
  if (plain.length <= 80) return plain;
  const h = createHash('sha256').update(`${namespace}/${pod}`).digest('hex').slice(0, 16);
  return `${netnsPrefix(lab)}pod.${h}`;
}

/** The container ID a runtime would give the pod's sandbox: 64 hex characters, per pod UID. */
export function sandboxId(uid: string): string {
  return createHash('sha256').update(`ciliate-lab-sandbox/${uid}`).digest('hex');
}
