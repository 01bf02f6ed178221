// The TypeScript view of every map key, value and event matches the C structs byte for byte:
// compared with the BTF that clang recorded in each compiled object (opening an object parses
// the ELF only; no privileges are needed).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { pad, struct, u16, u32, u8 } from './codec.js';
import { Programs } from './datapath/constants.js';
import { bpfObjectPath } from './datapath/datapath.js';
import { EVENT_LAYOUTS, MAP_LAYOUTS } from './datapath/layouts.js';
import { compareLayout } from './layout-check.js';
import { BpfObject } from './object.js';

const OBJECTS = Object.values(Programs).map((p) => p.object);

function withObject<T>(name: string, fn: (o: BpfObject) => T): T {
  const o = BpfObject.open(bpfObjectPath(name));
  try {
    return fn(o);
  } finally {
    o.close();
  }
}

describe('map and event layouts against BTF', () => {
  for (const objName of OBJECTS) {
    describe(objName, () => {
      for (const m of MAP_LAYOUTS) {
        it(`${m.name}: key and value codecs match the C structs`, () => {
          withObject(objName, (o) => {
            const desc = o.maps().find((x) => x.name === m.name);
            assert.ok(desc, `${m.name} is defined in ${objName}`);
            if (m.key) {
              assert.equal(m.key.size, desc.keySize, 'key size');
              if (m.cKey) assert.deepEqual(compareLayout(m.key.layout, o.btfStruct(m.cKey)), []);
            }
            if (m.value) {
              assert.equal(m.value.size, desc.valueSize, 'value size');
              if (m.cValue)
                assert.deepEqual(compareLayout(m.value.layout, o.btfStruct(m.cValue)), []);
            }
          });
        });
      }
    });
  }

  for (const e of EVENT_LAYOUTS) {
    it(`${e.cType}: event codec matches the C struct`, () => {
      // the notify structs exist in every object that sends events
      withObject('bpf_lxc', (o) => {
        assert.deepEqual(compareLayout(e.codec.layout, o.btfStruct(e.cType)), []);
      });
    });
  }

  it('every map of every object has a layout entry (no map goes unchecked)', () => {
    const known = new Set(MAP_LAYOUTS.map((m) => m.name));
    for (const objName of OBJECTS) {
      withObject(objName, (o) => {
        for (const m of o.maps().filter((x) => !x.internal)) {
          assert.ok(known.has(m.name), `${objName}: ${m.name} has no TypeScript layout`);
        }
      });
    }
  });

  it('map names carry a version and fit the kernel limit of 15 characters', () => {
    for (const m of MAP_LAYOUTS) {
      assert.match(m.name, /_v\d+$/);
      assert.ok(m.name.length <= 15, `${m.name} is ${m.name.length} characters`);
    }
  });

  it('reports a drifted layout field by field', () => {
    const wrong = struct('metrics_key', { reason: u8, dir: u16, pad: pad(1) });
    const problems = withObject('bpf_lxc', (o) =>
      compareLayout(wrong.layout, o.btfStruct('metrics_key')),
    );
    assert.ok(
      problems.some(
        (p) => p.path === 'metrics_key.dir' && /offset: TypeScript 2, C 1/.test(p.message),
      ),
    );
    assert.ok(problems.some((p) => p.path === 'metrics_key.dir' && /size/.test(p.message)));
    const renamed = struct('metrics_key', { why: u8, dir: u8, pad: pad(2) });
    const p2 = withObject('bpf_lxc', (o) =>
      compareLayout(renamed.layout, o.btfStruct('metrics_key')),
    );
    assert.ok(p2.some((p) => p.path === 'metrics_key.why' && /missing in C/.test(p.message)));
    assert.ok(
      p2.some((p) => p.path === 'metrics_key.reason' && /missing in TypeScript/.test(p.message)),
    );
    const missing = withObject('bpf_lxc', (o) =>
      compareLayout(struct('nope', { a: u32 }).layout, o.btfStruct('nope')),
    );
    assert.equal(missing[0]?.message, 'not found in BTF');
  });
});
