// Map operations against real kernel maps: lookup, update flags, delete, iteration, batch
// operations, per-CPU values and longest-prefix match.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { bytes, struct, u16, u32, u64 } from './codec.js';
import { bpfObjectPath } from './datapath/datapath.js';
import { BpfError } from './errors.js';
import { UpdateFlags, possibleCpus } from './map.js';
import { native } from './native.js';
import { BpfObject } from './object.js';
import { pinDir } from './testing/support.js';

const testValue = struct('test_value', { a: u64, b: u32, c: u16, d: bytes(2) });
const lpmKey = struct('test_lpm_key', { prefixlen: u32, addr: bytes(4) });

function v(n: number) {
  return { a: BigInt(n) * 1000n, b: n, c: n & 0xffff, d: Buffer.from([n & 0xff, 0]) };
}

describe('map operations', () => {
  const pins = pinDir('maps');
  let obj: BpfObject;
  before(() => {
    obj = BpfObject.load(bpfObjectPath('tests/maps_test'), { pinRoot: pins.dir });
  });
  after(() => {
    obj.close();
    pins.remove();
  });

  it('looks up, updates with flags and deletes', () => {
    const m = obj.map('test_hash').typed(u32, testValue);
    assert.equal(m.get(1), undefined);
    m.set(1, v(1), UpdateFlags.NOEXIST);
    assert.deepEqual(m.get(1), v(1));
    assert.throws(
      () => m.set(1, v(2), UpdateFlags.NOEXIST),
      (e: unknown) => {
        assert.ok(e instanceof BpfError);
        assert.equal(e.code, 'EEXIST');
        assert.equal(e.op, 'bpf_map_update_elem');
        return true;
      },
    );
    assert.throws(() => m.set(2, v(2), UpdateFlags.EXIST), { code: 'ENOENT' });
    m.set(1, v(3), UpdateFlags.EXIST);
    assert.equal(m.get(1)?.b, 3);
    assert.equal(m.delete(1), true);
    assert.equal(m.delete(1), false);
  });

  it('iterates keys with get_next_key and entries in batches', () => {
    const m = obj.map('test_hash').typed(u32, testValue);
    const n = 1000;
    assert.equal(m.setMany(Array.from({ length: n }, (_, i) => [i, v(i)] as const)), n);
    assert.equal([...m.keys()].length, n);
    const seen = new Map([...m.entries({ batchSize: 64 })]);
    assert.equal(seen.size, n);
    for (let i = 0; i < n; i++) assert.deepEqual(seen.get(i), v(i));
    // several syscalls, not one
    const batches = [...obj.map('test_hash').lookupBatches({ batchSize: 100 })];
    assert.ok(batches.length >= 10, `${batches.length} batches`);
    assert.equal(m.deleteMany(Array.from({ length: n / 2 }, (_, i) => i)), n / 2);
    assert.equal([...m.keys()].length, n / 2);
    // lookup-and-delete batch empties the map and returns what it took
    const taken = [...obj.map('test_hash').lookupBatches({ batchSize: 128, delete: true })].flat();
    assert.equal(taken.length, n / 2);
    assert.equal(obj.map('test_hash').nextKey(), undefined);
  });

  it('checks key and value sizes before the syscall', () => {
    assert.throws(() => obj.map('test_hash').lookup(Buffer.alloc(3)), {
      code: 'ERR_INVALID_ARG',
      message: /key is 3 bytes, the map's keys are 4/,
    });
    assert.throws(() => obj.map('test_hash').typed(u64, testValue), { code: 'ERR_INVALID_ARG' });
  });

  it('per-CPU maps: one value per possible CPU', () => {
    const m = obj.map('test_percpu').perCpuTyped(u32, u64);
    assert.equal(m.map.valueBufferSize, 8 * possibleCpus());
    m.set(5, 7n);
    assert.deepEqual(m.get(5), Array<bigint>(possibleCpus()).fill(7n));
    const per = Array.from({ length: possibleCpus() }, (_, i) => BigInt(i + 1));
    m.set(6, per);
    assert.deepEqual(m.get(6), per);
    assert.deepEqual(
      new Map([...m.entries()]),
      new Map([
        [5, Array<bigint>(possibleCpus()).fill(7n)],
        [6, per],
      ]),
    );
    assert.throws(() => obj.map('test_percpu').typed(u32, u64), {
      message: /per-CPU map: use perCpuTyped/,
    });
  });

  it('arrays: fixed keys, batch lookup, no delete', () => {
    const m = obj.map('test_array').typed(u32, u64);
    m.set(3, 99n);
    assert.equal(m.get(3), 99n);
    assert.equal([...m.entries()].length, 8);
    assert.throws(() => m.delete(3), { code: 'EINVAL' });
  });

  it('LPM trie: longest prefix wins; iteration falls back to get_next_key', () => {
    const m = obj.map('test_lpm').typed(lpmKey, u32);
    const key = (prefixlen: number, a: number[]) => ({ prefixlen, addr: Buffer.from(a) });
    m.set(key(8, [10, 0, 0, 0]), 8);
    m.set(key(24, [10, 1, 2, 0]), 24);
    m.set(key(32, [10, 1, 2, 3]), 32);
    assert.equal(m.get(key(32, [10, 1, 2, 3])), 32);
    assert.equal(m.get(key(32, [10, 1, 2, 4])), 24);
    assert.equal(m.get(key(32, [10, 9, 9, 9])), 8);
    assert.equal(m.get(key(32, [11, 0, 0, 0])), undefined);
    assert.equal([...m.entries()].length, 3);
    assert.throws(() => [...obj.map('test_lpm').lookupBatches()], { code: 'ERR_NOT_SUPPORTED' });
  });

  it('a closed map refuses operations with ERR_CLOSED', () => {
    const o = BpfObject.load(bpfObjectPath('tests/maps_test'), { pinRoot: pins.dir });
    const m = o.map('test_array');
    o.close();
    assert.throws(() => m.lookup(Buffer.alloc(4)), { code: 'ERR_CLOSED' });
  });

  it('the addon itself refuses buffers of the wrong size, before any syscall reads or writes them', () => {
    // straight to the addon, past BpfMap's checks: what a bug or a caller in a hurry could do
    const n = native();
    const hash = obj.map('test_hash'); // key 4, value 16
    const percpu = obj.map('test_percpu'); // key 4, value 8 per CPU
    hash.typed(u32, testValue).set(7, v(7));
    const refused = (fn: () => unknown, message: RegExp) =>
      assert.throws(fn, (e: unknown) => {
        assert.ok(e instanceof BpfError, String(e));
        assert.equal(e.code, 'ERR_INVALID_ARG');
        assert.match(e.message, message);
        return true;
      });
    const k = (n: number, size = 4) => {
      const b = Buffer.alloc(size);
      b.writeUInt32LE(n);
      return b;
    };
    refused(
      () => n.mapLookup(hash.fd, Buffer.alloc(3), 16),
      /^key: must be 4 bytes \(the map's key_size\), got 3/,
    );
    refused(() => n.mapLookup(hash.fd, Buffer.alloc(64), 16), /^key: must be 4 bytes .*got 64/);
    refused(
      () => n.mapLookup(hash.fd, k(7), 8),
      /^valueSize: must be 16 bytes \(the map's value_size\), got 8/,
    );
    refused(() => n.mapLookup(hash.fd, k(7), 1 << 20), /^valueSize: must be 16 bytes/);
    refused(() => n.mapLookupAndDelete(hash.fd, k(7), 4), /^valueSize: must be 16 bytes/);
    refused(
      () => n.mapUpdate(hash.fd, k(8), Buffer.alloc(15)),
      /^value: must be 16 bytes .*got 15/,
    );
    refused(
      () => n.mapUpdate(hash.fd, Buffer.alloc(0), Buffer.alloc(16)),
      /^key: must be 4 bytes .*got 0/,
    );
    refused(() => n.mapDelete(hash.fd, Buffer.alloc(2)), /^key: must be 4 bytes/);
    refused(() => n.mapGetNextKey(hash.fd, null, 2), /^keySize: must be 4 bytes .*got 2/);
    refused(() => n.mapGetNextKey(hash.fd, Buffer.alloc(1), 4), /^key: must be 4 bytes .*got 1/);
    refused(
      () => n.mapLookupBatch(hash.fd, null, 4, 8, 16, false, 0),
      /^valueSize: must be 16 bytes/,
    );
    refused(
      () => n.mapLookupBatch(hash.fd, null, 8, 16, 16, false, 0),
      /^keySize: must be 4 bytes/,
    );
    refused(
      () => n.mapUpdateBatch(hash.fd, Buffer.alloc(8), Buffer.alloc(32), 3, 0),
      /^keys: must be 12 bytes \(count times the map's key_size\), got 8/,
    );
    refused(
      () => n.mapUpdateBatch(hash.fd, Buffer.alloc(8), Buffer.alloc(16), 2, 0),
      /^values: must be 32 bytes/,
    );
    refused(() => n.mapDeleteBatch(hash.fd, Buffer.alloc(4), 2), /^keys: must be 8 bytes/);
    // per-CPU maps: a value is one slot of 8 bytes per possible CPU
    const cpus = possibleCpus();
    refused(
      () => n.mapLookup(percpu.fd, k(1), 8),
      new RegExp(
        `^valueSize: must be ${8 * cpus} bytes \\(the map's value_size rounded up to 8, times the possible CPUs\\), got 8`,
      ),
    );
    if (cpus > 1) refused(() => n.mapUpdate(percpu.fd, k(1), Buffer.alloc(8)), /^value: must be/);
    // what was there is untouched, and the right sizes still work through the same functions
    assert.deepEqual(hash.typed(u32, testValue).get(7), v(7));
    assert.equal(hash.typed(u32, testValue).get(8), undefined);
    assert.equal(n.mapLookup(hash.fd, k(7), 16)?.length, 16);
    n.mapUpdate(percpu.fd, k(1), Buffer.alloc(8 * cpus));
    assert.equal(n.mapLookup(percpu.fd, k(1), 8 * cpus)?.length, 8 * cpus);
    // a descriptor that is no map is the kernel's to refuse, with its own error
    assert.throws(
      () => n.mapLookup(0, k(7), 16),
      (e: unknown) => e instanceof BpfError,
    );
  });
});
