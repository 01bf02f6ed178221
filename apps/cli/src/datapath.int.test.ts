// The datapath commands against a real nats-server and datapath micro services that answer
// with known data (the privileged test of @ciliate/datapath runs them against a real datapath):
// discovery by node, a node that does not answer, and monitor's server-side filtering.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  BpfCtListReplySchema,
  BpfCtListRequestSchema,
  BpfIpcacheListReplySchema,
  BpfIpcacheListRequestSchema,
  EndpointListReplySchema,
  EndpointListRequestSchema,
  datapathSubjects,
  type DatapathEvent,
  type EndpointInfo,
} from '@ciliate/contracts';
import { createService, type RunningService } from '@ciliate/runtime';
import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import { waitFor } from '@ciliate/testkit';

import { runCli, type Io } from './cli.js';
import { commands } from './commands/index.js';

const endpoint = (node: string, id: number): EndpointInfo => ({
  id,
  node,
  namespace: 'default',
  pod: `web-${id}`,
  containerID: `c${id}`,
  ifname: 'eth0',
  interface: `lxc${id}`,
  ifindex: 10 + id,
  mac: '02:00:00:00:00:01',
  ipv4: `10.0.1.${id}`,
  identity: 1000 + id,
  labels: ['k8s:app=web'],
  state: 'ready',
});

/** The CLI's output, and its environment: `env` holds its credentials. */
function capture(env: Record<string, string>): { io: Io; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: {
      out: (t) => (out += t),
      err: (t) => (err += t),
      interactive: false,
      env: { CILIATE_CONTEXT_FILE: '/nonexistent/context.json', ...env },
      readStdin: () => Promise.resolve(''),
    },
    out: () => out,
    err: () => err,
  };
}

