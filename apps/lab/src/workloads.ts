// What the lab does with Pod objects, as pure functions: which pods a lab node runs, how the
// replicas shorthand expands into pods spread over the nodes, where an unscheduled pod goes, and
// what process a pod runs, as which user.
import type { Pod } from '@ciliate/resources';

import { LabError } from './plan.js';

/** A Pod with this annotation (and no spec.nodeName) is a template the lab expands. */
export const REPLICAS_ANNOTATION = 'lab.ciliate.io/replicas';
/** Set on every pod made from a template: the template's name. */
export const TEMPLATE_ANNOTATION = 'lab.ciliate.io/template';
export const MAX_REPLICAS = 100;
export const DEFAULT_HTTP_PORT = 8080;

export function replicasOf(pod: Pod): number | undefined {
  const raw = pod.metadata.annotations?.[REPLICAS_ANNOTATION];
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) > MAX_REPLICAS) {
    throw new LabError(
      'bad_request',
      `metadata.annotations[${REPLICAS_ANNOTATION}]: Invalid value: ${JSON.stringify(raw)}: must be an integer 0-${MAX_REPLICAS}`,
    );
  }
  return Number(raw);
}

export function isTemplate(pod: Pod): boolean {
  return !pod.spec.nodeName && pod.metadata.annotations?.[REPLICAS_ANNOTATION] !== undefined;
}

/**
 * The pods a template stands for: `<name>-<i>` for i in 0..replicas-1, on node i mod N (round
 * robin over the lab's nodes in order), with the template's labels and spec.
 */
