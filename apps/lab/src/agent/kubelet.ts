// The lab's kubelet (and its little scheduler): watches Pod objects in the resource store and,
// for pods on a lab node, makes the pod's network namespace, calls the CNI plugin chain with the
// conflist a runtime would use, records the pod's addresses in its status, and starts the pod's
// process in that namespace, as the user the Pod asks for (nobody unless it asks for privilege:
// workloads.ts podUser). Pods from the replicas shorthand are created here; pods without a
// node are bound to the least busy one. Work goes through the store's work queue: one pod is
// handled at a time per name, and a pod whose set-up failed (IPAM or the datapath unreachable,
// say) is undone and set up again after a backoff that doubles, as a kubelet retries a sandbox.
import { rmSync } from 'node:fs';

import { objectRef, type Pod } from '@ciliate/resources';
import { WorkQueue, type Backoff, type Logger } from '@ciliate/runtime';
import { Informer, type InformerEvent, type ResourceStore } from '@ciliate/store';

import {
  DEBIAN_CNI_DIR,
  cniAdd,
  cniArgs,
  cniDel,
  labConfList,
  resultIPv4,
  type PortMapping,
} from '../cni.js';
import { cniBinDir, cniSocket } from '../datapath.js';
import { ownFile } from '../programs.js';
import { podNetns, sandboxId, type NodePlan } from '../plan.js';
import {
  LAB_ENV,
  logFile,
  podRecordFile,
  readPodRecords,
  writePodRecord,
  type LabManifest,
  type PodRecord,
} from '../state.js';
import {
  allowUnprivilegedPortsAndPing,
  createNetns,
  deleteNetns,
  inNs,
  isAlive,
  spawnDaemon,
  stopProcess,
} from '../sys.js';
import {
  TEMPLATE_ANNOTATION,
  expandTemplate,
  isTemplate,
  pickNode,
  podCommand,
  podProcess,
  podUser,
  replicasOf,
  surplusReplicas,
  type PodUser,
} from '../workloads.js';

const POD_SERVER_MAIN = ownFile('pod-server-main.js');
const SCHEDULER_SOURCE = 'lab-scheduler';
/** Pods set up at the same time (each waits on CNI and the pod's ports). */
const WORKERS = 4;
const TEMPLATE_KEY = 'template:';

