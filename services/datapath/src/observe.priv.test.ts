// The datapath's observability end to end: a real datapath on a node namespace with two pods
// wired by the CNI plugin, the event publisher and the node-scoped endpoints running in-process
// as a `ciliate-datapath` micro service with the node's datapath credentials on a secured
// nats-server, and the real `ciliate` binary, with a viewer's credentials, asked for endpoints,
// ipcache and conntrack and watching a drop and a trace live.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  BpfCtListReplySchema,
  DatapathEventSchema,
  EndpointInfoSchema,
  type BpfCtEntry,
  type BpfIpcacheEntry,
  type DatapathEvent,
  type EndpointInfo,
} from '@ciliate/contracts';
import { createService, type RunningService } from '@ciliate/runtime';
import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import { NetScope, atExitKill, sleep, waitFor, type Netns } from '@ciliate/testkit';

import { createAgent, resolveAgentConfig, type Agent } from './agent/agent.js';
import { startEventPublisher, type EventPublisher } from './events/publisher.js';
import { addDatapathEndpoints, endpointInfos } from './observe/rpc.js';
import type { CniResult } from './cni/result.js';
import {
  PLUGIN,
  REFERENCE_PLUGINS,
  makeNode,
  ping,
  runCni,
  type TestNode,
} from './testing/harness.js';

const NODE = 'obs-node';
const POD_CIDR = '10.233.0.0/24';
const NODE_IP = '192.168.233.1';
const SPOOFED = '10.233.0.250';
const REMOTE_CIDR = '10.234.0.0/24';
const REMOTE_NODE_IP = '192.168.234.1';

const CLI = join(dirname(fileURLToPath(import.meta.resolve('@ciliate/cli'))), 'main.js');

interface CliRun {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

/** The CLI with `env` (its NATS and credentials) and nothing else from this process. */
function startCli(args: string[], env: Record<string, string>): CliRun {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, CILIATE_CONTEXT_FILE: '/nonexistent/context.json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const forget = atExitKill(child.pid!);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      forget();
      resolve(code);
    }),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

// Everything the CLI does here only reads: it runs as a viewer.
const asViewer = (nats: SecureNats): Record<string, string> => nats.env({ role: 'viewer' });

async function cliJson<T>(nats: SecureNats, args: string[]): Promise<T> {
  const run = startCli([...args, '-o', 'json'], asViewer(nats));
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 30_000);
  const code = await run.exited;
  clearTimeout(timer);
  assert.equal(code, 0, `ciliate ${args.join(' ')}: exit ${code}\n${run.stdout()}${run.stderr()}`);
  return JSON.parse(run.stdout()) as T;
}

