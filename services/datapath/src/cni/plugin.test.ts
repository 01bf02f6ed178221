// The plugin executable's core against a fake agent: what reaches the agent, what the runtime
// reads on stdout, the exit code, and the result's shape for each spec version.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { runPlugin } from './plugin.js';
import type { AgentReply, AgentRequest, AgentTransport } from './protocol.js';
import { buildAddResult, type CniResult } from './result.js';

const ENV = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'c1',
  CNI_NETNS: '/var/run/netns/p1',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
  CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web',
};
const CONF = JSON.stringify({
  cniVersion: '1.1.0',
  name: 'ciliate',
  type: 'ciliate-cni',
  socketPath: '/run/x.sock',
});
const WIRING = {
  hostIfname: 'lxc0123456789a',
  hostMac: '02:00:00:00:00:01',
  ifname: 'eth0',
  mac: '02:00:00:00:00:02',
  mtu: 1500,
  netns: '/var/run/netns/p1',
  address: '10.0.1.5/32',
  gateway: '10.0.1.1',
};

function fake(reply: AgentReply | Error): { transport: AgentTransport; seen: AgentRequest[] } {
  const seen: AgentRequest[] = [];
  return {
    seen,
    transport: (_path, req) => {
      seen.push(req);
      return reply instanceof Error ? Promise.reject(reply) : Promise.resolve(reply);
    },
  };
}

describe('plugin core', () => {
  it('ADD forwards the parsed request and prints the result', async () => {
    const { transport, seen } = fake({ ok: true, result: buildAddResult('1.1.0', WIRING) });
    const out = await runPlugin(ENV, CONF, transport);
    assert.equal(out.exitCode, 0);
    const r = JSON.parse(out.stdout) as CniResult;
    assert.equal(r.cniVersion, '1.1.0');
    assert.deepEqual(
      r.interfaces?.map((i) => [i.name, i.sandbox]),
      [
        ['lxc0123456789a', undefined],
        ['eth0', '/var/run/netns/p1'],
      ],
    );
    assert.deepEqual(r.ips, [{ address: '10.0.1.5/32', gateway: '10.0.1.1', interface: 1 }]);
    assert.deepEqual(r.routes, [{ dst: '0.0.0.0/0', gw: '10.0.1.1' }]);
    assert.equal(seen[0]?.command, 'ADD');
    assert.equal(seen[0]?.containerId, 'c1');
    assert.equal(seen[0]?.args.podName, 'web');
    assert.equal(seen[0]?.config.socketPath, '/run/x.sock');
  });

  it('an agent error comes out as the CNI error JSON with a non-zero exit', async () => {
    const { transport } = fake({ ok: false, error: { code: 101, msg: 'no address left' } });
    const out = await runPlugin(ENV, CONF, transport);
    assert.equal(out.exitCode, 1);
    assert.deepEqual(JSON.parse(out.stdout), {
      cniVersion: '1.1.0',
      code: 101,
      msg: 'no address left',
    });
  });

  it('an unreachable agent: code 11 for ADD, 50 for STATUS', async () => {
    const { transport } = fake(new Error('connect ENOENT /run/x.sock'));
    const add = JSON.parse((await runPlugin(ENV, CONF, transport)).stdout) as {
      code: number;
      msg: string;
    };
    assert.equal(add.code, 11);
    assert.match(add.msg, /\/run\/x.sock/);
    const st = await runPlugin({ CNI_COMMAND: 'STATUS', CNI_PATH: '/x' }, CONF, transport);
    assert.equal(st.exitCode, 1);
    assert.equal((JSON.parse(st.stdout) as { code: number }).code, 50);
  });

  it('DEL, CHECK, GC and STATUS print nothing on success', async () => {
    for (const cmd of ['DEL', 'CHECK', 'STATUS']) {
      const out = await runPlugin({ ...ENV, CNI_COMMAND: cmd }, CONF, fake({ ok: true }).transport);
      assert.deepEqual(out, { stdout: '', exitCode: 0 }, cmd);
    }
    const gcConf = JSON.stringify({ ...JSON.parse(CONF), 'cni.dev/valid-attachments': [] });
    const gc = await runPlugin(
      { CNI_COMMAND: 'GC', CNI_PATH: '/x' },
      gcConf,
      fake({ ok: true }).transport,
    );
    assert.equal(gc.exitCode, 0);
  });

  it('VERSION needs no agent; validation errors never reach it', async () => {
    const { transport, seen } = fake(new Error('must not be called'));
    const v = await runPlugin({ CNI_COMMAND: 'VERSION' }, CONF, transport);
    assert.equal(v.exitCode, 0);
    assert.deepEqual(JSON.parse(v.stdout), {
      cniVersion: '1.1.0',
      supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
    const bad = await runPlugin({ ...ENV, CNI_NETNS: undefined }, CONF, transport);
    assert.equal(bad.exitCode, 1);
    assert.deepEqual(JSON.parse(bad.stdout), {
      cniVersion: '1.1.0',
      code: 4,
      msg: 'CNI_NETNS: Required value: ADD needs this variable',
    });
    const old = await runPlugin(
      { ...ENV, CNI_COMMAND: 'GC' },
      JSON.stringify({ ...JSON.parse(CONF), cniVersion: '1.0.0', 'cni.dev/valid-attachments': [] }),
      transport,
    );
    assert.equal((JSON.parse(old.stdout) as { code: number }).code, 1);
    assert.equal(seen.length, 0);
  });

  it('results keep a prevResult and shift interface indexes; 0.3.x carries ip versions', () => {
    const prev: CniResult = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'dummy0' }],
      ips: [{ address: '192.168.0.2/24', interface: 0 }],
      dns: { nameservers: ['1.1.1.1'] },
    };
    const r = buildAddResult('1.0.0', WIRING, prev, { search: ['cluster.local'] });
    assert.equal(r.interfaces?.length, 3);
    assert.deepEqual(
      r.ips?.map((i) => i.interface),
      [0, 2],
    );
    assert.deepEqual(r.dns, { nameservers: ['1.1.1.1'], search: ['cluster.local'] });
    const old = buildAddResult('0.3.1', WIRING);
    assert.equal(old.ips?.[0]?.version, '4');
    assert.equal(buildAddResult('1.0.0', WIRING).ips?.[0]?.version, undefined);
  });
});
