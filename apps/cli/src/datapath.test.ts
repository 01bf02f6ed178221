import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DatapathEventSchema, type DatapathEvent } from '@ciliate/contracts';

import { runCli, type Io } from './cli.js';
import { commands } from './commands/index.js';
import { ctTable, endpointTable, ipcacheTable, nodeFlag } from './commands/datapath.js';
import { formatEvent, formatEventLine } from './commands/monitor.js';

const drop: DatapathEvent = {
  type: 'drop',
  node: 'node-1',
  time: '2026-01-02T03:04:05.123456789Z',
  reason: 132,
  reasonName: 'Invalid source ip',
  file: 'bpf_lxc.c',
  line: 41,
  endpointId: 3,
  ifindex: 17,
  srcIdentity: 5,
  dstIdentity: 2,
  proto: 'ICMP',
  src: '10.0.1.250',
  dst: '10.0.1.6',
  length: 84,
  summary: 'ICMP echo-request',
};

const trace: DatapathEvent = {
  type: 'trace',
  node: 'node-2',
  time: '2026-01-02T03:04:05.000000001Z',
  observationPoint: 'to-endpoint',
  state: 'reply',
  endpointId: 4,
  ifindex: 18,
  srcIdentity: 300,
  dstIdentity: 301,
  proto: 'TCP',
  src: '10.0.1.6',
  sport: 80,
  dst: '10.0.1.5',
  dport: 40000,
  length: 60,
  summary: 'TCP SYN ACK',
};

describe('monitor lines', () => {
  it('a drop names its reason, where it was taken, the identities and the packet', () => {
    assert.equal(
      formatEventLine(drop),
      '03:04:05.123456789 [node-1] xx drop (Invalid source ip) file bpf_lxc.c:41 endpoint 3 ifindex 17 identity 5->2: 10.0.1.250 -> 10.0.1.6 ICMP echo-request',
    );
  });

  it('a trace names its observation point and conntrack state', () => {
    assert.equal(
      formatEventLine(trace),
      '03:04:05.000000001 [node-2] -> endpoint 4 identity 300->301 state reply ifindex 18: 10.0.1.6:80 -> 10.0.1.5:40000 TCP SYN ACK',
    );
    assert.match(
      formatEventLine({ ...trace, observationPoint: 'to-stack', src: undefined, dst: undefined }),
      /\] -> stack identity 300->301 state reply ifindex 18: TCP SYN ACK$/,
    );
    assert.match(
      formatEventLine({ ...trace, summary: undefined, src: undefined, dst: undefined }),
      /: 60 bytes$/,
    );
  });

  it('-o json is one JSON object per line that parses back as the event', () => {
    const line = formatEvent('json', drop);
    assert.equal(line.split('\n').length, 2);
    assert.deepEqual(DatapathEventSchema.parse(JSON.parse(line)), drop);
    assert.match(formatEvent('yaml', drop), /^---\ntype: drop\n/);
  });
});

describe('datapath tables', () => {
  it('endpoint list: ID, POD, IPv4, IDENTITY, STATE, NODE', () => {
    const t = endpointTable([
      {
        id: 3,
        node: 'node-1',
        namespace: 'default',
        pod: 'web-1',
        containerID: 'c1',
        ifname: 'eth0',
        interface: 'lxc1',
        ifindex: 17,
        mac: '02:00:00:00:00:01',
        ipv4: '10.0.1.5',
        identity: 12345,
        labels: [],
        state: 'ready',
      },
      {
        id: 4,
        node: 'node-1',
        containerID: 'c2',
        ifname: 'eth0',
        interface: 'lxc2',
        ifindex: 18,
        mac: '02:00:00:00:00:02',
        identity: 5,
        labels: [],
        state: 'restoring',
      },
    ]);
    assert.equal(
      t,
      [
        'ID   POD              IPv4       IDENTITY   STATE       NODE',
        '3    default/web-1    10.0.1.5   12345      ready       node-1',
        '4    <container c2>   -          5          restoring   node-1',
        '',
      ].join('\n'),
    );
    assert.equal(endpointTable([]), 'No endpoints.\n');
  });

  it('ipcache and conntrack tables', () => {
    assert.match(
      ipcacheTable([
        { node: 'n1', prefix: '10.0.2.0/24', identity: 6, tunnelEndpoint: '192.168.0.2' },
      ]),
      /^PREFIX\s+IDENTITY\s+TUNNEL ENDPOINT\s+NODE\n10\.0\.2\.0\/24\s+6\s+192\.168\.0\.2\s+n1\n$/,
    );
    const ct = ctTable([
      {
        node: 'n1',
        proto: 'ICMP',
        src: '10.0.1.5',
        sport: 7,
        dst: '10.0.1.6',
        dport: 0,
        direction: 'out',
        expiresIn: 42,
        rxPackets: 1,
        rxBytes: 84,
        txPackets: 1,
        txBytes: 84,
        flags: '',
        srcIdentity: 5,
        revNat: 0,
      },
    ]);
    assert.match(
      ct,
      /ICMP\s+OUT\s+10\.0\.1\.5:7\s+10\.0\.1\.6\s+42s\s+1p\/84B\s+1p\/84B\s+-\s+5\s+n1/,
    );
  });
});

describe('datapath command lines', () => {
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    const value: Io = {
      out: (t) => out.push(t),
      err: (t) => err.push(t),
      interactive: false,
      env: { CILIATE_CONTEXT_FILE: '/nonexistent' },
      readStdin: () => Promise.resolve(''),
    };
    return { value, out, err };
  };

  for (const argv of [
    ['endpoint'],
    ['endpoint', 'get'],
    ['endpoint', 'list', 'x'],
    ['endpoint', 'list', '--node', 'Bad.Node'],
    ['bpf'],
    ['bpf', 'lb', 'list'],
    ['bpf', 'ct'],
    ['bpf', 'ipcache', 'list', '--limit', '5'],
    ['bpf', 'ct', 'list', '--limit', '0'],
    ['monitor', '--type', 'policy'],
    ['monitor', '--count', 'x'],
  ]) {
    it(`"${argv.join(' ')}" is a usage error (exit 2) before anything is asked`, async () => {
      const { value, err } = io();
      assert.equal(await runCli([...argv, '--nats', 'nats://127.0.0.1:1'], commands, value), 2);
      assert.match(err.join(''), /^error: .*\nUsage: ciliate /);
    });
  }

  it('node names are DNS-1123 subdomains, as Kubernetes names nodes', () => {
    assert.equal(nodeFlag('node-1'), 'node-1');
    assert.equal(nodeFlag(undefined), undefined);
    assert.throws(() => nodeFlag('node_1'), /--node/);
    assert.equal(nodeFlag('n1.example'), 'n1.example', 'node names are DNS subdomains');
  });
});
