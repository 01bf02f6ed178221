// `lab up`, `down`, `status`, `exec` and `logs` as library calls (the CLI renders them).
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  rmdirSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

import { principalName, type Principal } from '@ciliate/contracts';
import {
  credentialEnv,
  discoverInstances,
  fetchHealth,
  issueSecurity,
  natsConnectionOptions,
  principalNatsSettings,
} from '@ciliate/runtime';
import { ResourceStore } from '@ciliate/store';
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';

import {
  DATAPATH_IMPL,
  connectNodes,
  datapathLaunch,
  datapathInStatus,
  datapathPodCidr,
  supportedRouting,
  waitDatapathReady,
} from './datapath.js';
import { contextAfterDown } from './context.js';
import { natsLaunch } from './nats.js';
import { REPO_ROOT, entry, ownFile } from './programs.js';
import {
  LabError,
  PIN_BASE,
  netnsPrefix,
  planLab,
  podNetns,
  validateLabName,
  type LabPlan,
  type NodePlan,
  type RoutingMode,
} from './plan.js';
import {
  LAB_ENV,
  labDir,
  listLabs,
  logFile,
  readManifest,
  readPodRecords,
  writeManifest,
  type LabManifest,
  type ManagedProcess,
  type PodRecord,
} from './state.js';
import {
  createNetns,
  deleteNetns,
  freePort,
  inNs,
  ip,
  isAlive,
  listNetns,
  netnsPids,
  portOpen,
  spawnDaemon,
  stopProcess,
  waitFor,
} from './sys.js';

export const DEFAULT_LAB = 'default';
const KUBELET_MAIN = ownFile('agent/main.js');
const SERVICE_MAIN = (svc: 'identity' | 'ipam'): string => entry(`@ciliate/${svc}/main`);
/** The node name the cluster services and the lab's kubelet report in `ciliate status`. */
export const CONTROL_NODE = 'control-plane';
/** The store source the lab writes Node objects as (IPAM's --sync-sources). */
export const LAB_SOURCE = 'lab';

export interface LabOptions {
  env?: NodeJS.ProcessEnv;
  progress?: (line: string) => void;
}

// ---------------------------------------------------------------------------------------------
// The CLI context

export function contextFile(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.CILIATE_CONTEXT_FILE ??
    join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'ciliate', 'context.json')
  );
}

export function contextName(lab: string): string {
  return `lab-${lab}`;
}

/**
 * Every service instance the lab runs, as `ciliate status` should find it: a killed process
 * then shows as missing there (its micro service is simply gone from $SRV).
 */
export function expectedInstances(m: LabManifest): { component: string; node: string }[] {
  return m.processes
    .filter((p) => p.service !== 'nats')
    .filter((p) => p.service !== 'datapath' || datapathInStatus(m.datapath))
    .map((p) => ({
      component: p.service === 'kubelet' ? 'lab' : p.service,
      node: p.env.CILIATE_NODE ?? p.node ?? CONTROL_NODE,
    }));
}

function writeContext(m: LabManifest, env: NodeJS.ProcessEnv): void {
  const file = contextFile(env);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    JSON.stringify(
      {
        name: contextName(m.name),
        natsUrl: m.natsUrl,
        lab: m.name,
        // The CLI runs as the lab's admin; the viewer's credentials sit next to them.
        ...(m.securityDir
          ? (() => {
              const s = principalNatsSettings(m.securityDir, { role: 'admin' });
              return {
                role: 'admin',
                nkey: s.nkeySeedFile,
                tlsCa: s.tlsCaFile,
                tlsCert: s.tlsCertFile,
                tlsKey: s.tlsKeyFile,
              };
            })()
          : {}),
        expect: expectedInstances(m),
      },
      null,
      2,
    ) + '\n',
  );
}

/** After `name` went down: the context stays on, or moves to, a lab that is still up. */
function settleContext(name: string, env: NodeJS.ProcessEnv): void {
  const labs = listLabs(env).flatMap((l) => (l.manifest ? [l.manifest] : []));
  const change = contextAfterDown(
    currentLab(env),
    name,
    labs.map((m) => ({ name: m.name, up: m.phase === 'up', createdAt: m.createdAt })),
  );
  const target = change.action === 'switch' ? labs.find((m) => m.name === change.lab) : undefined;
  if (target) {
    writeContext(target, env);
  } else if (change.action === 'remove') {
    try {
      unlinkSync(contextFile(env));
    } catch {
      // already gone
    }
  }
}