describe('ciliate endpoint/bpf/monitor over NATS', () => {
  let nats: SecureNats;
  const services = new Map<string, RunningService>();
  // Every command here only reads: the CLI runs as a viewer.
  const cli = async (args: string[]) => {
    const c = capture(nats.env({ role: 'viewer' }));
    const code = await runCli(args, commands, c.io);
    return { code, out: c.out(), err: c.err() };
  };

  /** A datapath service on `node`; `serve: false` registers it without its endpoints, like a
   * node that is up but stuck. */
  async function datapathService(node: string, serve: boolean): Promise<void> {
    services.set(
      node,
      await createService(
        {
          component: 'datapath',
          role: 'datapath',
          version: '0.0.1-test',
          description: 'fake datapath',
          settings: {},
          setup(ctx) {
            if (!serve) return;
            ctx.endpoint({
              name: 'endpoint-list',
              subject: datapathSubjects.endpoint(node, 'endpoint-list'),
              request: EndpointListRequestSchema,
              reply: EndpointListReplySchema,
              handler: () => ({ node, endpoints: [endpoint(node, 2), endpoint(node, 1)] }),
            });
            ctx.endpoint({
              name: 'ipcache-list',
              subject: datapathSubjects.endpoint(node, 'ipcache-list'),
              request: BpfIpcacheListRequestSchema,
              reply: BpfIpcacheListReplySchema,
              handler: () => ({
                node,
                entries: [{ prefix: '10.0.2.0/24', identity: 6, tunnelEndpoint: '192.168.0.2' }],
              }),
            });
            ctx.endpoint({
              name: 'ct-list',
              subject: datapathSubjects.endpoint(node, 'ct-list'),
              request: BpfCtListRequestSchema,
              reply: BpfCtListReplySchema,
              handler: (req) => ({
                node,
                entries: [
                  {
                    proto: 'TCP',
                    src: '10.0.1.1',
                    sport: 40000,
                    dst: '10.0.1.2',
                    dport: 80,
                    direction: 'out' as const,
                    expiresIn: 100,
                    rxPackets: 1,
                    rxBytes: 60,
                    txPackets: 1,
                    txBytes: 60,
                    flags: 'SYN ACK SeenReply',
                    srcIdentity: 1001,
                    revNat: 0,
                  },
                ].slice(0, req.limit ?? 1000),
                truncated: req.limit === 1,
              }),
            });
          },
        },
        {
          argv: ['--node', node, '--http-address', ''],
          env: nats.env({ role: 'datapath', node }),
          logDestination: { write: () => undefined },
        },
      ),
    );
  }

  before(async () => {
    nats = await startSecureNats({ nodes: ['node-a', 'node-b'] });
    await datapathService('node-a', true);
    await datapathService('node-b', false);
  });

  after(async () => {
    for (const s of services.values()) await s.stop().catch(() => undefined);
    await nats?.close();
  });

  it('endpoint list asks every node found; the one that does not answer is reported', async () => {
    const r = await cli(['endpoint', 'list', '-o', 'json']);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out) as {
      kind: string;
      items: EndpointInfo[];
      unreachable: { node: string; error: string }[];
    };
    assert.equal(report.kind, 'EndpointList');
    assert.deepEqual(
      report.items.map((e) => [e.node, e.id]),
      [
        ['node-a', 1],
        ['node-a', 2],
      ],
    );
    assert.deepEqual(
      report.unreachable.map((u) => u.node),
      ['node-b'],
    );
    assert.match(r.err, /warning: node node-b did not answer: no service answers/);
    const table = await cli(['endpoint', 'list']);
    assert.match(table.out, /^ID\s+POD\s+IPv4\s+IDENTITY\s+STATE\s+NODE\n1\s+default\/web-1\s+/);
  });

  it('asking only a node that does not answer exits 1; an unknown node too', async () => {
    const b = await cli(['endpoint', 'list', '--node', 'node-b']);
    assert.equal(b.code, 1);
    assert.match(b.err, /node node-b did not answer/);
    const a = await cli(['bpf', 'ipcache', 'list', '--node', 'node-a', '-o', 'json']);
    assert.equal(a.code, 0, a.err);
    assert.deepEqual(JSON.parse(a.out), {
      apiVersion: 'ciliate.io/v1',
      kind: 'BpfIpcacheList',
      items: [
        { prefix: '10.0.2.0/24', identity: 6, tunnelEndpoint: '192.168.0.2', node: 'node-a' },
      ],
      unreachable: [],
    });
  });

  it('bpf ct list passes --limit and reports truncated nodes', async () => {
    const r = await cli(['bpf', 'ct', 'list', '--node', 'node-a', '--limit', '1', '-o', 'json']);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out) as { items: unknown[]; truncated: string[] };
    assert.equal(report.items.length, 1);
    assert.deepEqual(report.truncated, ['node-a']);
    assert.match(r.err, /node node-a has more conntrack entries than shown/);
  });

  it('monitor filters by type on the server, skips malformed events and stops after --count', async () => {
    const c = capture(nats.env({ role: 'viewer' }));
    const running = runCli(
      ['monitor', '--type', 'drop', '--count', '2', '-o', 'json'],
      commands,
      c.io,
    );
    await waitFor(
      'monitor to subscribe',
      () => (c.err().includes('Listening') ? true : undefined),
      {
        timeoutMs: 10_000,
      },
    );
    const ev = (type: 'drop' | 'trace', n: number, node = 'node-a'): DatapathEvent => ({
      type,
      node,
      time: '2026-01-01T00:00:00.000000000Z',
      endpointId: n,
      ifindex: 1,
      srcIdentity: 1,
      dstIdentity: 2,
      length: 60,
      ...(type === 'drop' ? { reason: 133, reasonName: 'Policy denied' } : {}),
    });
    // Each node's datapath publishes its own events; flushing keeps their order across the two
    // connections.
    const pub = async (node: string, type: 'drop' | 'trace', body: unknown) => {
      const nc = services.get(node)!.nc;
      nc.publish(
        datapathSubjects.event(type, node),
        new TextEncoder().encode(JSON.stringify(body)),
      );
      await nc.flush();
    };
    await pub('node-a', 'trace', ev('trace', 1));
    await pub('node-a', 'drop', { not: 'an event' });
    await pub('node-a', 'drop', ev('drop', 2));
    await pub('node-b', 'drop', ev('drop', 3, 'node-b'));
    await pub('node-a', 'drop', ev('drop', 4));
    assert.equal(await running, 0, c.err());
    const lines = c
      .out()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as DatapathEvent);
    assert.deepEqual(
      lines.map((l) => [l.type, l.endpointId]),
      [
        ['drop', 2],
        ['drop', 3],
      ],
    );
    assert.match(c.err(), /ignored a malformed event/);
  });
});