export function expandTemplate(template: Pod, nodes: readonly string[]): Pod[] {
  const replicas = replicasOf(template) ?? 0;
  if (nodes.length === 0) throw new LabError('failed', 'the lab has no nodes');
  const name = template.metadata.name ?? '';
  const annotations = { ...(template.metadata.annotations ?? {}) };
  delete annotations[REPLICAS_ANNOTATION];
  annotations[TEMPLATE_ANNOTATION] = name;
  const out: Pod[] = [];
  for (let i = 0; i < replicas; i++) {
    out.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${name}-${i}`,
        ...(template.metadata.namespace ? { namespace: template.metadata.namespace } : {}),
        ...(template.metadata.labels ? { labels: { ...template.metadata.labels } } : {}),
        annotations,
      },
      spec: { ...structuredClone(template.spec), nodeName: nodes[i % nodes.length]! },
    });
  }
  return out;
}

/** The names of pods made from `template` that no longer belong to it (scaled down). */
export function surplusReplicas(
  template: Pod,
  existing: readonly Pod[],
  nodes: readonly string[],
): string[] {
  const want = new Set(expandTemplate(template, nodes).map((p) => p.metadata.name));
  return existing
    .filter(
      (p) =>
        p.metadata.namespace === template.metadata.namespace &&
        p.metadata.annotations?.[TEMPLATE_ANNOTATION] === template.metadata.name &&
        !want.has(p.metadata.name),
    )
    .map((p) => p.metadata.name ?? '');
}

/** The node for a pod without spec.nodeName: the one running the fewest pods, first on ties. */
export function pickNode(nodes: readonly string[], pods: readonly Pod[]): string {
  if (nodes.length === 0) throw new LabError('failed', 'the lab has no nodes');
  const load = new Map(nodes.map((n) => [n, 0]));
  for (const p of pods) {
    const n = p.spec.nodeName;
    if (n !== undefined && load.has(n)) load.set(n, load.get(n)! + 1);
  }
  let best = nodes[0]!;
  for (const n of nodes) if (load.get(n)! < load.get(best)!) best = n;
  return best;
}

export interface PodProcess {
  /** The manifest's command (first container that has one), or the built-in server. */
  kind: 'command' | 'builtin';
  argv: string[];
  tcpPorts: number[];
  udpPorts: number[];
}

/** The ports a pod declares over all its containers, by protocol, sorted and unique. */
export function podPorts(pod: Pod): { tcp: number[]; udp: number[] } {
  const tcp = new Set<number>();
  const udp = new Set<number>();
  for (const c of pod.spec.containers) {
    for (const p of c.ports ?? []) {
      if (p.protocol === 'UDP') udp.add(p.containerPort);
      else if (p.protocol === 'TCP' || p.protocol === undefined) tcp.add(p.containerPort);
    }
  }
  return { tcp: [...tcp].sort((a, b) => a - b), udp: [...udp].sort((a, b) => a - b) };
}

type Container = Pod['spec']['containers'][number];

/** The container whose process the lab runs: the first with a command, else the first. */
function runContainer(pod: Pod): { container: Container; index: number; hasCommand: boolean } {
  const i = pod.spec.containers.findIndex((c) => c.command && c.command.length > 0);
  const index = Math.max(i, 0);
  return { container: pod.spec.containers[index]!, index, hasCommand: i >= 0 };
}

/** What the lab runs in the pod's namespace. `serverMain` is the built-in server's script. */
export function podProcess(pod: Pod, serverMain: string, nodeBin: string): PodProcess {
  const { tcp, udp } = podPorts(pod);
  const run = runContainer(pod);
  const withCommand = run.hasCommand ? run.container : undefined;
  if (withCommand) {
    return {
      kind: 'command',
      argv: [...withCommand.command!, ...(withCommand.args ?? [])],
      tcpPorts: tcp,
      udpPorts: udp,
    };
  }
  const tcpPorts = tcp.length > 0 ? tcp : [DEFAULT_HTTP_PORT];
  return {
    kind: 'builtin',
    argv: [
      nodeBin,
      serverMain,
      '--name',
      pod.metadata.name ?? '',
      ...tcpPorts.flatMap((p) => ['--tcp', String(p)]),
      ...udp.flatMap((p) => ['--udp', String(p)]),
    ],
    tcpPorts,
    udpPorts: udp,
  };
}

/** The user and group a pod's process runs as when the pod names none: nobody and nogroup. */
export const UNPRIVILEGED_ID = 65534;

const MAX_ID = 2_147_483_647;

/** Who a pod's process runs as. */
export interface PodUser {
  readonly uid: number;
  readonly gid: number;
  /** no_new_privs: no setuid program or file capability raises what the process may do. */
  readonly noNewPrivs: boolean;
}

interface SecurityFields {
  privileged?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  allowPrivilegeEscalation?: boolean;
}

function invalid(field: string, value: unknown, reason: string): LabError {
  return new LabError(
    'bad_request',
    `${field}: Invalid value: ${JSON.stringify(value) ?? String(value)}: ${reason}`,
  );
}

/** The fields of a securityContext the lab honours (the schema keeps the block opaque). */
function securityFields(raw: unknown, field: string): SecurityFields {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalid(field, raw, 'must be an object');
  const o = raw as Record<string, unknown>;
  const out: SecurityFields = {};
  for (const k of ['runAsUser', 'runAsGroup'] as const) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_ID) {
      throw invalid(`${field}.${k}`, v, `must be an integer 0-${MAX_ID}`);
    }
    out[k] = v;
  }
  for (const k of ['privileged', 'runAsNonRoot', 'allowPrivilegeEscalation'] as const) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'boolean') throw invalid(`${field}.${k}`, v, 'must be true or false');
    out[k] = v;
  }
  return out;
}

/**
 * The user the lab runs a pod's process as. Kubernetes' fields, the container's over the pod's:
 * `runAsUser` / `runAsGroup` when given; otherwise root for a `privileged: true` container and
 * nobody (65534, group 65534) for every other. So a pod runs as root only when it asks for
 * privilege (`privileged: true` or `runAsUser: 0`), and `runAsNonRoot: true` refuses that, as a
 * kubelet does. A process that is not root gets no_new_privs unless its container allows
 * privilege escalation (`allowPrivilegeEscalation: true`): lab pods see the host's file system,
 * setuid programs included, since the lab has no images.
 */
export function podUser(pod: Pod): PodUser {
  const { container, index } = runContainer(pod);
  const cField = `spec.containers[${index}].securityContext`;
  const c = securityFields(container.securityContext, cField);
  const p = securityFields(pod.spec.securityContext, 'spec.securityContext');
  const uid = c.runAsUser ?? p.runAsUser ?? (c.privileged === true ? 0 : UNPRIVILEGED_ID);
  const gid = c.runAsGroup ?? p.runAsGroup ?? (uid === 0 ? 0 : UNPRIVILEGED_ID);
  if (uid === 0 && (c.runAsNonRoot ?? p.runAsNonRoot) === true) {
    const field = c.runAsNonRoot !== undefined ? cField : 'spec.securityContext';
    throw invalid(
      `${field}.runAsNonRoot`,
      true,
      'the process would run as root (privileged or runAsUser 0); give a non-zero runAsUser',
    );
  }
  const escalation = c.allowPrivilegeEscalation ?? uid === 0;
  return { uid, gid, noNewPrivs: !escalation };
}

/**
 * The command line that runs `argv` in network namespace `netns` as `user`: `ip netns exec`
 * (which needs root to enter the namespace), then setpriv to drop to the user, its group and no
 * supplementary groups before the pod's program starts. Root with nothing to drop runs directly.
 */
export function podCommand(netns: string, argv: readonly string[], user: PodUser): string[] {
  const enter = ['ip', 'netns', 'exec', netns];
  if (user.uid === 0 && user.gid === 0 && !user.noNewPrivs) return [...enter, ...argv];
  return [
    ...enter,
    'setpriv',
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    '--clear-groups',
    ...(user.noNewPrivs ? ['--no-new-privs'] : []),
    '--',
    ...argv,
  ];
}