/** The lab the current context points at, if it is one. */
export function currentLab(env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    const raw = JSON.parse(readFileSync(contextFile(env), 'utf8')) as { lab?: unknown };
    return typeof raw.lab === 'string' ? raw.lab : undefined;
  } catch {
    return undefined;
  }
}

/** --name, else the lab of the current context, else the only lab, else "default". */
export function resolveLabName(name: string | undefined, env: NodeJS.ProcessEnv): string {
  if (name !== undefined) {
    validateLabName(name, '--name');
    return name;
  }
  const cur = currentLab(env);
  if (cur && readManifest(labDir(cur, env))) return cur;
  const labs = listLabs(env).filter((l) => l.manifest);
  if (labs.length === 1) return labs[0]!.name;
  return DEFAULT_LAB;
}

// ---------------------------------------------------------------------------------------------
// Processes

function recordProcess(
  m: LabManifest,
  dir: string,
  service: string,
  node: string | undefined,
  argv: string[],
  env: Record<string, string>,
): ManagedProcess {
  const log = logFile(dir, service, node);
  mkdirSync(dirname(log), { recursive: true });
  const rec = spawnDaemon(argv, {
    logFile: log,
    env: { ...process.env, ...env, [LAB_ENV]: m.name },
    cwd: REPO_ROOT,
  });
  const proc: ManagedProcess = {
    service,
    ...(node ? { node } : {}),
    argv,
    env,
    logFile: log,
    ...rec,
  };
  m.processes = m.processes.filter((p) => !(p.service === service && p.node === node));
  m.processes.push(proc);
  writeManifest(dir, m);
  return proc;
}

/** Stops a lab process (when it runs) and starts it again with its recorded command and settings. */
async function restartProcess(
  m: LabManifest,
  dir: string,
  p: ManagedProcess,
): Promise<ManagedProcess> {
  await stopProcess(p, 3000);
  return recordProcess(m, dir, p.service, p.node, p.argv, p.env);
}

/** Every principal a lab runs as: the services, each node's datapath, the kubelet, the CLI. */
export function labPrincipals(plan: LabPlan): Principal[] {
  return [
    { role: 'admin' },
    { role: 'viewer' },
    { role: 'identity' },
    { role: 'ipam' },
    { role: 'kubelet', node: CONTROL_NODE },
    ...plan.nodes.map((n) => ({ role: 'datapath' as const, node: n.name })),
  ];
}

function serviceEnv(m: LabManifest, node: string, principal: Principal): Record<string, string> {
  return {
    CILIATE_NATS_URL: m.natsUrl,
    CILIATE_NODE: node,
    CILIATE_HTTP_ADDRESS: '127.0.0.1:0',
    ...(m.securityDir ? credentialEnv(m.securityDir, principalName(principal)) : {}),
  };
}

/** How to connect to a lab's NATS as `principal` (the lab itself and the demo: the admin). */
export function labConnectOptions(
  m: LabManifest,
  name: string,
  principal: Principal = { role: 'admin' },
): ConnectionOptions {
  return {
    ...natsConnectionOptions({
      servers: m.natsUrl,
      name,
      ...(m.securityDir ? principalNatsSettings(m.securityDir, principal) : {}),
    }),
    maxReconnectAttempts: 5,
  };
}

async function connectLab(m: LabManifest): Promise<NatsConnection> {
  return connect(labConnectOptions(m, 'ciliate-lab'));
}

/** Components (and their count) that must be ready in `ciliate status` for the lab to be up. */
export function expectedComponents(m: LabManifest): Map<string, number> {
  const want = new Map<string, number>([
    ['identity', 1],
    ['ipam', 1],
    ['lab', 1],
  ]);
  if (datapathInStatus(m.datapath)) want.set('datapath', m.plan.nodes.length);
  return want;
}

