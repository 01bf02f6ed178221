// tc (clsact) and XDP attachment on veths inside network namespaces: programs see real
// traffic, queries report what is attached, detach removes it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { NetScope, type Netns } from '@ciliate/testkit';

import { existsSync } from 'node:fs';

import {
  attachTc,
  attachTcx,
  attachXdp,
  destroyTcHook,
  detachTcxPin,
  ifIndex,
  queryTc,
  queryXdp,
} from './attach.js';
import { u32, u64 } from './codec.js';
import { bpfObjectPath } from './datapath/datapath.js';
import { BpfObject } from './object.js';
import { pinDir, ping, quietNetns } from './testing/support.js';

describe('attaching programs', () => {
  const scope = new NetScope();
  const pins = pinDir('attach');
  let obj: BpfObject;
  let a: Netns;
  let b: Netns;
  const counters = () => obj.map('test_array').typed(u32, u64);

  before(async () => {
    obj = BpfObject.load(bpfObjectPath('tests/maps_test'), { pinRoot: pins.dir });
    a = await scope.netns('a');
    b = await scope.netns('b');
    await quietNetns(a.name);
    await quietNetns(b.name);
    // unique names: the pair is created in the root namespace before it moves
    const [ta, tb] = [scope.uniqueName('va'), scope.uniqueName('vb')];
    await scope.veth({ name: ta, netns: a.name }, { name: tb, netns: b.name });
    for (const [ns, from, to, addr] of [
      [a, ta, 'va', '192.0.2.1/24'],
      [b, tb, 'vb', '192.0.2.2/24'],
    ] as const) {
      await ns.ip(['link', 'set', from, 'down']);
      await ns.ip(['link', 'set', from, 'name', to]);
      await ns.ip(['addr', 'add', addr, 'dev', to]);
      await ns.ip(['link', 'set', to, 'up']);
    }
  });
  after(async () => {
    try {
      obj?.close();
    } finally {
      await scope.close();
      pins.remove();
    }
  });

  it('resolves interface names inside a namespace', () => {
    assert.ok(ifIndex('va', a.name) > 0);
    assert.throws(() => ifIndex('va', b.name), { code: 'ENODEV' });
    assert.throws(() => ifIndex('va', 'no-such-netns'), { code: 'ENOENT', op: 'setns' });
  });

  it('tc: attach on ingress, see packets, query, detach', async () => {
    const prog = obj.program('tc_pass_count');
    const att = attachTc(prog, { ifname: 'vb', netns: b.name, attachPoint: 'ingress' });
    assert.equal(att.priority, 1);
    assert.equal(att.handle, 1);
    assert.equal(queryTc({ ifname: 'vb', netns: b.name, attachPoint: 'ingress' }), prog.info().id);
    assert.equal(queryTc({ ifname: 'vb', netns: b.name, attachPoint: 'egress' }), undefined);
    const before = counters().get(2) ?? 0n;
    assert.ok(await ping(a, '192.0.2.2', { count: 3 }));
    assert.ok((counters().get(2) ?? 0n) - before >= 3n, 'the program saw the pings');
    // replacing in place keeps one filter
    const again = attachTc(prog, { ifname: 'vb', netns: b.name, attachPoint: 'ingress' });
    assert.equal(again.progId, att.progId);
    att.detach();
    assert.equal(queryTc({ ifname: 'vb', netns: b.name, attachPoint: 'ingress' }), undefined);
    assert.throws(() => att.detach(), { code: 'ENOENT', op: 'bpf_tc_detach' });
    assert.equal(destroyTcHook({ ifname: 'vb', netns: b.name }), true);
  });

  it('tc: refuses to replace when asked not to', () => {
    const prog = obj.program('tc_pass_count');
    const att = attachTc(prog, {
      ifname: 'va',
      netns: a.name,
      attachPoint: 'egress',
      priority: 7,
      handle: 3,
    });
    try {
      assert.throws(
        () =>
          attachTc(prog, {
            ifname: 'va',
            netns: a.name,
            attachPoint: 'egress',
            priority: 7,
            handle: 3,
            replace: false,
          }),
        { code: 'EEXIST', op: 'bpf_tc_attach' },
      );
    } finally {
      att.detach();
      destroyTcHook({ ifname: 'va', netns: a.name });
    }
  });

  it('tcx: attach as a pinned link, survive the process reference, swap atomically, detach', async () => {
    const prog = obj.program('tc_pass_count');
    const pinPath = `${pins.dir}/links/vb-ingress`;
    const link = attachTcx(prog, { ifname: 'vb', netns: b.name, attachPoint: 'ingress', pinPath });
    assert.equal(link.info().progId, prog.info().id);
    link.close(); // pinned: stays attached
    const before = counters().get(2) ?? 0n;
    assert.ok(await ping(a, '192.0.2.2', { count: 2 }));
    assert.ok((counters().get(2) ?? 0n) - before >= 2n, 'the pinned link still runs the program');
    // a second attach over the same pin reuses the link and swaps the program
    const o2 = BpfObject.load(bpfObjectPath('tests/maps_test'), { pinRoot: pins.dir });
    try {
      const again = attachTcx(o2.program('tc_pass_count'), {
        ifname: 'vb',
        netns: b.name,
        attachPoint: 'ingress',
        pinPath,
      });
      assert.equal(again.info().progId, o2.program('tc_pass_count').info().id);
      again.detach();
    } finally {
      o2.close();
    }
    assert.ok(!existsSync(pinPath), 'pin removed');
    assert.equal(detachTcxPin(pinPath), false);
    const after = counters().get(2) ?? 0n;
    assert.ok(await ping(a, '192.0.2.2', { count: 1 }));
    assert.equal(counters().get(2) ?? 0n, after, 'detached: the program no longer runs');
  });

  it('XDP (generic mode): attach, see packets, query, detach', async () => {
    const prog = obj.program('xdp_pass_count');
    const att = attachXdp(prog, { ifname: 'vb', netns: b.name, mode: 'skb' });
    try {
      assert.equal(queryXdp({ ifname: 'vb', netns: b.name, mode: 'skb' }), prog.info().id);
      const before = counters().get(1) ?? 0n;
      assert.ok(await ping(a, '192.0.2.2', { count: 3 }));
      assert.ok((counters().get(1) ?? 0n) - before >= 3n);
      assert.throws(
        () => attachXdp(prog, { ifname: 'vb', netns: b.name, mode: 'skb', exclusive: true }),
        {
          code: 'EBUSY',
        },
      );
    } finally {
      att.detach();
    }
    assert.equal(queryXdp({ ifname: 'vb', netns: b.name, mode: 'skb' }), undefined);
  });

  it('attachments outlive the object that loaded them (and objects can share a map by fd)', async () => {
    // the second object counts into the first object's array (bpf_map__reuse_fd)
    const o = BpfObject.load(bpfObjectPath('tests/maps_test'), {
      pinRoot: pins.dir,
      reuseMaps: { test_array: obj.map('test_array') },
    });
    const att = attachTc(o.program('tc_pass_count'), {
      ifname: 'vb',
      netns: b.name,
      attachPoint: 'ingress',
    });
    o.close();
    try {
      const before = counters().get(2) ?? 0n;
      assert.ok(await ping(a, '192.0.2.2', { count: 2 }));
      assert.ok(
        (counters().get(2) ?? 0n) - before >= 2n,
        'the program of the closed object still runs',
      );
    } finally {
      att.detach();
      destroyTcHook({ ifname: 'vb', netns: b.name });
    }
  });
});
