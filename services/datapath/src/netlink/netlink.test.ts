// How `ip` is run inside a container's namespace: by itself for a named one, else via nsenter.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ipInNetns, NO_NETNS } from './netlink.js';

describe('ipInNetns', () => {
  it('a namespace named under /var/run/netns is entered by ip -n, one process', () => {
    assert.deepEqual(ipInNetns('/var/run/netns/cni-1234'), ['ip', '-n', 'cni-1234']);
  });

  it('any other path goes through nsenter', () => {
    for (const p of ['/proc/42/ns/net', '/var/run/netns/a/b', '/var/run/netns/..', '/run/x']) {
      assert.deepEqual(ipInNetns(p), ['nsenter', `--net=${p}`, 'ip'], p);
    }
  });

  it('both ways of saying the namespace is gone are recognised', () => {
    assert.ok(NO_NETNS.test('Cannot open network namespace "x": No such file or directory\n'));
    assert.ok(NO_NETNS.test('nsenter: cannot open /var/run/netns/x: No such file or directory\n'));
    assert.ok(!NO_NETNS.test('RTNETLINK answers: File exists\n'));
  });
});