/** What is not ready yet, by `ciliate status`'s view; empty when the lab is ready. */
export async function pendingReadiness(nc: NatsConnection, m: LabManifest): Promise<string[]> {
  const found = await discoverInstances(nc, { maxWaitMs: 500 });
  const out: string[] = [];
  for (const [component, count] of expectedComponents(m)) {
    const inst = found.filter((i) => i.component === component);
    if (inst.length < count) out.push(`${component} (${inst.length}/${count} running)`);
    for (const i of inst) {
      const h = await fetchHealth(nc, i);
      if (!h) out.push(`${component}@${i.node} (health not answered)`);
      else if (!h.ready) {
        const failing = h.checks.filter((c) => !c.ok).map((c) => c.detail ?? c.name);
        out.push(`${component}@${i.node} (${failing.join('; ') || 'not ready'})`);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// up

export interface UpOptions extends LabOptions {
  name?: string;
  /** NATS without TLS and credentials: only when asked for by name (`--plaintext`). */
  plaintext?: boolean;
  nodes?: number;
  routing?: RoutingMode;
  timeoutMs?: number;
}

export async function labUp(opts: UpOptions = {}): Promise<LabManifest> {
  const env = opts.env ?? process.env;
  const progress = opts.progress ?? (() => undefined);
  const name = opts.name ?? DEFAULT_LAB;
  validateLabName(name, '--name');
  if (process.getuid?.() !== 0) {
    throw new LabError(
      'failed',
      'the lab needs root (network namespaces, eBPF): run it with sudo or as root',
    );
  }
  const routing = opts.routing ?? 'native';
  supportedRouting(routing, DATAPATH_IMPL);
  const dir = labDir(name, env);
  const existing = readManifest(dir);
  if (existing) return resumeLab(existing, dir, { ...opts, env, progress });
  if (existsSync(dir) || listNetns(netnsPrefix(name)).length > 0) {
    throw new LabError(
      'conflict',
      `lab ${name} has leftovers of an earlier run; remove them with: ciliate lab down --name ${name}`,
    );
  }
  const taken = new Set(
    listLabs(env)
      .map((l) => l.manifest?.plan.index)
      .filter((k): k is number => k !== undefined),
  );
  const plan = planLab({ name, nodes: opts.nodes ?? 2, routing, taken });
  const port = await freePort();
  const m: LabManifest = {
    version: 1,
    name,
    createdAt: new Date().toISOString(),
    phase: 'creating',
    plan,
    natsPort: port,
    natsUrl: opts.plaintext ? `nats://127.0.0.1:${port}` : `tls://127.0.0.1:${port}`,
    ...(opts.plaintext ? {} : { securityDir: join(dir, 'security') }),
    datapath: DATAPATH_IMPL,
    netns: [],
    pinDirs: [],
    processes: [],
  };
  writeManifest(dir, m);
  progress(
    `lab ${name}: ${plan.nodes.length} nodes on ${plan.underlayCidr}, pods from ${plan.clusterPoolCidr}, ${routing} routing`,
  );

  if (m.securityDir) {
    progress("issuing the CA, certificates and each component's credentials");
    await issueSecurity(m.securityDir, labPrincipals(plan));
  }
  progress(`starting nats-server on ${m.natsUrl}`);
  recordProcess(
    m,
    dir,
    'nats',
    undefined,
    natsLaunch({
      dir,
      lab: name,
      port,
      include: m.securityDir ? join(m.securityDir, 'nats-security.conf') : undefined,
    }),
    {},
  );
  await waitFor('nats-server to listen', async () => (await portOpen(port)) || undefined, 20_000);

  progress('creating the nodes (network namespaces on one L2 segment)');
  await createSegment(m, dir);

  const nc = await connectLab(m);
  try {
    progress('registering the nodes');
    const store = await ResourceStore.open(nc);
    await registerNodes(store, plan);

    progress('starting identity and ipam');
    recordProcess(m, dir, 'identity', undefined, [process.execPath, SERVICE_MAIN('identity')], {
      ...serviceEnv(m, CONTROL_NODE, { role: 'identity' }),
    });
    recordProcess(m, dir, 'ipam', undefined, [process.execPath, SERVICE_MAIN('ipam')], {
      ...serviceEnv(m, CONTROL_NODE, { role: 'ipam' }),
      CILIATE_CLUSTER_POOL_IPV4_CIDR: plan.clusterPoolCidr,
      CILIATE_CLUSTER_POOL_IPV4_MASK_SIZE: String(plan.clusterPoolMaskSize),
      CILIATE_IPAM_SYNC_SOURCES: LAB_SOURCE,
    });

    for (const node of plan.nodes) {
      progress(`starting the datapath of ${node.name}`);
      await startDatapath(m, dir, node, nc);
    }
    await connectNodes(
      m,
      plan.nodes.map((n) => ({ plan: n, podCidr: datapathPodCidr(dir, n.name) ?? '' })),
    );

    progress("starting the lab's kubelet");
    startKubelet(m, dir);
    m.phase = 'up';
    writeManifest(dir, m);
    writeContext(m, env);
    await waitReady(nc, m, opts.timeoutMs ?? 120_000, progress);
  } finally {
    await nc.close().catch(() => undefined);
  }
  return m;
}

async function startDatapath(
  m: LabManifest,
  dir: string,
  node: NodePlan,
  nc: NatsConnection,
): Promise<void> {
  if (!m.pinDirs.includes(node.pinDir)) {
    m.pinDirs.push(node.pinDir);
    writeManifest(dir, m);
  }
  const launch = await datapathLaunch(m, dir, node, nc);
  const proc = recordProcess(m, dir, 'datapath', node.name, launch.argv, {
    ...serviceEnv(m, node.name, { role: 'datapath', node: node.name }),
    ...launch.env,
  });
  await waitDatapathReady(m, dir, node, proc.logFile, () => isAlive(proc));
}

function startKubelet(m: LabManifest, dir: string): void {
  recordProcess(m, dir, 'kubelet', undefined, [process.execPath, KUBELET_MAIN], {
    ...serviceEnv(m, CONTROL_NODE, { role: 'kubelet', node: CONTROL_NODE }),
    CILIATE_LAB_DIR: dir,
  });
}

async function waitReady(
  nc: NatsConnection,
  m: LabManifest,
  timeoutMs: number,
  progress: (line: string) => void,
): Promise<void> {
  let last = '';
  await waitFor(
    '`ciliate status` to show the lab ready',
    async () => {
      const pending = await pendingReadiness(nc, m);
      const line = pending.length === 0 ? '' : `waiting for ${pending.join(', ')}`;
      if (line && line !== last) progress(line);
      last = line;
      return pending.length === 0 || undefined;
    },
    timeoutMs,
    500,
  );
}

async function createSegment(m: LabManifest, dir: string): Promise<void> {
  const plan = m.plan;
  const note = (ns: string): void => {
    if (!m.netns.includes(ns)) {
      m.netns.push(ns);
      writeManifest(dir, m);
    }
  };
  note(plan.hubNetns);
  await createNetns(plan.hubNetns);
  await ip(['-n', plan.hubNetns, 'link', 'add', plan.bridge, 'type', 'bridge']);
  await ip(['-n', plan.hubNetns, 'link', 'set', plan.bridge, 'up']);
  for (const node of plan.nodes) {
    note(node.netns);
    await createNetns(node.netns);
    for (const [k, v] of [
      ['net.ipv4.ip_forward', '1'],
      ['net.ipv6.conf.all.disable_ipv6', '1'],
      ['net.ipv6.conf.default.disable_ipv6', '1'],
    ] as const) {
      await inNs(node.netns, 'sysctl', ['-q', '-w', `${k}=${v}`]);
    }
    // both ends made in their namespaces: no name ever appears in the root namespace
    await ip([
      '-n',
      plan.hubNetns,
      'link',
      'add',
      node.hubPort,
      'type',
      'veth',
      'peer',
      'name',
      node.underlayDevice,
      'netns',
      node.netns,
    ]);
    await ip(['-n', plan.hubNetns, 'link', 'set', node.hubPort, 'master', plan.bridge, 'up']);
    await ip(['-n', node.netns, 'addr', 'add', `${node.ip}/24`, 'dev', node.underlayDevice]);
    await ip(['-n', node.netns, 'link', 'set', node.underlayDevice, 'up']);
  }
}

async function registerNodes(store: ResourceStore, plan: LabPlan): Promise<void> {
  for (const node of plan.nodes) {
    const obj = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: node.name,
        labels: {
          'kubernetes.io/hostname': node.name,
          'kubernetes.io/os': 'linux',
          'lab.ciliate.io/lab': plan.name,
        },
      },
    };
    await store.apply(obj, { source: LAB_SOURCE });
    await store.setStatus(
      { kind: 'Node', namespace: '', name: node.name },
      {
        addresses: [
          { type: 'InternalIP', address: node.ip },
          { type: 'Hostname', address: node.name },
        ],
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    );
  }
  await store.markSourceSynced(LAB_SOURCE, { lab: plan.name, nodes: plan.nodes.length });
}

/** `up` on a lab that exists: starts again whatever process of it is not running. */
async function resumeLab(
  m: LabManifest,
  dir: string,
  opts: UpOptions & { env: NodeJS.ProcessEnv; progress: (line: string) => void },
): Promise<LabManifest> {
  if (m.phase !== 'up') {
    throw new LabError(
      'conflict',
      `lab ${m.name} was left half-made (phase ${m.phase}); remove it with: ciliate lab down --name ${m.name}`,
    );
  }
  if (opts.nodes !== undefined && opts.nodes !== m.plan.nodes.length) {
    throw new LabError(
      'conflict',
      `lab ${m.name} already runs with ${m.plan.nodes.length} nodes; take it down first to change that`,
    );
  }
  if (opts.routing !== undefined && opts.routing !== m.plan.routing) {
    throw new LabError(
      'conflict',
      `lab ${m.name} already runs with ${m.plan.routing} routing; take it down first to change that`,
    );
  }
  const dead = m.processes.filter((p) => !isAlive(p));
  if (dead.length === 0) opts.progress(`lab ${m.name} is already up`);
  for (const p of dead.filter((p) => p.service === 'nats')) {
    opts.progress(`restarting ${p.service}`);
    recordProcess(m, dir, p.service, p.node, p.argv, p.env);
    await waitFor(
      'nats-server to listen',
      async () => (await portOpen(m.natsPort)) || undefined,
      20_000,
    );
  }
  for (const p of dead.filter((p) => p.service !== 'nats')) {
    opts.progress(`restarting ${p.service}${p.node ? ` on ${p.node}` : ''}`);
    await restartProcess(m, dir, p);
  }
  writeContext(m, opts.env);
  const nc = await connectLab(m);
  try {
    await waitReady(nc, m, opts.timeoutMs ?? 120_000, opts.progress);
  } finally {
    await nc.close().catch(() => undefined);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// rotate

/** The order a lab's processes are restarted in: what others depend on first. */
const RESTART_ORDER = ['identity', 'ipam', 'datapath', 'kubelet'];

/**
 * New NATS credentials for a running lab: issued again into its security directory (the CA
 * stays, the server certificate and every principal's certificate and nkey are new), nats-server
 * told to reload (SIGHUP: it takes the new users and drops the connections of the old ones),
 * then every other lab process restarted with the command and settings it was started with, and
 * the lab waited for as `up` does. (The services would also come back by themselves: the runtime
 * reads its credential files at every reconnect. The restart makes the rotation complete when
 * `rotate` returns, for any process.)
 */
export async function labRotate(
  opts: LabOptions & { name?: string; timeoutMs?: number } = {},
): Promise<LabManifest> {
  const env = opts.env ?? process.env;
  const progress = opts.progress ?? (() => undefined);
  const m = requireLab(opts.name, env);
  const dir = labDir(m.name, env);
  if (m.phase !== 'up') {
    throw new LabError(
      'conflict',
      `lab ${m.name} is not up (phase ${m.phase}); remove it with: ciliate lab down --name ${m.name}`,
    );
  }
  if (!m.securityDir) {
    throw new LabError(
      'bad_request',
      `lab ${m.name} runs NATS in plain text (lab up --plaintext): it has no credentials to rotate`,
    );
  }
  const nats = m.processes.find((p) => p.service === 'nats');
  if (!nats || !isAlive(nats)) {
    throw new LabError(
      'conflict',
      `lab ${m.name}'s nats-server is not running; start it again with: ciliate lab up --name ${m.name}`,
    );
  }
  progress('issuing new certificates and nkeys (the CA stays)');
  await issueSecurity(m.securityDir, labPrincipals(m.plan));
  progress('reloading nats-server (SIGHUP)');
  process.kill(nats.pid, 'SIGHUP');
  // The admin's new nkey gets in once the server has reloaded.
  const nc = await waitFor(
    'nats-server to accept the new credentials',
    async () => {
      try {
        return await connectLab(m);
      } catch {
        return undefined;
      }
    },
    20_000,
    250,
  );
  try {
    const procs = m.processes
      .filter((p) => RESTART_ORDER.includes(p.service))
      .sort((a, b) => RESTART_ORDER.indexOf(a.service) - RESTART_ORDER.indexOf(b.service));
    for (const p of procs) {
      progress(`restarting ${p.service}${p.node ? ` on ${p.node}` : ''}`);
      const proc = await restartProcess(m, dir, p);
      const node =
        p.service === 'datapath' ? m.plan.nodes.find((n) => n.name === p.node) : undefined;
      if (node) await waitDatapathReady(m, dir, node, proc.logFile, () => isAlive(proc));
    }
    writeContext(m, env);
    await waitReady(nc, m, opts.timeoutMs ?? 120_000, progress);
  } finally {
    await nc.close().catch(() => undefined);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// down

/** Pids of processes carrying CILIATE_LAB=<name> in their environment. */
function taggedPids(name: string): number[] {
  const needle = `\0${LAB_ENV}=${name}\0`;
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const env = `\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`;
      if (env.includes(needle)) out.push(pid);
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

function rmPins(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Removes everything a lab made: processes (the kubelet first, so it makes no more pods), pod
 * processes, namespaces (with them every link and tc program), pinned maps, files; the context,
 * when it points at this lab, moves to another lab still up or goes. Works from the manifest
 * and, for what an interrupted run did not get to record, from the lab's namespace prefix and
 * process tag.
 */
export async function labDown(opts: LabOptions & { name?: string } = {}): Promise<{
  removed: { processes: number; netns: number; pinDirs: number };
}> {
  const env = opts.env ?? process.env;
  const progress = opts.progress ?? (() => undefined);
  const name = opts.name ?? DEFAULT_LAB;
  validateLabName(name, '--name');
  const dir = labDir(name, env);
  const m = readManifest(dir);
  const removed = { processes: 0, netns: 0, pinDirs: 0 };
  if (m) {
    m.phase = 'deleting';
    writeManifest(dir, m);
  }
  const procs = m?.processes ?? [];
  const order = ['kubelet', 'datapath', 'ipam', 'identity', 'nats'];
  for (const service of order) {
    const of = procs.filter((p) => p.service === service);
    if (of.some((p) => isAlive(p))) progress(`stopping ${service}`);
    await Promise.all(
      of.map(async (p) => {
        if (isAlive(p)) removed.processes++;
        await stopProcess(p, 3000);
      }),
    );
    if (service === 'kubelet') {
      for (const rec of readPodRecords(dir)) {
        if (rec.process && isAlive(rec.process)) removed.processes++;
        await stopProcess(rec.process, 1000);
      }
    }
  }
  for (const pid of taggedPids(name)) {
    try {
      process.kill(pid, 'SIGKILL');
      removed.processes++;
    } catch {
      // gone
    }
  }
  const prefix = netnsPrefix(name);
  const all = [...new Set([...listNetns(prefix), ...(m?.netns ?? [])])];
  // pods first, then nodes, the hub last
  all.sort((a, b) => rank(a, prefix) - rank(b, prefix));
  if (all.some((n) => existsSync(`/run/netns/${n}`)))
    progress(`removing ${all.length} network namespaces`);
  for (const ns of all) {
    if (!existsSync(`/run/netns/${ns}`)) continue;
    for (const pid of await netnsPids(ns)) {
      try {
        process.kill(pid, 'SIGKILL');
        removed.processes++;
      } catch {
        // gone
      }
    }
    await deleteNetns(ns);
    removed.netns++;
  }
  const pinRoot = m?.plan.pinRoot ?? `${PIN_BASE}/${name}`;
  for (const p of [...(m?.pinDirs ?? []), pinRoot]) {
    if (existsSync(p)) {
      rmPins(p);
      removed.pinDirs++;
    }
  }
  try {
    rmdirSync(PIN_BASE);
  } catch {
    // other labs still there, or never made
  }
  rmSync(dir, { recursive: true, force: true });
  settleContext(name, env);
  return { removed };
}

function rank(ns: string, prefix: string): number {
  const rest = ns.slice(prefix.length);
  if (rest.startsWith('pod.')) return 0;
  if (rest === 'hub') return 2;
  return 1;
}

// ---------------------------------------------------------------------------------------------
// status, exec, logs

export interface LabStatus {
  name: string;
  dir: string;
  phase: string;
  natsUrl: string;
  routing: RoutingMode;
  datapath: LabManifest['datapath'];
  nodes: { name: string; ip: string; netns: string; podCidr: string | undefined }[];
  processes: {
    service: string;
    node: string | undefined;
    pid: number;
    running: boolean;
    logFile: string;
  }[];
  pods: {
    namespace: string;
    name: string;
    node: string;
    ip: string | undefined;
    running: boolean;
  }[];
}

export function labStatus(opts: LabOptions & { name?: string } = {}): LabStatus {
  const env = opts.env ?? process.env;
  const name = resolveLabName(opts.name, env);
  const dir = labDir(name, env);
  const m = readManifest(dir);
  if (!m) throw new LabError('not_found', `no lab named ${name} (start one with: ciliate lab up)`);
  return {
    name,
    dir,
    phase: m.phase,
    natsUrl: m.natsUrl,
    routing: m.plan.routing,
    datapath: m.datapath,
    nodes: m.plan.nodes.map((n) => ({
      name: n.name,
      ip: n.ip,
      netns: n.netns,
      podCidr: datapathPodCidr(dir, n.name),
    })),
    processes: m.processes.map((p) => ({
      service: p.service,
      node: p.node,
      pid: p.pid,
      running: isAlive(p),
      logFile: p.logFile,
    })),
    pods: readPodRecords(dir)
      .map((r: PodRecord) => ({
        namespace: r.namespace,
        name: r.name,
        node: r.node,
        ip: r.ip,
        running: isAlive(r.process),
      }))
      .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name)),
  };
}

/** The manifest of a running lab, or a not_found error that says how to start one. */
export function requireLab(name: string | undefined, env: NodeJS.ProcessEnv): LabManifest {
  const lab = resolveLabName(name, env);
  const m = readManifest(labDir(lab, env));
  if (!m) throw new LabError('not_found', `no lab named ${lab} (start one with: ciliate lab up)`);
  return m;
}

/** Runs `cmd` in a pod's network namespace with the caller's stdio; resolves to its exit code. */
export async function labExec(opts: {
  name?: string;
  namespace?: string;
  pod: string;
  cmd: string[];
  env?: NodeJS.ProcessEnv;
  stdio?: 'inherit' | 'pipe';
}): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = opts.env ?? process.env;
  const m = requireLab(opts.name, env);
  const namespace = opts.namespace ?? 'default';
  const ns = podNetns(m.name, namespace, opts.pod);
  if (!existsSync(`/run/netns/${ns}`)) {
    throw new LabError(
      'not_found',
      `pod ${namespace}/${opts.pod} is not running in lab ${m.name} (see: ciliate get pods -n ${namespace})`,
    );
  }
  if (opts.cmd.length === 0) throw new LabError('bad_request', 'no command given after --');
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...opts.cmd], {
      stdio: opts.stdio === 'pipe' ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }),
    );
  });
}

/** The log file of a lab service (`datapath` and pods take a node or a pod name). */
export function labLogFile(opts: {
  name?: string;
  service: string;
  node?: string;
  env?: NodeJS.ProcessEnv;
}): string {
  const env = opts.env ?? process.env;
  const m = requireLab(opts.name, env);
  const dir = labDir(m.name, env);
  const services = [...new Set(m.processes.map((p) => p.service))];
  const candidates = m.processes.filter((p) => p.service === opts.service);
  if (candidates.length === 0) {
    const pod = readPodRecords(dir).find(
      (r) => `${r.namespace}/${r.name}` === opts.service || r.name === opts.service,
    );
    if (pod) return pod.logFile;
    throw new LabError(
      'not_found',
      `no service "${opts.service}" in lab ${m.name}; services: ${services.join(', ')} (or a pod as NAMESPACE/NAME)`,
    );
  }
  if (candidates.length === 1 && opts.node === undefined) return candidates[0]!.logFile;
  const nodes = candidates.map((p) => p.node ?? '');
  if (opts.node === undefined) {
    throw new LabError(
      'bad_request',
      `--node: ${opts.service} runs on every node; pick one of ${nodes.join(', ')}`,
    );
  }
  const hit = candidates.find((p) => p.node === opts.node);
  if (!hit) {
    throw new LabError(
      'not_found',
      `--node: Invalid value: ${JSON.stringify(opts.node)}: ${opts.service} runs on ${nodes.join(', ')}`,
    );
  }
  return hit.logFile;
}

// Exposed for tests that check a lab left nothing behind.
export function labLeftovers(name: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const ns of listNetns(netnsPrefix(name))) out.push(`netns ${ns}`);
  if (existsSync(`${PIN_BASE}/${name}`)) out.push(`pin dir ${PIN_BASE}/${name}`);
  if (existsSync(labDir(name, env))) out.push(`state dir ${labDir(name, env)}`);
  for (const pid of taggedPids(name)) {
    let exe = '';
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      // gone
    }
    out.push(`process ${pid} ${exe}`);
  }
  return out;
}