export interface KubeletDeps {
  store: ResourceStore;
  manifest: LabManifest;
  dir: string;
  log: Logger;
  /** How soon a pod whose set-up (or removal) failed is tried again. */
  retry: Backoff;
  resyncMs?: number;
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export class Kubelet {
  private readonly informer: Informer<'Pod'>;
  private readonly records = new Map<string, PodRecord>();
  private readonly queue: WorkQueue;
  private workers: Promise<void>[] = [];
  private readonly nodes: Map<string, NodePlan>;
  private readonly failures = new Map<string, string>();
  private stopped = false;

  constructor(private readonly deps: KubeletDeps) {
    this.queue = new WorkQueue(deps.retry);
    this.nodes = new Map(deps.manifest.plan.nodes.map((n) => [n.name, n]));
    this.informer = new Informer(deps.store, {
      kind: 'Pod',
      resyncMs: deps.resyncMs ?? 10_000,
    });
  }

  get synced(): boolean {
    return this.informer.synced;
  }

  /** Pods that could not be started, with the reason. */
  failing(): Map<string, string> {
    return this.failures;
  }

  async start(): Promise<void> {
    for (const rec of readPodRecords(this.deps.dir))
      this.records.set(key(rec.namespace, rec.name), rec);
    this.informer.on((ev) => this.onEvent(ev));
    await this.informer.start();
    this.workers = Array.from({ length: WORKERS }, () => this.work());
    // records of pods deleted, or set up only half, while the kubelet was away
    for (const k of this.records.keys()) this.queue.add(k);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer.stop();
    this.queue.close();
    await Promise.allSettled(this.workers);
  }

  private onEvent(ev: InformerEvent<Pod>): void {
    if (this.stopped) return;
    const ns = ev.object.metadata.namespace ?? 'default';
    const name = ev.object.metadata.name ?? '';
    if (isTemplate(ev.object)) {
      this.queue.add(key(ns, `${TEMPLATE_KEY}${name}`));
      return;
    }
    const k = key(ns, name);
    // Status writes (the kubelet's own among them) are not work: after a failed set-up its
    // FailedCreatePodSandBox would retry at once instead of after the backoff. A resync is,
    // unless the pod waits out a backoff, which brings it back when it ends.
    if (ev.type === 'RESYNC' ? this.queue.waiting(k) : !changesSetup(ev)) return;
    this.queue.add(k);
  }

  private async work(): Promise<void> {
    for (;;) {
      const k = await this.queue.take();
      if (k === undefined) return;
      try {
        await this.handle(k);
        this.queue.forget(k);
      } catch (err) {
        const retryInMs = this.stopped ? undefined : this.queue.retry(k);
        this.deps.log.warn(
          { event: 'pod.reconcile_failed', pod: k, err, retryInMs },
          'reconcile failed; retrying after a backoff',
        );
      } finally {
        this.queue.done(k);
      }
    }
  }

  private async handle(k: string): Promise<void> {
    const slash = k.indexOf('/');
    const ns = k.slice(0, slash);
    const name = k.slice(slash + 1);
    if (!name.startsWith(TEMPLATE_KEY)) {
      await this.reconcile(ns, name);
      return;
    }
    const templateName = name.slice(TEMPLATE_KEY.length);
    const template = this.informer.get(ns, templateName);
    if (template && isTemplate(template)) await this.expand(template);
    else await this.dropTemplate(ns, templateName);
  }

  private async reconcile(ns: string, name: string): Promise<void> {
    if (this.stopped) return;
    const k = key(ns, name);
    const pod = this.informer.get(ns, name);
    const rec = this.records.get(k);
    if (pod && !pod.spec.nodeName && !isTemplate(pod)) {
      await this.bind(pod);
      return;
    }
    const node = pod?.spec.nodeName ? this.nodes.get(pod.spec.nodeName) : undefined;
    const wanted = pod !== undefined && node !== undefined && !isTemplate(pod);
    if (rec && (!wanted || rec.uid !== pod.metadata.uid || rec.node !== node.name)) {
      await this.teardown(rec);
    }
    if (!wanted) {
      this.failures.delete(k);
      return;
    }
    const half = this.records.get(k);
    if (half && half.cniResult === undefined) {
      // the record of a set-up that did not finish (it failed and could not be undone, or the
      // kubelet died during it), not of a running pod: undo it, then set the pod up again
      await this.teardown(half);
    }
    const current = this.records.get(k);
    if (!current) {
      await this.setup(pod, node);
      return;
    }
    if (current.process && !isAlive(current.process)) {
      // restartPolicy Always, as a kubelet would (other policies: left stopped)
      if ((pod.spec.restartPolicy ?? 'Always') === 'Always') {
        this.startProcess(pod, current, podUser(pod));
      }
    }
    const status = (pod as Pod & { status?: { podIP?: string; phase?: string } }).status;
    if (current.ip && (status?.podIP !== current.ip || status?.phase !== 'Running')) {
      await this.writeRunning(pod, node, current.ip);
    }
  }

  private async bind(pod: Pod): Promise<void> {
    const nodeName = pickNode(
      [...this.nodes.keys()],
      this.informer.list().filter((p) => !isTemplate(p)),
    );
    const { status: _s, ...rest } = pod as Pod & { status?: unknown };
    const meta = { ...rest.metadata };
    delete meta.resourceVersion;
    await this.deps.store.apply(
      { ...rest, metadata: meta, spec: { ...rest.spec, nodeName } },
      { source: SCHEDULER_SOURCE },
    );
    this.deps.log.info(
      {
        event: 'pod.scheduled',
        pod: key(meta.namespace ?? 'default', meta.name ?? ''),
        node: nodeName,
      },
      'scheduled',
    );
  }

  private async expand(template: Pod): Promise<void> {
    const nodes = [...this.nodes.keys()];
    let replicas: number;
    try {
      replicas = replicasOf(template) ?? 0;
    } catch (err) {
      await this.deps.store.setStatus(objectRef(template), {
        phase: 'Failed',
        reason: 'InvalidReplicas',
        message: (err as Error).message,
      });
      return;
    }
    for (const p of expandTemplate(template, nodes)) {
      await this.deps.store.apply(p, { source: SCHEDULER_SOURCE });
    }
    for (const name of surplusReplicas(template, this.informer.list(), nodes)) {
      await this.deps.store.delete({
        kind: 'Pod',
        namespace: template.metadata.namespace ?? 'default',
        name,
      });
    }
    await this.deps.store.setStatus(objectRef(template), {
      phase: 'Pending',
      reason: 'LabTemplate',
      message: `a template: the lab runs it as ${replicas} pods ${template.metadata.name}-0..${replicas - 1} spread over the nodes`,
    });
  }

  private async dropTemplate(ns: string, templateName: string): Promise<void> {
    for (const p of this.informer.list()) {
      if (
        (p.metadata.namespace ?? 'default') === ns &&
        p.metadata.annotations?.[TEMPLATE_ANNOTATION] === templateName
      ) {
        await this.deps.store.delete({ kind: 'Pod', namespace: ns, name: p.metadata.name ?? '' });
      }
    }
  }

  private cniInvocation(rec: PodRecord, node: NodePlan) {
    return {
      containerId: rec.containerId,
      netnsPath: `/run/netns/${rec.netns}`,
      ifname: 'eth0',
      args: cniArgs(rec.namespace, rec.name, rec.containerId),
      path: [cniBinDir(), DEBIAN_CNI_DIR],
      runIn: node.netns,
    };
  }

  private async setup(pod: Pod, node: NodePlan): Promise<void> {
    const ns = pod.metadata.namespace ?? 'default';
    const name = pod.metadata.name ?? '';
    const k = key(ns, name);
    const rec: PodRecord = {
      namespace: ns,
      name,
      uid: pod.metadata.uid ?? '',
      node: node.name,
      netns: podNetns(this.deps.manifest.name, ns, name),
      containerId: sandboxId(pod.metadata.uid ?? k),
      logFile: logFile(this.deps.dir, 'pod', `${ns}_${name}`),
    };
    // recorded first: a kubelet that dies half-way finds and undoes it on its next start
    writePodRecord(this.deps.dir, rec);
    this.records.set(k, rec);
    try {
      // A pod that cannot run as it asks (runAsNonRoot as root, a bad securityContext) fails
      // before a sandbox is made for it.
      const user = podUser(pod);
      await createNetns(rec.netns);
      // The pod's process is not root: the ports and ping its namespace allows it, as a
      // container runtime's namespace does.
      await allowUnprivilegedPortsAndPing(rec.netns);
      const result = await cniAdd(
        labConfList(cniSocket(this.deps.dir, node.name)),
        this.cniInvocation(rec, node),
        { portMappings: portMappings(pod) },
      );
      rec.cniResult = result;
      const ip = resultIPv4(result);
      if (ip) rec.ip = ip;
      writePodRecord(this.deps.dir, rec);
      this.startProcess(pod, rec, user);
      await this.waitListening(pod, rec);
      this.failures.delete(k);
      if (ip) await this.writeRunning(pod, node, ip);
      this.deps.log.info({ event: 'pod.started', pod: k, node: node.name, ip }, 'pod running');
    } catch (err) {
      const message = (err as Error).message;
      this.failures.set(k, message);
      this.deps.log.warn({ event: 'pod.setup_failed', pod: k, err }, 'pod setup failed');
      await this.deps.store
        .setStatus(objectRef(pod), {
          phase: 'Pending',
          reason: 'FailedCreatePodSandBox',
          message,
        })
        .catch(() => undefined);
      // What cannot be undone now stays recorded, and the retry undoes it first.
      await this.teardown(rec).catch(() => undefined);
      throw err;
    }
  }

  private startProcess(pod: Pod, rec: PodRecord, user: PodUser): void {
    const proc = podProcess(pod, POD_SERVER_MAIN, process.execPath);
    // The pod's own environment, not the kubelet's (whose settings name NATS and its
    // credentials); the lab's tag stays, so that `lab down` finds the process after a crash.
    const child = spawnDaemon(podCommand(rec.netns, proc.argv, user), {
      logFile: rec.logFile,
      env: {
        PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: user.uid === 0 ? '/root' : '/',
        ...(process.env[LAB_ENV] === undefined ? {} : { [LAB_ENV]: process.env[LAB_ENV] }),
        POD_NAME: rec.name,
        POD_NAMESPACE: rec.namespace,
        POD_IP: rec.ip ?? '',
        NODE_NAME: rec.node,
      },
      // The kubelet's own directory may be closed to the pod's user.
      cwd: '/',
    });
    rec.process = { ...child, argv: proc.argv };
    writePodRecord(this.deps.dir, rec);
  }

  /** Like a readiness probe: Running is written once the pod's TCP ports accept connections. */
  private async waitListening(pod: Pod, rec: PodRecord): Promise<void> {
    const want = podProcess(pod, POD_SERVER_MAIN, process.execPath).tcpPorts;
    if (want.length === 0) return;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && isAlive(rec.process)) {
      const { stdout } = await inNs(rec.netns, 'ss', ['-Hltn']).catch(() => ({ stdout: '' }));
      const listening = new Set(
        stdout
          .split('\n')
          .map((l) => l.trim().split(/\s+/)[3] ?? '')
          .map((local) => Number(local.slice(local.lastIndexOf(':') + 1)))
          .filter((n) => n > 0),
      );
      if (want.every((p) => listening.has(p))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    this.deps.log.warn(
      { event: 'pod.ports_not_listening', pod: `${rec.namespace}/${rec.name}`, ports: want },
      'the pod does not listen on all its TCP ports yet',
    );
  }

  private async writeRunning(pod: Pod, node: NodePlan, ip: string): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    await this.deps.store.setStatus(objectRef(pod), {
      phase: 'Running',
      podIP: ip,
      podIPs: [{ ip }],
      hostIP: node.ip,
      hostIPs: [{ ip: node.ip }],
      startTime: now,
      conditions: [
        { type: 'PodScheduled', status: 'True' },
        { type: 'Initialized', status: 'True' },
        { type: 'ContainersReady', status: 'True' },
        { type: 'Ready', status: 'True' },
      ],
    });
  }

  /** Process, CNI DEL, namespace, record; a failed DEL keeps the record so a resync retries. */
  private async teardown(rec: PodRecord): Promise<void> {
    const k = key(rec.namespace, rec.name);
    await stopProcess(rec.process, 2000);
    const node = this.nodes.get(rec.node);
    if (node) {
      try {
        await cniDel(
          labConfList(cniSocket(this.deps.dir, node.name)),
          this.cniInvocation(rec, node),
          {},
          rec.cniResult,
        );
      } catch (err) {
        this.deps.log.warn(
          { event: 'pod.cni_del_failed', pod: k, err },
          'CNI DEL failed; retrying',
        );
        delete rec.process;
        writePodRecord(this.deps.dir, rec);
        throw err;
      }
    }
    await deleteNetns(rec.netns);
    rmSync(podRecordFile(this.deps.dir, rec.namespace, rec.name), { force: true });
    this.records.delete(k);
    this.deps.log.info({ event: 'pod.removed', pod: k }, 'pod removed');
  }
}

/** Does the event change what the kubelet does with the pod (which pod, on which node)? */
function changesSetup(ev: InformerEvent<Pod>): boolean {
  if (ev.type === 'ADDED' || ev.type === 'DELETED') return true;
  if (ev.type !== 'MODIFIED' || !ev.old) return false;
  return (
    ev.old.metadata.uid !== ev.object.metadata.uid ||
    ev.old.spec.nodeName !== ev.object.spec.nodeName ||
    isTemplate(ev.old) !== isTemplate(ev.object)
  );
}

function portMappings(pod: Pod): PortMapping[] {
  const out: PortMapping[] = [];
  for (const c of pod.spec.containers) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort) continue;
      out.push({
        hostPort: p.hostPort,
        containerPort: p.containerPort,
        protocol: (p.protocol ?? 'TCP').toLowerCase() as PortMapping['protocol'],
        ...(p.hostIP ? { hostIP: p.hostIP } : {}),
      });
    }
  }
  return out;
}
