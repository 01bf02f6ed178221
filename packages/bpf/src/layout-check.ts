// Compares a codec's layout with the C layout the compiler recorded in an object's BTF: size,
// and for structs every member's name, offset, size and kind, recursively. An empty result
// means the TypeScript view reads and writes exactly the bytes the C programs do.
import type { Layout } from './codec.js';
import type { BtfComposite, BtfType } from './native.js';

export interface LayoutMismatch {
  /** Where: `endpoint_info.node_mac`. */
  path: string;
  message: string;
}

export function compareLayout(
  layout: Layout,
  btf: BtfComposite | BtfType | null | undefined,
): LayoutMismatch[] {
  const out: LayoutMismatch[] = [];
  const root = layout.kind === 'struct' || layout.kind === 'union' ? layout.cType : 'value';
  walk(root, layout, btf ?? null, out);
  return out;
}

function walk(path: string, layout: Layout, btf: BtfType | null, out: LayoutMismatch[]): void {
  const fail = (message: string) => out.push({ path, message });
  if (!btf) {
    fail('not found in BTF');
    return;
  }
  if (btf.size !== layout.size) {
    fail(`size: TypeScript ${layout.size} bytes, C ${btf.size} bytes`);
  }
  switch (layout.kind) {
    case 'int':
      if (btf.kind !== 'int' && btf.kind !== 'enum')
        fail(`kind: TypeScript integer, C ${btf.kind}`);
      return;
    case 'pad':
      return;
    case 'bytes':
      if (btf.kind !== 'array' || btf.length !== layout.size || btf.element?.size !== 1) {
        fail(
          `kind: TypeScript ${layout.size}-byte array, C ${btf.kind}${btf.length !== undefined ? `[${btf.length}]` : ''}`,
        );
      }
      return;
    case 'array':
      if (btf.kind !== 'array' || btf.length !== layout.length) {
        fail(
          `kind: TypeScript array[${layout.length}], C ${btf.kind}${btf.length !== undefined ? `[${btf.length}]` : ''}`,
        );
        return;
      }
      walk(`${path}[]`, layout.element, btf.element ?? null, out);
      return;
    case 'union':
      if (btf.kind !== 'union' || btf.name !== layout.cType) {
        fail(`type: TypeScript union ${layout.cType}, C ${btf.kind} ${btf.name}`);
      }
      return;
    case 'struct': {
      if (btf.kind !== 'struct' || btf.name !== layout.cType) {
        fail(`type: TypeScript struct ${layout.cType}, C ${btf.kind} ${btf.name}`);
        return;
      }
      const members = btf.members ?? [];
      const names = members.map((m) => m.name);
      for (const f of layout.fields) {
        const m = members.find((x) => x.name === f.cName);
        const fp = `${path}.${f.cName}`;
        if (!m) {
          out.push({ path: fp, message: `missing in C (C members: ${names.join(', ')})` });
          continue;
        }
        if (m.offset !== f.offset) {
          out.push({ path: fp, message: `offset: TypeScript ${f.offset}, C ${m.offset}` });
        }
        if (m.bitSize !== 0) out.push({ path: fp, message: 'C bitfield: not representable' });
        walk(fp, f.layout, m.type, out);
      }
      for (const m of members) {
        if (!layout.fields.some((f) => f.cName === m.name)) {
          out.push({
            path: `${path}.${m.name || '(anonymous)'}`,
            message: 'missing in TypeScript',
          });
        }
      }
      return;
    }
  }
}
