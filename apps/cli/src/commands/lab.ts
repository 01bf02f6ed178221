// `ciliate lab up|down|status|exec|logs|demo`: the local lab of @ciliate/lab.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { CiliateError } from '@ciliate/contracts';
import {
  LabError,
  currentLab,
  labDown,
  labConnectOptions,
  labExec,
  labLogFile,
  labRotate,
  labStatus,
  labUp,
  requireLab,
  resolveLabName,
  runDemo,
  type DemoReport,
  type LabStatus,
  type RoutingMode,
} from '@ciliate/lab';
import { connect } from '@nats-io/transport-node';

import { UsageError, type Command, type CommandContext } from '../cli.js';
import { formatTable, render } from '../output.js';
import { collectStatus, statusTable } from './status.js';

const USAGE = `ciliate lab up [--nodes N] [--routing native|vxlan] [--name NAME] [--plaintext]
       ciliate lab down [--name NAME]
       ciliate lab status [--name NAME] [-o json|yaml]
       ciliate lab exec POD [-n NAMESPACE] [--name NAME] -- COMMAND [ARG...]
       ciliate lab logs SERVICE [--node NODE] [--name NAME] [-f]
       ciliate lab demo [--name NAME]
       ciliate lab rotate [--name NAME]`;

const HELP = `lab rotate issues the lab's NATS credentials again (the CA stays; the server certificate and
every component's certificate and nkey are new), has nats-server reload them (SIGHUP), restarts
the lab's services, datapaths and kubelet with their new files and waits until the lab is ready.
The old nkeys are refused from then on. A lab started with --plaintext has nothing to rotate.`;

function labError(err: unknown): never {
  if (err instanceof LabError) {
    if (err.code === 'bad_request') throw new UsageError(err.message);
    throw new CiliateError(
      err.code === 'failed' ? 'internal' : err.code,
      err.message,
      err.cause ? { cause: err.cause } : {},
    );
  }
  throw err;
}

function statusText(s: LabStatus): string {
  const out: string[] = [];
  out.push(
    `Lab ${s.name} (${s.phase}): NATS ${s.natsUrl}, ${s.routing} routing, datapath: ${s.datapath === 'agent' ? 'standalone node agent' : 'datapath service'}\nState and logs: ${s.dir}\n\n`,
  );
  out.push(
    formatTable(
      ['NODE', 'UNDERLAY IP', 'POD CIDR', 'NETNS'],
      s.nodes.map((n) => [n.name, n.ip, n.podCidr ?? '-', n.netns]),
    ),
  );
  out.push('\n');
  out.push(
    formatTable(
      ['SERVICE', 'NODE', 'PID', 'STATE', 'LOG'],
      s.processes.map((p) => [
        p.service,
        p.node ?? '-',
        String(p.pid),
        p.running ? 'running' : 'NOT RUNNING',
        p.logFile,
      ]),
    ),
  );
  out.push('\n');
  out.push(
    s.pods.length === 0
      ? 'No pods.\n'
      : formatTable(
          ['NAMESPACE', 'POD', 'NODE', 'IP', 'PROCESS'],
          s.pods.map((p) => [
            p.namespace,
            p.name,
            p.node,
            p.ip ?? '-',
            p.running ? 'running' : 'not running',
          ]),
        ),
  );
  return out.join('');
}

