// `ciliate endpoint list`, `ciliate bpf ipcache list` and `ciliate bpf ct list`: each node's
// datapath service is found through $SRV.INFO (metadata `ciliate.node`) and asked on its
// node-scoped subject; a node that does not answer is reported and the others still shown.
import {
  BpfCtListReplySchema,
  BpfIpcacheListReplySchema,
  CiliateError,
  DATAPATH_COMPONENT,
  EndpointListReplySchema,
  datapathEndpoints,
  datapathSubjects,
  isNodeName,
  nodeNameProblem,
  type BpfCtEntry,
  type BpfIpcacheEntry,
  type DatapathEndpoint,
  type EndpointInfo,
} from '@ciliate/contracts';
import { createRpcClient, disabledTracing, discoverInstances } from '@ciliate/runtime';
import type { NatsConnection } from '@nats-io/transport-node';
import type { z } from 'zod';

import { UsageError, type Command, type CommandContext } from '../cli.js';
import { formatTable, render } from '../output.js';

export interface UnreachableNode {
  node: string;
  error: string;
}

export interface EndpointListReport {
  apiVersion: 'ciliate.io/v1';
  kind: 'EndpointList';
  items: EndpointInfo[];
  unreachable: UnreachableNode[];
}

export interface BpfIpcacheListReport {
  apiVersion: 'ciliate.io/v1';
  kind: 'BpfIpcacheList';
  items: (BpfIpcacheEntry & { node: string })[];
  unreachable: UnreachableNode[];
}

export interface BpfCtListReport {
  apiVersion: 'ciliate.io/v1';
  kind: 'BpfCtList';
  items: (BpfCtEntry & { node: string })[];
  /** Nodes that have more entries than --limit. */
  truncated: string[];
  unreachable: UnreachableNode[];
}

/** `--node` checked, or undefined for every node. */
export function nodeFlag(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (!isNodeName(value)) {
    throw new UsageError(
      `--node: ${JSON.stringify(value)} is not a node name: ${nodeNameProblem(value) ?? ''}`,
    );
  }
  return value;
}

export function positiveIntFlag(name: string, value: unknown, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !/^[0-9]+$/.test(value) || n < 1 || n > max) {
    throw new UsageError(`--${name}: ${JSON.stringify(value)} must be an integer 1-${max}`);
  }
  return n;
}

/** Nodes running a datapath service, by name. */
export async function datapathNodes(nc: NatsConnection): Promise<string[]> {
  const found = await discoverInstances(nc, { maxWaitMs: 750 });
  return [
    ...new Set(found.filter((i) => i.component === DATAPATH_COMPONENT).map((i) => i.node)),
  ].sort();
}

/**
 * Asks `endpoint` of the given node, or of every node found; the answers by node and the nodes
 * that did not answer. Finding no node at all is an error: there is nothing to show.
 */
