// A node whose pod CIDR is full: ADD fails with our code 101 and leaves nothing behind, STATUS
// reports "not ready" (50), and a DEL makes room again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { NetScope, type Netns } from '@ciliate/testkit';

import {
  PLUGIN,
  REFERENCE_PLUGINS,
  makeNode,
  poolLeases,
  runCni,
  startAgent,
  type RunningAgent,
  type TestNode,
} from './testing/harness.js';

describe('a node out of pod addresses', () => {
  const scope = new NetScope();
  let node: TestNode;
  let agent: RunningAgent;
  let p1: Netns;
  let p2: Netns;

  const conf = () => ({
    cniVersion: '1.1.0',
    name: 'ciliate',
    type: 'ciliate-cni',
    socketPath: node.socketPath,
  });
  const env = (command: string, id: string, ns: Netns) => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: `/var/run/netns/${ns.name}`,
    CNI_IFNAME: 'eth0',
    CNI_PATH: REFERENCE_PLUGINS,
  });
  const status = () =>
    runCni(node, PLUGIN, { CNI_COMMAND: 'STATUS', CNI_PATH: REFERENCE_PLUGINS }, conf());

  before(async () => {
    // a /30 holds the router and one pod
    node = await makeNode(scope, '10.233.0.0/30', '192.168.233.1');
    agent = await startAgent(node);
    p1 = await scope.netns('pod');
    p2 = await scope.netns('pod');
  });

  after(async () => {
    try {
      await agent?.stop('SIGKILL');
    } finally {
      await scope.close();
      node?.remove();
    }
  });

  it('the second ADD fails with 101 and leaks nothing; STATUS says 50 until a DEL', async () => {
    assert.equal((await status()).code, 0);
    const first = await runCni(node, PLUGIN, env('ADD', 'one', p1), conf());
    assert.equal(first.code, 0, first.stdout);
    assert.equal((await status()).json?.code, 50);

    const second = await runCni(node, PLUGIN, env('ADD', 'two', p2), conf());
    assert.notEqual(second.code, 0);
    assert.equal(second.json?.code, 101);
    assert.match(String(second.json?.msg), /10\.233\.0\.0\/30/);
    const inPod = JSON.parse(await p2.ip(['-j', 'link', 'show'])) as unknown[];
    assert.equal(inPod.length, 1, 'no interface left in the pod');
    assert.deepEqual(
      poolLeases(node)
        .map((l) => l.owner)
        .sort(),
      ['cni/one/one/eth0', 'router'],
    );

    assert.equal((await runCni(node, PLUGIN, env('DEL', 'one', p1), conf())).code, 0);
    assert.equal((await status()).code, 0);
    const retry = await runCni(node, PLUGIN, env('ADD', 'two', p2), conf());
    assert.equal(retry.code, 0, retry.stdout);
  });
});