describe('ciliate endpoint/bpf/monitor against a real datapath', () => {
  const scope = new NetScope();
  let nats: SecureNats;
  let node: TestNode;
  let agent: Agent;
  let service: RunningService;
  let publisher: EventPublisher | undefined;
  const pods: { ns: Netns; ip: string; name: string }[] = [];

  async function addPod(name: string): Promise<{ ns: Netns; ip: string; name: string }> {
    const ns = await scope.netns('pod');
    // IPv6 neighbour discovery would otherwise add "Unsupported L3 protocol" drops
    for (const k of ['all', 'default'])
      await ns.exec('sysctl', ['-q', '-w', `net.ipv6.conf.${k}.disable_ipv6=1`]);
    const r = await runCni(
      node,
      PLUGIN,
      {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: `ctr-${name}`,
        CNI_NETNS: `/var/run/netns/${ns.name}`,
        CNI_IFNAME: 'eth0',
        CNI_PATH: REFERENCE_PLUGINS,
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name}`,
      },
      { cniVersion: '1.1.0', name: 'ciliate', type: 'ciliate-cni', socketPath: node.socketPath },
    );
    assert.equal(r.code, 0, `ADD ${name}: ${r.stdout} ${r.stderr}`);
    const ip = (r.json as unknown as CniResult).ips![0]!.address.split('/')[0]!;
    const pod = { ns, ip, name };
    pods.push(pod);
    return pod;
  }

  before(async () => {
    nats = await startSecureNats({ nodes: [NODE] });
    node = await makeNode(scope, POD_CIDR, NODE_IP);
    agent = await createAgent(
      resolveAgentConfig(
        JSON.parse(readFileSync(node.configFile, 'utf8')) as Record<string, unknown>,
      ),
    );
    // a remote node's pod CIDR, as the ipcache mirror writes it in VXLAN mode
    agent.datapath.ipcache.set(
      { prefix: REMOTE_CIDR },
      { identity: 6, tunnelEndpoint: REMOTE_NODE_IP },
    );
    service = await createService(
      {
        component: 'datapath',
        role: 'datapath',
        version: '0.0.1-test',
        description: 'observability test',
        settings: {},
        setup(ctx) {
          addDatapathEndpoints(ctx, {
            node: NODE,
            datapath: agent.datapath,
            endpoints: () => endpointInfos(agent.endpoints.list(), NODE),
          });
          const pub = startEventPublisher({
            nc: ctx.nc,
            node: NODE,
            datapath: agent.datapath,
            log: ctx.logger('events'),
            registry: ctx.metrics.registry,
          });
          publisher = pub;
          ctx.add({ name: 'events', stop: () => pub.stop() });
        },
      },
      {
        argv: ['--node', NODE, '--http-address', ''],
        env: nats.env({ role: 'datapath', node: NODE }),
        logDestination: { write: () => undefined },
      },
    );
    await addPod('pod-a');
    await addPod('pod-b');
  });

  after(async () => {
    const steps: (() => unknown)[] = [
      () => service?.stop(),
      () => agent?.close(),
      () => scope.close(),
      () => node?.remove(),
      () => nats?.close(),
    ];
    for (const step of steps) {
      try {
        await step();
      } catch (err) {
        console.error('cleanup step failed:', err);
      }
    }
  });

  it('endpoint list -o json shows both pods with id, addressing, identity and state', async () => {
    const report = await cliJson<{ kind: string; items: EndpointInfo[]; unreachable: unknown[] }>(
      nats,
      ['endpoint', 'list'],
    );
    assert.equal(report.kind, 'EndpointList');
    assert.deepEqual(report.unreachable, []);
    assert.equal(report.items.length, 2);
    for (const p of pods) {
      const e = report.items.find((i) => i.pod === p.name);
      assert.ok(e, `endpoint of ${p.name}`);
      EndpointInfoSchema.parse(e);
      assert.equal(e.ipv4, p.ip);
      assert.equal(e.namespace, 'default');
      assert.equal(e.node, NODE);
      assert.equal(e.state, 'ready');
      const entry = agent.datapath.endpoints.get({ ip: p.ip });
      assert.equal(e.id, entry?.endpointId);
      assert.equal(e.identity, entry?.identity);
      assert.equal(e.ifindex, entry?.ifindex);
    }
    // --node picks the node without discovery; an unknown node is reported, exit 1
    const one = await cliJson<{ items: EndpointInfo[] }>(nats, [
      'endpoint',
      'list',
      '--node',
      NODE,
    ]);
    assert.equal(one.items.length, 2);
    const missing = startCli(['endpoint', 'list', '--node', 'no-such-node'], asViewer(nats));
    assert.equal(await missing.exited, 1);
    assert.match(missing.stderr(), /node no-such-node did not answer: no service answers/);
  });

  it('bpf ipcache list -o json shows the node address and the remote pod CIDR', async () => {
    const report = await cliJson<{ items: (BpfIpcacheEntry & { node: string })[] }>(nats, [
      'bpf',
      'ipcache',
      'list',
    ]);
    assert.deepEqual(
      report.items.find((e) => e.prefix === `${NODE_IP}/32`),
      { prefix: `${NODE_IP}/32`, identity: 1, tunnelEndpoint: null, node: NODE },
    );
    assert.deepEqual(
      report.items.find((e) => e.prefix === REMOTE_CIDR),
      { prefix: REMOTE_CIDR, identity: 6, tunnelEndpoint: REMOTE_NODE_IP, node: NODE },
    );
  });

  it('bpf ct list -o json shows the ping between the pods in both endpoints\u2019 directions', async () => {
    const [a, b] = pods;
    assert.ok(await ping(a!.ns.name, b!.ip), 'a -> b');
    const report = await cliJson<{ items: (BpfCtEntry & { node: string })[]; truncated: string[] }>(
      nats,
      ['bpf', 'ct', 'list'],
    );
    const icmp = report.items.filter(
      (e) => e.proto === 'ICMP' && e.src === a!.ip && e.dst === b!.ip,
    );
    assert.deepEqual(
      icmp.map((e) => e.direction).sort(),
      ['in', 'out'],
      JSON.stringify(report.items),
    );
    for (const e of icmp) {
      assert.ok(
        e.txPackets >= 2 && e.rxPackets >= 2,
        `echo and reply counted: ${JSON.stringify(e)}`,
      );
      assert.ok(e.expiresIn > 0);
      assert.equal(e.node, NODE);
    }
    const out = icmp.find((e) => e.direction === 'out')!;
    assert.equal(out.srcIdentity, agent.datapath.endpoints.get({ ip: a!.ip })?.identity);
    const limited = await cliJson<{ items: unknown[]; truncated: string[] }>(nats, [
      'bpf',
      'ct',
      'list',
      '--limit',
      '1',
    ]);
    assert.equal(limited.items.length, 1);
    assert.deepEqual(limited.truncated, [NODE]);
    BpfCtListReplySchema.shape.entries.parse(report.items.map(({ node: _n, ...e }) => e));
  });

  it('monitor prints the drop with Cilium\u2019s reason and the trace of a new flow', async () => {
    const [a, b] = pods;
    const viewer = asViewer(nats);
    const drops = startCli(['monitor', '--type', 'drop', '--count', '1', '-o', 'json'], viewer);
    const traces = startCli(['monitor', '--type', 'trace', '--count', '1', '-o', 'json'], viewer);
    const lines = startCli(['monitor', '--count', '2', '--node', NODE], viewer);
    const monitors = [drops, traces, lines];
    try {
      await waitFor(
        'the monitors to subscribe',
        () => (monitors.every((m) => m.stderr().includes('Listening')) ? true : undefined),
        { timeoutMs: 15_000 },
      );
      // a pod sending from an address that is not its own: the endpoint program drops it
      await a!.ns.ip(['addr', 'add', `${SPOOFED}/32`, 'dev', 'eth0']);
      const deadline = Date.now() + 20_000;
      while (monitors.some((m) => m.child.exitCode === null) && Date.now() < deadline) {
        await a!.ns
          .exec('ping', ['-c', '1', '-W', '1', '-I', SPOOFED, b!.ip], { timeoutMs: 5_000 })
          .catch(() => undefined);
        await ping(a!.ns.name, b!.ip, 1);
        await sleep(200);
      }
      for (const m of monitors) {
        assert.equal(await m.exited, 0, `monitor: ${m.stdout()} ${m.stderr()}`);
      }
    } finally {
      for (const m of monitors) m.child.kill('SIGKILL');
    }
    const parse = (s: string): DatapathEvent[] =>
      s
        .trim()
        .split('\n')
        .map((l) => DatapathEventSchema.parse(JSON.parse(l)));
    const [drop] = parse(drops.stdout());
    assert.equal(drop?.type, 'drop');
    assert.equal(drop.node, NODE);
    assert.equal(drop.reason, 132);
    assert.equal(drop.reasonName, 'Invalid source ip');
    assert.equal(drop.file, 'bpf_lxc.c');
    assert.equal(drop.src, SPOOFED);
    assert.equal(drop.dst, b!.ip);
    assert.equal(drop.proto, 'ICMP');
    assert.equal(drop.summary, 'ICMP echo-request');
    assert.ok(Math.abs(Date.parse(drop.time) - Date.now()) < 60_000, `a real time: ${drop.time}`);
    const [trace] = parse(traces.stdout());
    assert.equal(trace?.type, 'trace');
    assert.equal(trace.state, 'new');
    assert.ok(
      ['from-endpoint', 'to-endpoint'].includes(trace.observationPoint ?? ''),
      trace.observationPoint,
    );
    assert.ok([a!.ip, b!.ip].includes(trace.src ?? ''));
    const text = lines.stdout().trim().split('\n');
    assert.equal(text.length, 2);
    for (const l of text) assert.match(l, /^\d\d:\d\d:\d\d\.\d{9} \[obs-node\] (xx drop|[<-]. )/);

    const stats = publisher!.stats();
    assert.ok(stats.counts.drop.published >= 1 && stats.counts.trace.published >= 1);
    assert.equal(stats.natsUp, true);
  });
});