export async function askNodes<S extends z.ZodType>(
  ctx: CommandContext,
  node: string | undefined,
  endpoint: DatapathEndpoint,
  body: unknown,
  schema: S,
): Promise<{ answers: z.output<S>[]; unreachable: UnreachableNode[] }> {
  const nc = await ctx.connect();
  const nodes = node !== undefined ? [node] : await datapathNodes(nc);
  if (nodes.length === 0) {
    throw new CiliateError(
      'unavailable',
      `no datapath service found on ${ctx.natsUrl()} (is a node running? see ciliate status)`,
    );
  }
  const rpc = createRpcClient(nc, disabledTracing);
  type Result = { node: string; reply: z.output<S> } | { node: string; error: string };
  const results = await Promise.all(
    nodes.map(async (n): Promise<Result> => {
      try {
        const reply = await rpc.request(datapathSubjects.endpoint(n, endpoint), body, schema, {
          timeoutMs: 5_000,
        });
        return { node: n, reply };
      } catch (err) {
        return { node: n, error: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
  const answers: z.output<S>[] = [];
  const unreachable: UnreachableNode[] = [];
  for (const r of results) {
    if ('error' in r) unreachable.push({ node: r.node, error: r.error });
    else answers.push(r.reply);
  }
  return { answers, unreachable };
}

/** Warnings for nodes that did not answer; exit code 1 when none did. */
function finish(ctx: CommandContext, answered: number, unreachable: UnreachableNode[]): number {
  for (const u of unreachable) ctx.io.err(`warning: node ${u.node} did not answer: ${u.error}\n`);
  return answered === 0 && unreachable.length > 0 ? 1 : 0;
}

// ---- tables ----------------------------------------------------------------------------------

export function endpointTable(items: EndpointInfo[]): string {
  if (items.length === 0) return 'No endpoints.\n';
  return formatTable(
    ['ID', 'POD', 'IPv4', 'IDENTITY', 'STATE', 'NODE'],
    items.map((e) => [
      String(e.id),
      e.pod !== undefined ? `${e.namespace ?? 'default'}/${e.pod}` : `<container ${e.containerID}>`,
      e.ipv4 ?? '-',
      String(e.identity),
      e.state,
      e.node,
    ]),
  );
}

export function ipcacheTable(items: BpfIpcacheListReport['items']): string {
  if (items.length === 0) return 'No ipcache entries.\n';
  return formatTable(
    ['PREFIX', 'IDENTITY', 'TUNNEL ENDPOINT', 'NODE'],
    items.map((e) => [e.prefix, String(e.identity), e.tunnelEndpoint ?? '-', e.node]),
  );
}

const hostPort = (addr: string, port: number): string => (port ? `${addr}:${port}` : addr);

export function ctTable(items: BpfCtListReport['items']): string {
  if (items.length === 0) return 'No conntrack entries.\n';
  return formatTable(
    ['PROTO', 'DIR', 'SOURCE', 'DESTINATION', 'EXPIRES', 'TX', 'RX', 'FLAGS', 'IDENTITY', 'NODE'],
    items.map((e) => [
      e.proto,
      e.direction.toUpperCase(),
      hostPort(e.src, e.sport),
      hostPort(e.dst, e.dport),
      e.expiresIn < 0 ? 'expired' : `${e.expiresIn}s`,
      `${e.txPackets}p/${e.txBytes}B`,
      `${e.rxPackets}p/${e.rxBytes}B`,
      e.flags || '-',
      String(e.srcIdentity),
      e.node,
    ]),
  );
}

// ---- the commands ----------------------------------------------------------------------------

export const endpointCommand: Command = {
  name: 'endpoint',
  summary: "List the endpoints (pods) of every node's datapath",
  usage: 'ciliate endpoint list [--node NODE] [-o table|json|yaml]',
  options: { node: { type: 'string' } },
  allowPositionals: true,
  async run(ctx, values, positionals) {
    const [verb, ...rest] = positionals;
    if (verb !== 'list') {
      throw new UsageError(
        verb === undefined ? 'endpoint needs a verb: list' : `unknown verb "${verb}" (list)`,
      );
    }
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    const { answers, unreachable } = await askNodes(
      ctx,
      nodeFlag(values.node),
      datapathEndpoints.endpointList,
      {},
      EndpointListReplySchema,
    );
    const items = answers
      .flatMap((a) => a.endpoints)
      .sort((a, b) => a.node.localeCompare(b.node) || a.id - b.id);
    const report: EndpointListReport = {
      apiVersion: 'ciliate.io/v1',
      kind: 'EndpointList',
      items,
      unreachable,
    };
    ctx.io.out(render(ctx.globals.output, report, () => endpointTable(items)));
    return finish(ctx, answers.length, unreachable);
  },
};

export const bpfCommand: Command = {
  name: 'bpf',
  summary: "Show a node's BPF maps: the ipcache and conntrack",
  usage:
    'ciliate bpf ipcache list [--node NODE] [-o ...] | ciliate bpf ct list [--node NODE] [--limit K] [-o ...]',
  options: { node: { type: 'string' }, limit: { type: 'string' } },
  allowPositionals: true,
  async run(ctx, values, positionals) {
    const [map, verb, ...rest] = positionals;
    if (map !== 'ipcache' && map !== 'ct') {
      throw new UsageError(
        map === undefined ? 'bpf needs a map: ipcache or ct' : `unknown map "${map}" (ipcache, ct)`,
      );
    }
    if (verb !== 'list') {
      throw new UsageError(
        verb === undefined ? `bpf ${map} needs a verb: list` : `unknown verb "${verb}" (list)`,
      );
    }
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    const node = nodeFlag(values.node);
    if (map === 'ipcache') {
      if (values.limit !== undefined) throw new UsageError('--limit applies to bpf ct list only');
      const { answers, unreachable } = await askNodes(
        ctx,
        node,
        datapathEndpoints.ipcacheList,
        {},
        BpfIpcacheListReplySchema,
      );
      const items = answers.flatMap((a) => a.entries.map((e) => ({ ...e, node: a.node })));
      const report: BpfIpcacheListReport = {
        apiVersion: 'ciliate.io/v1',
        kind: 'BpfIpcacheList',
        items,
        unreachable,
      };
      ctx.io.out(render(ctx.globals.output, report, () => ipcacheTable(items)));
      return finish(ctx, answers.length, unreachable);
    }
    const limit = positiveIntFlag('limit', values.limit, 1_000_000);
    const { answers, unreachable } = await askNodes(
      ctx,
      node,
      datapathEndpoints.ctList,
      limit === undefined ? {} : { limit },
      BpfCtListReplySchema,
    );
    const items = answers.flatMap((a) => a.entries.map((e) => ({ ...e, node: a.node })));
    const truncated = answers.filter((a) => a.truncated).map((a) => a.node);
    const report: BpfCtListReport = {
      apiVersion: 'ciliate.io/v1',
      kind: 'BpfCtList',
      items,
      truncated,
      unreachable,
    };
    ctx.io.out(render(ctx.globals.output, report, () => ctTable(items)));
    for (const n of truncated) {
      ctx.io.err(`note: node ${n} has more conntrack entries than shown (raise --limit)\n`);
    }
    return finish(ctx, answers.length, unreachable);
  },
};
