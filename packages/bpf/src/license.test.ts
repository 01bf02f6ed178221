// Every BPF object tells the kernel a license that is true of its source: the `license` section
// (which the kernel checks GPL-only helpers against) names what the source's SPDX line says, and
// a source that calls a GPL-only helper has a GPL-compatible one. The section is read from the
// ELF file as libbpf reads it: no privileges are needed.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

import { bpfObjectPath } from './datapath/datapath.js';

const BPF_SRC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bpf');

/** The license string each SPDX expression the tree uses goes with (Cilium's pairing). */
const LICENSE_OF_SPDX: Record<string, string> = {
  '(GPL-2.0-only OR BSD-2-Clause)': 'Dual BSD/GPL',
  'GPL-2.0-only': 'GPL',
};

/** The strings the kernel's license_is_gpl_compatible() accepts. */
const GPL_COMPATIBLE = new Set([
  'GPL',
  'GPL v2',
  'GPL and additional rights',
  'Dual BSD/GPL',
  'Dual MIT/GPL',
  'Dual MPL/GPL',
]);

/** GPL-only helpers (gpl_only in the kernel's proto) that a source here might call. */
const GPL_ONLY_HELPERS = ['bpf_fib_lookup', 'bpf_trace_printk', 'bpf_perf_event_output'];

/** The NUL-terminated string in an ELF64 little-endian object's `license` section. */
function licenseSection(path: string): string | undefined {
  const elf = readFileSync(path);
  assert.equal(elf.toString('latin1', 0, 4), '\x7fELF', `${path} is not an ELF file`);
  assert.equal(elf[4], 2, `${path}: not ELF64`);
  assert.equal(elf[5], 1, `${path}: not little-endian`);
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  const header = (i: number) => {
    const at = shoff + i * shentsize;
    return {
      name: elf.readUInt32LE(at),
      offset: Number(elf.readBigUInt64LE(at + 0x18)),
      size: Number(elf.readBigUInt64LE(at + 0x20)),
    };
  };
  const names = header(shstrndx);
  const cstr = (buf: Buffer, from: number) => buf.toString('latin1', from, buf.indexOf(0, from));
  for (let i = 0; i < shnum; i++) {
    const h = header(i);
    if (cstr(elf, names.offset + h.name) === 'license') {
      return cstr(elf.subarray(h.offset, h.offset + h.size), 0);
    }
  }
  return undefined;
}

function spdx(file: string): string | undefined {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  return /SPDX-License-Identifier:\s*(.+?)\s*(?:\*\/)?$/.exec(first)?.[1];
}

/** The source and every header of the tree it includes, transitively (quoted includes are the
 * tree's own: relative to the including file, else to bpf/). */
function withIncludes(file: string, seen = new Set<string>()): string[] {
  if (seen.has(file)) return [...seen];
  seen.add(file);
  for (const m of readFileSync(file, 'utf8').matchAll(/^#include\s+"([^"]+)"/gm)) {
    const near = join(dirname(file), m[1]!);
    withIncludes(existsSync(near) ? near : join(BPF_SRC, m[1]!), seen);
  }
  return [...seen];
}

const SOURCES = ['', 'tests'].flatMap((sub) =>
  readdirSync(join(BPF_SRC, sub))
    .filter((f) => f.endsWith('.c'))
    .map((f) => join(sub, f.slice(0, -2))),
);

describe('BPF objects declare the license of their source', () => {
  it('finds the sources', () => {
    assert.ok(
      SOURCES.includes('bpf_lxc') && SOURCES.includes(join('tests', 'reject')),
      SOURCES.join(),
    );
  });

  for (const name of SOURCES) {
    it(`${name}: license section, SPDX line and helpers agree`, () => {
      const files = withIncludes(join(BPF_SRC, `${name}.c`));
      const own = spdx(files[0]!);
      assert.ok(own, `${name}.c has no SPDX-License-Identifier on its first line`);
      for (const f of files) assert.equal(spdx(f), own, `${f} is licensed as ${name}.c is`);
      const want = LICENSE_OF_SPDX[own];
      assert.ok(want, `${name}.c: no license string known for SPDX "${own}"`);

      assert.equal(
        licenseSection(bpfObjectPath(name)),
        want,
        `${name}.o's license section for SPDX ${own}`,
      );

      const text = files.map((f) => readFileSync(f, 'utf8')).join('\n');
      const gplOnly = GPL_ONLY_HELPERS.filter((h) => new RegExp(`\\b${h}\\s*\\(`).test(text));
      if (gplOnly.length > 0) {
        assert.ok(
          GPL_COMPATIBLE.has(want),
          `${name} calls ${gplOnly.join(', ')}: needs a GPL-compatible license, has "${want}"`,
        );
      }
    });
  }
});
