// The one module that knows how a lab node's datapath process is started. Two implementations:
// - `service`: the datapath service (`@ciliate/datapath/main`, DATAPATH-SETTINGS.md):
//   gets its pod CIDR from IPAM, routes to other nodes itself (native or VXLAN), registers in
//   `ciliate status`. Used whenever the tree has it.
// - `agent`: the datapath's standalone node agent (`@ciliate/datapath/agent-main config.json`): real
//   eBPF and CNI, but its pod CIDR comes from the lab (asked of IPAM) and it does not route
//   between nodes, so the lab routes the other nodes' pod CIDRs over the underlay (native only).
// A lab keeps the implementation it was made with (recorded in its manifest).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { IpamNodeCidrsReplySchema, ipamNodeSubject } from '@ciliate/contracts';
import { createRpcClient, disabledTracing } from '@ciliate/runtime';
import type { NatsConnection } from '@nats-io/transport-node';

import { LabError, type NodePlan, type RoutingMode } from './plan.js';
import { entry, findEntry } from './programs.js';
import type { LabManifest } from './state.js';
import { inNs, waitFor } from './sys.js';

const SERVICE_MAIN = '@ciliate/datapath/main';
const AGENT_MAIN = '@ciliate/datapath/agent-main';

/** The directory holding `ciliate-cni`; first in the kubelet's CNI_PATH. */
export function cniBinDir(): string {
  return dirname(entry('@ciliate/datapath/cni'));
}

/** Which implementation a new lab gets in this tree. */
export const DATAPATH_IMPL: LabManifest['datapath'] =
  findEntry(SERVICE_MAIN) !== undefined ? 'service' : 'agent';

/** Does the datapath register itself with `ciliate status`? */
export function datapathInStatus(impl: LabManifest['datapath']): boolean {
  return impl === 'service';
}

export function supportedRouting(mode: RoutingMode, impl: LabManifest['datapath']): void {
  if (mode !== 'native' && impl === 'agent') {
    throw new LabError(
      'not_supported',
      `routing: "${mode}" needs the datapath service, which this tree does not have yet (the standalone node agent routes natively only)`,
    );
  }
}

export function nodeDir(dir: string, node: string): string {
  return join(dir, 'nodes', node);
}

export function cniSocket(dir: string, node: string): string {
  const p = join(nodeDir(dir, node), 'cni.sock');
  // sockaddr_un holds 108 bytes including the terminating NUL
  if (Buffer.byteLength(p) > 107) {
    throw new LabError(
      'bad_request',
      `the lab's state directory is too deep for a unix socket path (${p}); set CILIATE_STATE to a shorter directory`,
    );
  }
  return p;
}

export interface DatapathLaunch {
  argv: string[];
  env: Record<string, string>;
}

/** The node's pod CIDR as IPAM carves it (the agent needs it up front). */
export async function nodePodCidr(nc: NatsConnection, node: string): Promise<string> {
  const rpc = createRpcClient(nc, disabledTracing);
  const reply = await waitFor(
    `IPAM to give ${node} a pod CIDR`,
    () =>
      rpc.request(ipamNodeSubject('node-cidrs', node), { node }, IpamNodeCidrsReplySchema, {
        timeoutMs: 3000,
      }),
    30_000,
    500,
  );
  const cidr = reply.cidrs.ipv4;
  if (!cidr) throw new LabError('failed', `IPAM gave ${node} no IPv4 pod CIDR`);
  return cidr;
}

export async function datapathLaunch(
  m: LabManifest,
  dir: string,
  node: NodePlan,
  nc: NatsConnection,
): Promise<DatapathLaunch> {
  const nd0 = nodeDir(dir, node.name);
  if (m.datapath === 'service') {
    mkdirSync(nd0, { recursive: true });
    return {
      argv: [
        process.execPath,
        entry(SERVICE_MAIN),
        '--netns',
        node.netns,
        '--underlay-device',
        node.underlayDevice,
        '--node-ip',
        node.ip,
        '--routing',
        m.plan.routing,
        '--pin-dir',
        node.pinDir,
        '--state-dir',
        join(nd0, 'state'),
        '--socket-path',
        cniSocket(dir, node.name),
      ],
      env: {},
    };
  }
  const podCidr = await nodePodCidr(nc, node.name);
  const nd = nodeDir(dir, node.name);
  mkdirSync(nd, { recursive: true });
  const configFile = join(nd, 'agent.json');
  writeFileSync(
    configFile,
    JSON.stringify(
      {
        socketPath: cniSocket(dir, node.name),
        stateDir: join(nd, 'state'),
        pinDir: node.pinDir,
        podCidr,
        nodeIPv4: node.ip,
        nodeNetns: node.netns,
        traceMode: 'new',
      },
      null,
      2,
    ),
  );
  return { argv: [process.execPath, entry(AGENT_MAIN), configFile], env: {} };
}

/** Resolves once the node's datapath serves the CNI plugin (the service: once it runs; its
 * readiness is waited for through `ciliate status` with the rest of the lab). */
export async function waitDatapathReady(
  m: LabManifest,
  dir: string,
  node: NodePlan,
  logFile: string,
  alive: () => boolean,
): Promise<void> {
  if (m.datapath === 'service') {
    if (!alive()) {
      throw new LabError(
        'failed',
        `the datapath of ${node.name} exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`,
      );
    }
    return;
  }
  await waitFor(
    `the datapath of ${node.name} to serve CNI`,
    () => {
      if (!alive()) {
        throw new LabError(
          'failed',
          `the datapath of ${node.name} exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`,
        );
      }
      return (
        existsSync(cniSocket(dir, node.name)) &&
        readFileSync(logFile, 'utf8').includes('"event":"ready"')
      );
    },
    60_000,
  );
}

/** The agent does not route between nodes: each node routes the others' pod CIDRs natively. */
export async function connectNodes(
  m: LabManifest,
  nodes: { plan: NodePlan; podCidr: string }[],
): Promise<void> {
  if (m.datapath === 'service') return;
  for (const a of nodes) {
    for (const b of nodes) {
      if (a === b) continue;
      await inNs(a.plan.netns, 'ip', [
        'route',
        'replace',
        b.podCidr,
        'via',
        b.plan.ip,
        'dev',
        a.plan.underlayDevice,
      ]);
    }
  }
}

/** The node's pod CIDR as the running datapath uses it (from its config). */
export function datapathPodCidr(dir: string, node: string): string | undefined {
  try {
    return (
      JSON.parse(readFileSync(join(nodeDir(dir, node), 'agent.json'), 'utf8')) as {
        podCidr?: string;
      }
    ).podCidr;
  } catch {
    return undefined;
  }
}
