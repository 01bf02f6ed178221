import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { RESERVED_IDENTITIES, UNKNOWN_IDENTITY } from '@ciliate/contracts';

// The C side cannot import the vocabulary, so its #defines are held to it here: a number changed
// on one side only fails this test instead of mislabelling traffic.
const COMMON_H = fileURLToPath(new URL('../../../../bpf/lib/common.h', import.meta.url));

describe('reserved identities in bpf/lib/common.h', () => {
  it('are the numbers of @ciliate/contracts', () => {
    const defines = new Map<string, number>();
    for (const m of readFileSync(COMMON_H, 'utf8').matchAll(
      /^#define IDENTITY_([A-Z0-9_]+) (\d+)$/gm,
    )) {
      defines.set(m[1]!, Number(m[2]));
    }
    assert.ok(defines.size >= 5, 'the header defines reserved identities');
    const byName = new Map<string, number>(
      Object.entries(RESERVED_IDENTITIES).map(([name, id]) => [
        name.toUpperCase().replaceAll('-', '_'),
        id,
      ]),
    );
    byName.set('UNKNOWN', UNKNOWN_IDENTITY);
    for (const [name, id] of defines) {
      assert.equal(byName.get(name), id, `IDENTITY_${name}`);
    }
  });
});
