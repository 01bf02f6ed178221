// Loading objects into the kernel: constants set before load, pin and reuse of maps across a
// reload, and a verifier rejection surfaced with the verifier's log.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { after, describe, it } from 'node:test';

import { u32 } from './codec.js';
import { Programs } from './datapath/constants.js';
import { Datapath, bpfObjectPath } from './datapath/datapath.js';
import { BpfError } from './errors.js';
import { BpfMap, MapType } from './map.js';
import { BpfObject, ProgramType } from './object.js';
import { pinDir } from './testing/support.js';
import { struct, u16, u64, bytes } from './codec.js';

const FIXTURE = bpfObjectPath('tests/maps_test');
const REJECT = bpfObjectPath('tests/reject');
const ETH_FRAME = Buffer.alloc(64);
const testValue = struct('test_value', { a: u64, b: u32, c: u16, d: bytes(2) });

describe('BPF objects', () => {
  const pins = pinDir('obj');
  after(() => pins.remove());

  it('every datapath object passes the verifier', () => {
    const dir = pinDir('all');
    try {
      for (const p of Object.values(Programs)) {
        const o = BpfObject.load(bpfObjectPath(p.object), { pinRoot: dir.dir });
        try {
          for (const prog of o.programs()) {
            assert.ok(prog.fd > 0, `${p.object}/${prog.name} loaded`);
            assert.ok(prog.info().id > 0);
          }
        } finally {
          o.close();
        }
      }
    } finally {
      dir.remove();
    }
  });

  it('gives a tc test run its context and returns it as the program left it', () => {
    const o = BpfObject.load(FIXTURE, { pinRoot: pins.dir });
    try {
      const prog = o.program('echo_ctx');
      // no interface given: the kernel runs the packet on loopback (ifindex 1)
      const r = prog.testRun(ETH_FRAME, 1, { mark: 7, cb: [100] });
      assert.equal(r.retval, 1);
      assert.equal(r.skb?.mark, 101, 'the mark the program wrote');
      assert.equal(r.skb?.cb[0], 100, 'cb comes back');
      assert.equal(prog.testRun(ETH_FRAME).skb, undefined, 'no context given, none returned');
      assert.throws(
        () => prog.testRun(ETH_FRAME, 1, { ifindex: 0x7fff_fff0 }),
        /ENODEV|No such device/,
      );
      assert.throws(() => prog.testRun(ETH_FRAME, 1, { cb: [1, 2, 3, 4, 5, 6] }), /skb\.cb/);
    } finally {
      o.close();
    }
  });

  it('sets load-time constants before load (the verifier sees them as constants)', () => {
    const o = BpfObject.load(FIXTURE, {
      pinRoot: pins.dir,
      constants: { test_magic: 42, test_wide: 3n << 32n },
    });
    try {
      const prog = o.program('emit_event');
      assert.equal(prog.type, ProgramType.SCHED_CLS);
      assert.equal(prog.testRun(ETH_FRAME).retval, 42 + 3);
      assert.deepEqual(
        o.constants().map((c) => [c.name, c.size]),
        [
          ['test_magic', 4],
          ['test_wide', 8],
        ],
      );
      assert.throws(() => o.setConstant('test_magic', 1), {
        code: 'ERR_INVALID_ARG',
        message: /already loaded/,
      });
    } finally {
      o.close();
    }
  });

  it('refuses unknown constants and values that do not fit', () => {
    assert.throws(() => BpfObject.open(FIXTURE, { constants: { nope: 1 } }), {
      code: 'ERR_INVALID_ARG',
      message:
        /constant nope: not a load-time constant of maps_test \(known: test_magic, test_wide\)/,
    });
    assert.throws(() => BpfObject.open(FIXTURE, { constants: { test_magic: 2 ** 32 } }), {
      code: 'ERR_INVALID_VALUE',
      message: /does not fit in 4 bytes/,
    });
    assert.throws(() => BpfObject.open(FIXTURE, { constants: { test_magic: Buffer.alloc(2) } }), {
      code: 'ERR_INVALID_ARG',
      message: /is 4 bytes, got 2/,
    });
  });

  it('a missing file is an ENOENT BpfError from bpf_object__open_file', () => {
    assert.throws(
      () => BpfObject.open('/nonexistent.o'),
      (e: unknown) => {
        assert.ok(e instanceof BpfError);
        assert.equal(e.code, 'ENOENT');
        assert.equal(e.errno, 2);
        assert.equal(e.op, 'bpf_object__open_file');
        return true;
      },
    );
  });

  it('surfaces a verifier rejection with errno, program name and the verifier log', () => {
    let caught: unknown;
    try {
      BpfObject.load(REJECT);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof BpfError, 'a BpfError');
    assert.equal(caught.code, 'EACCES');
    assert.equal(caught.errno, 13);
    assert.equal(caught.op, 'bpf_object__load');
    assert.equal(caught.program, 'reject_null_deref');
    assert.match(caught.verifierLog ?? '', /invalid mem access 'map_value_or_null'/);
    assert.match(caught.verifierLog ?? '', /processed \d+ insns/);
    assert.match(caught.libbpfLog ?? '', /BPF program load failed/);
  });

  it('pins maps by name and reuses them on reload: entries survive', () => {
    const a = BpfObject.load(FIXTURE, { pinRoot: pins.dir });
    const key = Buffer.alloc(4);
    key.writeUInt32LE(7);
    const hash = a.map('test_hash').typed(u32, testValue);
    hash.set(7, { a: 1n, b: 2, c: 3, d: Buffer.from([4, 5]) });
    const id = a.map('test_hash').id();
    a.close();
    assert.ok(existsSync(`${pins.dir}/test_hash`), 'pinned under the pin root');

    const b = BpfObject.load(FIXTURE, { pinRoot: pins.dir });
    try {
      assert.equal(b.map('test_hash').id(), id, 'the same kernel map');
      assert.deepEqual(b.map('test_hash').typed(u32, testValue).get(7), {
        a: 1n,
        b: 2,
        c: 3,
        d: Buffer.from([4, 5]),
      });
      const pinned = BpfMap.openPinned(`${pins.dir}/test_hash`);
      try {
        assert.equal(pinned.type, MapType.HASH);
        assert.equal(pinned.keySize, 4);
        assert.equal(pinned.typed(u32, testValue).get(7)?.b, 2);
      } finally {
        pinned.close();
      }
    } finally {
      b.close();
    }
  });

  it('pins a map at an explicit path, and refuses to reuse an incompatible pinned map', () => {
    const path = `${pins.dir}/explicit_percpu`;
    const a = BpfObject.load(FIXTURE, { pinRoot: pins.dir, pinPaths: { test_percpu: path } });
    const id = a.map('test_percpu').id();
    a.close();
    const b = BpfObject.load(FIXTURE, { pinRoot: pins.dir, pinPaths: { test_percpu: path } });
    assert.equal(b.map('test_percpu').id(), id);
    b.close();
    // a map of another shape pinned where test_percpu expects its own
    assert.throws(
      () => BpfObject.load(FIXTURE, { pinRoot: pins.dir, pinPaths: { test_array: path } }),
      (e: unknown) =>
        e instanceof BpfError &&
        e.op === 'bpf_object__load' &&
        /couldn't reuse pinned map|reuse/.test(e.libbpfLog ?? ''),
    );
  });

  it('resizes a map before it is created', () => {
    const o = BpfObject.load(FIXTURE, {
      maxEntries: { test_hash: 100 },
      pinPaths: { test_hash: null },
    });
    try {
      assert.equal(o.map('test_hash').maxEntries, 100);
    } finally {
      o.close();
    }
  });

  it('leaves no pins outside its pin directory (libbpf pins by-name maps in /sys/fs/bpf without a root)', () => {
    const stray = readdirSync('/sys/fs/bpf').filter(
      (n) => n.startsWith('test_') || n.startsWith('cil_'),
    );
    assert.deepEqual(stray, []);
  });

  it('Datapath.load loads all four objects sharing one set of pinned maps', () => {
    const dir = pinDir('dp');
    const dp = Datapath.load({ pinDir: dir.dir });
    try {
      assert.deepEqual(dp.checkLayouts(), [], 'TypeScript views match every loaded object');
      const ids = Object.values(dp.objects).map((o) => o.map('cil_ct4_v1').id());
      assert.equal(new Set(ids).size, 1, 'one conntrack map for every program');
      dp.endpoints.set(
        { ip: '10.9.0.1' },
        {
          ifindex: 5,
          endpointId: 1,
          flags: 0,
          mac: '02:00:00:00:00:01',
          nodeMac: '02:00:00:00:00:02',
          identity: 256,
        },
      );
    } finally {
      dp.close();
    }
    const again = Datapath.load({ pinDir: dir.dir, objects: ['lxc'] });
    try {
      assert.equal(
        again.endpoints.get({ ip: '10.9.0.1' })?.identity,
        256,
        'endpoints survive a reload',
      );
    } finally {
      again.close();
      dir.remove();
    }
  });
});