function demoText(r: DemoReport, name: string | undefined, current: string | undefined): string {
  const out: string[] = [];
  // after `lab up` the context points at the lab: no flag needed then
  const nameFlag = name && name !== current ? ` --name ${name}` : '';
  out.push('\nPods (namespace app):\n');
  out.push(
    formatTable(
      ['POD', 'NODE', 'IP', 'LABELS'],
      r.pods.map((p) => [
        p.name,
        p.node,
        p.ip,
        Object.entries(p.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      ]),
    ),
  );
  out.push('\nEndpoints:\n');
  out.push(
    r.endpoints.length === 0
      ? r.datapath === 'agent'
        ? "  none published: this tree's node datapath is the standalone agent, which does not publish CiliumEndpoints (the datapath service does)\n"
        : '  none found in namespace app\n'
      : formatTable(
          ['ENDPOINT', 'IDENTITY', 'IPS', 'STATE'],
          r.endpoints.map((e) => [e.name, e.identity, e.ips, e.state]),
        ),
  );
  out.push('\nIdentities:\n');
  out.push(
    r.identities.length === 0
      ? r.datapath === 'agent'
        ? '  none allocated for namespace app: the standalone agent gives every pod the reserved identity 5 (init); the datapath service asks the identity service per label set\n'
        : '  none found for namespace app\n'
      : formatTable(
          ['ID', 'LABELS'],
          r.identities.map((i) => [i.id, i.labels]),
        ),
  );
  out.push('\nRequests across nodes:\n');
  out.push(
    formatTable(
      ['FROM', 'TO', 'URL', 'RESULT'],
      r.requests.map((q) => [
        `${q.from} (${q.fromNode})`,
        `${q.to} (${q.toNode})`,
        q.url,
        q.ok ? `ok: "${q.answer}"` : `FAILED: ${q.answer}`,
      ]),
    ),
  );
  const f = r.pods.find((p) => p.labels.app === 'frontend');
  const a = r.pods.find((p) => p.labels.app === 'web-api' && p.node !== f?.node);
  out.push(`
Try next:
  npx ciliate get pods -n app                          # pods, their nodes and addresses
  npx ciliate lab exec ${f?.name ?? 'frontend-0'} -n app${nameFlag} -- curl -s http://${a?.ip ?? 'IP'}:8080/
  npx ciliate lab exec ${f?.name ?? 'frontend-0'} -n app${nameFlag} -- ping -c 3 ${a?.ip ?? 'IP'}
  npx ciliate lab status${nameFlag}                               # nodes, services, pids, log files
  npx ciliate lab logs datapath --node node-1${nameFlag}          # a node's datapath log
  npx ciliate status                                   # every service and its health
  npx ciliate delete pod frontend-0 -n app             # the lab tears the pod down (CNI DEL)
  npx ciliate lab down${nameFlag}                                 # remove the lab and all it made
`);
  return out.join('');
}

async function up(
  ctx: CommandContext,
  values: Record<string, string | boolean | string[] | undefined>,
): Promise<number> {
  const nodes = values.nodes === undefined ? undefined : Number(values.nodes);
  if (nodes !== undefined && !Number.isInteger(nodes)) {
    throw new UsageError(
      `--nodes: Invalid value: ${JSON.stringify(values.nodes)}: must be an integer`,
    );
  }
  const routing = values.routing as RoutingMode | undefined;
  if (routing !== undefined && routing !== 'native' && routing !== 'vxlan') {
    throw new UsageError(`--routing: Invalid value: "${String(routing)}": must be native or vxlan`);
  }
  const started = Date.now();
  const m = await labUp({
    ...(typeof values.name === 'string' ? { name: values.name } : {}),
    ...(nodes !== undefined ? { nodes } : {}),
    ...(routing ? { routing } : {}),
    ...(values.plaintext === true ? { plaintext: true } : {}),
    env: ctx.io.env,
    progress: (line) => ctx.io.err(`==> ${line}\n`),
  }).catch(labError);
  const nc = await connect(labConnectOptions(m, 'ciliate-cli'));
  try {
    const report = await collectStatus(nc, m.natsUrl);
    ctx.io.out(render(ctx.globals.output, report, () => statusTable(report)));
  } finally {
    await nc.close();
  }
  if (ctx.globals.output === 'table') {
    ctx.io.out(
      `\nLab ${m.name} is up in ${Math.round((Date.now() - started) / 1000)}s: ${m.plan.nodes.length} nodes, NATS ${m.natsUrl}.\nThe CLI now talks to it (context lab-${m.name}). Next: npx ciliate lab demo\n`,
    );
  }
  return 0;
}

export const labCommand: Command = {
  name: 'lab',
  summary: 'A local multi-node lab: nodes as network namespaces, real pods, the eBPF datapath',
  usage: USAGE,
  help: HELP,
  allowPositionals: true,
  options: {
    name: { type: 'string' },
    nodes: { type: 'string' },
    routing: { type: 'string' },
    plaintext: { type: 'boolean' },
    namespace: { type: 'string', short: 'n' },
    node: { type: 'string' },
    follow: { type: 'boolean', short: 'f' },
  },
  async run(ctx, values, positionals) {
    const [sub, ...rest] = positionals;
    const name = typeof values.name === 'string' ? values.name : undefined;
    const env = ctx.io.env;
    try {
      switch (sub) {
        case 'up':
          if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
          return await up(ctx, values);
        case 'down': {
          const lab = resolveLabName(name, env);
          const r = await labDown({
            name: lab,
            env,
            progress: (line) => ctx.io.err(`==> ${line}\n`),
          });
          ctx.io.out(
            `lab ${lab} removed: ${r.removed.processes} processes stopped, ${r.removed.netns} network namespaces and ${r.removed.pinDirs} pin directories removed\n`,
          );
          return 0;
        }
        case 'status': {
          const s = labStatus({ ...(name ? { name } : {}), env });
          ctx.io.out(render(ctx.globals.output, s, () => statusText(s)));
          return s.processes.every((p) => p.running) ? 0 : 1;
        }
        case 'exec': {
          const [pod, ...cmd] = rest;
          if (!pod) throw new UsageError('exec needs a pod name');
          if (cmd.length === 0) throw new UsageError('exec needs a command after --');
          const r = await labExec({
            ...(name ? { name } : {}),
            ...(typeof values.namespace === 'string' ? { namespace: values.namespace } : {}),
            pod,
            cmd,
            env,
          });
          return r.code;
        }
        case 'logs': {
          const [service] = rest;
          if (!service)
            throw new UsageError(
              'logs needs a service: nats, identity, ipam, datapath, kubelet, or a pod NAMESPACE/NAME',
            );
          const file = labLogFile({
            ...(name ? { name } : {}),
            service,
            ...(typeof values.node === 'string' ? { node: values.node } : {}),
            env,
          });
          if (values.follow === true) {
            return await new Promise<number>((resolve) => {
              const child = spawn('tail', ['-n', '+1', '-f', file], { stdio: 'inherit' });
              child.on('close', (code) => resolve(code ?? 0));
            });
          }
          ctx.io.out(readFileSync(file, 'utf8'));
          return 0;
        }
        case 'demo': {
          requireLab(name, env);
          const r = await runDemo({
            ...(name ? { name } : {}),
            env,
            progress: (line) => ctx.io.err(`==> ${line}\n`),
          });
          ctx.io.out(render(ctx.globals.output, r, () => demoText(r, name, currentLab(env))));
          return r.requests.every((q) => q.ok) ? 0 : 1;
        }
        case 'rotate': {
          if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
          const started = Date.now();
          const m = await labRotate({
            ...(name ? { name } : {}),
            env,
            progress: (line) => ctx.io.err(`==> ${line}\n`),
          });
          ctx.io.out(
            `lab ${m.name}: new NATS credentials in ${m.securityDir ?? '-'} (CA kept), every service restarted with them and ready in ${Math.round((Date.now() - started) / 1000)}s\n`,
          );
          return 0;
        }
        case undefined:
          throw new UsageError(
            'a subcommand is needed: up, down, status, exec, logs, demo or rotate',
          );
        default:
          throw new UsageError(`unknown subcommand "${sub}"`);
      }
    } catch (err) {
      return labError(err);
    }
  },
};
