import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { DEFAULT_DATAPATH_CONFIG, datapathConstants } from './config.js';

// The loader overwrites every constant, but an object loaded by anything else (bpftool, a test
// of the C alone) runs with the C initialisers: they must say what the TypeScript table says, or
// the two defaults drift apart (they once did: BPF host routing in C, legacy in TypeScript).
const CONFIG_H = fileURLToPath(new URL('../../../../bpf/lib/config.h', import.meta.url));

/** `volatile const __u32 cfg_x = VALUE;` initialisers, #define names resolved to numbers. */
function cDefaults(text: string): Map<string, number> {
  const defines = new Map<string, number>();
  for (const m of text.matchAll(/^#define ([A-Z0-9_]+) (\d+)$/gm)) defines.set(m[1]!, Number(m[2]));
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^volatile const __u32 (cfg_\w+) = (\w+);$/gm)) {
    const raw = m[2]!;
    const value = /^\d+$/.test(raw) ? Number(raw) : defines.get(raw);
    assert.ok(value !== undefined, `${m[1]}: ${raw} is neither a number nor a #define`);
    out.set(m[1]!, value);
  }
  return out;
}

describe('bpf/lib/config.h defaults', () => {
  it('equal the constants of DEFAULT_DATAPATH_CONFIG, name by name', () => {
    const c = cDefaults(readFileSync(CONFIG_H, 'utf8'));
    const ts = datapathConstants(DEFAULT_DATAPATH_CONFIG);
    assert.ok(c.size >= 10, 'the header declares the load-time constants');
    assert.deepEqual([...c.keys()].sort(), Object.keys(ts).sort(), 'the same constants');
    for (const [name, value] of c) assert.equal(ts[name], value, name);
  });

  it('read #define names and refuse an initialiser that is neither', () => {
    const c = cDefaults('#define MODE_X 3\nvolatile const __u32 cfg_a = MODE_X;\n');
    assert.equal(c.get('cfg_a'), 3);
    assert.throws(() => cDefaults('volatile const __u32 cfg_b = NOPE;\n'), /cfg_b: NOPE/);
  });
});
