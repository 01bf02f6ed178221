import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { NetScope, ip, listNetns } from './netns.js';

describe('network namespace scope', () => {
  it('wires two namespaces through a bridge, passes a ping, and removes everything', async () => {
    const scope = new NetScope();
    let names: string[] = [];
    try {
      const a = await scope.netns('a');
      const b = await scope.netns('b');
      const hub = await scope.netns('hub');
      const br = scope.uniqueName('br');
      await scope.bridge(br, hub.name);
      const [a0, a1, b0, b1] = [
        scope.uniqueName('va'),
        scope.uniqueName('ha'),
        scope.uniqueName('vb'),
        scope.uniqueName('hb'),
      ];
      await scope.veth(
        { name: a0, netns: a.name, address: '192.0.2.1/24' },
        { name: a1, netns: hub.name },
      );
      await scope.veth(
        { name: b0, netns: b.name, address: '192.0.2.2/24' },
        { name: b1, netns: hub.name },
      );
      await scope.attachToBridge(a1, br, hub.name);
      await scope.attachToBridge(b1, br, hub.name);
      names = [a.name, b.name, hub.name];
      const { stdout } = await a.exec('ping', ['-c', '1', '-W', '2', '192.0.2.2']);
      assert.match(stdout, /1 received/);
    } finally {
      await scope.close();
    }
    const left = await listNetns();
    for (const n of names) assert.ok(!left.includes(n), `${n} was removed`);
    assert.doesNotMatch(await ip(['link', 'show']), new RegExp(names[0]!.slice(0, 6)));
  });

  it('cleans up what was made before a step failed', async () => {
    const scope = new NetScope();
    let made = '';
    try {
      made = (await scope.netns('x')).name;
      await assert.rejects(scope.veth({ name: 'x'.repeat(20) }, { name: 'y' }), /ip link add/);
    } finally {
      await scope.close();
    }
    assert.ok(!(await listNetns()).includes(made));
  });
});
