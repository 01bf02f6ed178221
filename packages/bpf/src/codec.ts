// Byte codecs for map keys, values and events. A codec knows its C layout (size, alignment,
// field offsets computed with C's natural alignment rules), so the same definition encodes a
// key and is compared against the compiled object's BTF by the layout test: a field added on
// one side only fails the build's tests, not a production node.
import { addressFromBytes, addressToBytes, formatAddress, parseIp } from '@ciliate/netaddr';

import { invalidValue } from './errors.js';

export type Layout =
  | { kind: 'int'; size: number; align: number; signed: boolean; bigEndian: boolean }
  | { kind: 'bytes'; size: number; align: 1 }
  | { kind: 'array'; size: number; align: number; length: number; element: Layout }
  | { kind: 'struct'; cType: string; size: number; align: number; fields: FieldLayout[] }
  | { kind: 'union'; cType: string; size: number; align: number }
  | { kind: 'pad'; size: number; align: 1 };

export interface FieldLayout {
  /** The JavaScript property name; undefined for padding. */
  name: string | undefined;
  /** The C member name. */
  cName: string;
  offset: number;
  layout: Layout;
}

export interface Codec<T> {
  readonly layout: Layout;
  readonly size: number;
  /** Writes `value` at `offset`; `path` names the value in error messages. */
  write(value: T, buf: Buffer, offset: number, path: string): void;
  read(buf: Buffer, offset: number): T;
}

export type CodecValue<C> = C extends Codec<infer T> ? T : never;

export function encode<T>(codec: Codec<T>, value: T, path = 'value'): Buffer {
  const buf = Buffer.alloc(codec.size);
  codec.write(value, buf, 0, path);
  return buf;
}

export function decode<T>(codec: Codec<T>, buf: Buffer, offset = 0): T {
  if (buf.length - offset < codec.size) {
    throw invalidValue('buffer', buf.length, `needs ${codec.size} bytes from offset ${offset}`);
  }
  return codec.read(buf, offset);
}

// ---- integers ------------------------------------------------------------------------------

function intCodec(size: 1 | 2 | 4, signed: boolean, bigEndian: boolean): Codec<number> {
  const min = signed ? -(2 ** (size * 8 - 1)) : 0;
  const max = signed ? 2 ** (size * 8 - 1) - 1 : 2 ** (size * 8) - 1;
  const reason = `must be an integer ${min}..${max}`;
  return {
    layout: { kind: 'int', size, align: size, signed, bigEndian },
    size,
    write(value, buf, offset, path) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
        throw invalidValue(path, value, reason);
      }
      if (signed) buf.writeIntLE(value, offset, size);
      else if (bigEndian) buf.writeUIntBE(value, offset, size);
      else buf.writeUIntLE(value, offset, size);
    },
    read(buf, offset) {
      if (signed) return buf.readIntLE(offset, size);
      return bigEndian ? buf.readUIntBE(offset, size) : buf.readUIntLE(offset, size);
    },
  };
}

export const u8 = intCodec(1, false, false);
export const i8 = intCodec(1, true, false);
export const u16 = intCodec(2, false, false);
export const u32 = intCodec(4, false, false);
export const i32 = intCodec(4, true, false);
/** A __be16 in C (ports): a host number in JavaScript, network order in memory. */
export const be16 = intCodec(2, false, true);
/** A __be32 in C: a host number in JavaScript, network order in memory. */
export const be32 = intCodec(4, false, true);

export const u64: Codec<bigint> = {
  layout: { kind: 'int', size: 8, align: 8, signed: false, bigEndian: false },
  size: 8,
  write(value, buf, offset, path) {
    if (typeof value !== 'bigint' || value < 0n || value > 0xffff_ffff_ffff_ffffn) {
      throw invalidValue(path, value, 'must be a bigint 0..2^64-1');
    }
    buf.writeBigUInt64LE(value, offset);
  },
  read: (buf, offset) => buf.readBigUInt64LE(offset),
};

// ---- addresses -----------------------------------------------------------------------------

/** A __be32 IPv4 address as dotted quad. */
export const ipv4: Codec<string> = {
  layout: { kind: 'int', size: 4, align: 4, signed: false, bigEndian: true },
  size: 4,
  write(value, buf, offset, path) {
    ipv4Bytes(value, path).copy(buf, offset);
  },
  read: (buf, offset) => `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`,
};

export function ipv4Bytes(value: string, path = 'address'): Buffer {
  const r = parseIp(value);
  if (!r.ok || r.value.family !== 4) throw invalidValue(path, value, 'must be an IPv4 address');
  return addressToBytes(4, r.value.value, Buffer.alloc(4));
}

/** 16 bytes for IPv4 (first four bytes) or IPv6, with the family byte Ciliate keys use. */
export function ipBytes(value: string, path = 'address'): { family: 1 | 2; bytes: Buffer } {
  const r = parseIp(value);
  if (!r.ok) throw invalidValue(path, value, `must be an IPv4 or IPv6 address: ${r.reason}`);
  const { family, value: v } = r.value;
  return { family: family === 4 ? 1 : 2, bytes: addressToBytes(family, v, Buffer.alloc(16)) };
}

/** The canonical text of the address in `bytes` (family 1 = IPv4, 2 = IPv6); '' otherwise. */
export function ipFromBytes(bytes: Buffer, family: number): string {
  if (family !== 1 && family !== 2) return '';
  const f = family === 1 ? 4 : 6;
  return formatAddress(f, addressFromBytes(f, bytes));
}

/** C `union ip_addr` (16 bytes, IPv4 in the first four): the raw bytes. */
export const ipAddrBytes: Codec<Buffer> = {
  layout: { kind: 'union', cType: 'ip_addr', size: 16, align: 4 },
  size: 16,
  write(value, buf, offset, path) {
    if (!Buffer.isBuffer(value) || value.length !== 16) {
      throw invalidValue(path, value, 'must be 16 bytes');
    }
    value.copy(buf, offset);
  },
  read: (buf, offset) => Buffer.from(buf.subarray(offset, offset + 16)),
};

/** A 6-byte MAC address as "aa:bb:cc:dd:ee:ff". */
export const mac: Codec<string> = {
  layout: { kind: 'bytes', size: 6, align: 1 },
  size: 6,
  write(value, buf, offset, path) {
    if (typeof value !== 'string' || !/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(value)) {
      throw invalidValue(path, value, 'must be a MAC address like 02:00:00:00:00:01');
    }
    value.split(/[:-]/).forEach((h, i) => (buf[offset + i] = parseInt(h, 16)));
  },
  read(buf, offset) {
    const parts: string[] = [];
    for (let i = 0; i < 6; i++) parts.push(buf[offset + i]!.toString(16).padStart(2, '0'));
    return parts.join(':');
  },
};

/** A fixed-size byte array (C `__u8 x[n]`); shorter buffers are zero-padded. */
export function bytes(size: number): Codec<Buffer> {
  return {
    layout: { kind: 'bytes', size, align: 1 },
    size,
    write(value, buf, offset, path) {
      if (!Buffer.isBuffer(value) || value.length > size) {
        throw invalidValue(path, value, `must be a Buffer of at most ${size} bytes`);
      }
      buf.fill(0, offset, offset + size);
      value.copy(buf, offset);
    },
    read: (buf, offset) => Buffer.from(buf.subarray(offset, offset + size)),
  };
}

export function array<T>(element: Codec<T>, length: number): Codec<T[]> {
  return {
    layout: {
      kind: 'array',
      size: element.size * length,
      align: element.layout.align,
      length,
      element: element.layout,
    },
    size: element.size * length,
    write(value, buf, offset, path) {
      if (!Array.isArray(value) || value.length !== length) {
        throw invalidValue(path, value, `must be an array of ${length} elements`);
      }
      value.forEach((v, i) => element.write(v, buf, offset + i * element.size, `${path}[${i}]`));
    },
    read(buf, offset) {
      const out: T[] = [];
      for (let i = 0; i < length; i++) out.push(element.read(buf, offset + i * element.size));
      return out;
    },
  };
}

// ---- structs -------------------------------------------------------------------------------

const PAD = Symbol('pad');
export interface PadCodec extends Codec<undefined> {
  readonly [PAD]: true;
}

/** Explicit padding (C `__u8 pad[n]` or `__u16 pad`): written as zero, not in the JS object. */
export function pad(size: number): PadCodec {
  return {
    [PAD]: true,
    layout: { kind: 'pad', size, align: 1 },
    size,
    write(_v, buf, offset) {
      buf.fill(0, offset, offset + size);
    },
    read: () => undefined,
  };
}

function isPad(c: Codec<unknown>): c is PadCodec {
  return (c as Partial<PadCodec>)[PAD] === true;
}

type FieldSpec = Record<string, Codec<unknown>>;

export type StructValue<S extends FieldSpec> = {
  [K in keyof S as S[K] extends PadCodec ? never : K]: CodecValue<S[K]>;
};

export function camelToSnake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

/**
 * A C struct. Fields are laid out in order with natural alignment; JavaScript names are the C
 * member names in camelCase (`endpoint_id` is `endpointId`). Padding fields (`pad()`) keep the
 * C name of their key.
 */
export function struct<S extends FieldSpec>(cType: string, spec: S): Codec<StructValue<S>> {
  const fields: { key: string; codec: Codec<unknown>; offset: number }[] = [];
  let offset = 0;
  let align = 1;
  for (const [key, codec] of Object.entries<Codec<unknown>>(spec)) {
    const a = codec.layout.align;
    offset = Math.ceil(offset / a) * a;
    fields.push({ key, codec, offset });
    offset += codec.size;
    align = Math.max(align, a);
  }
  const size = Math.ceil(offset / align) * align;
  const layout: Layout = {
    kind: 'struct',
    cType,
    size,
    align,
    fields: fields.map((f) => ({
      name: isPad(f.codec) ? undefined : f.key,
      cName: camelToSnake(f.key),
      offset: f.offset,
      layout: f.codec.layout,
    })),
  };
  return {
    layout,
    size,
    write(value, buf, base, path) {
      if (typeof value !== 'object' || value === null) {
        throw invalidValue(path, value, `must be an object (struct ${cType})`);
      }
      // implicit C padding between fields stays zero
      buf.fill(0, base, base + size);
      const v = value as Record<string, unknown>;
      for (const f of fields) {
        if (isPad(f.codec)) continue;
        f.codec.write(v[f.key], buf, base + f.offset, `${path}.${f.key}`);
      }
    },
    read(buf, base) {
      const out: Record<string, unknown> = {};
      for (const f of fields) {
        if (isPad(f.codec)) continue;
        out[f.key] = f.codec.read(buf, base + f.offset);
      }
      return out as StructValue<S>;
    },
  };
}

/**
 * The same bytes seen as a friendlier type: `toView` after decoding, `fromView` before encoding
 * (it may throw an invalidValue error naming `path`).
 */
export function view<R, T>(
  codec: Codec<R>,
  toView: (raw: R) => T,
  fromView: (value: T, path: string) => R,
): Codec<T> {
  return {
    layout: codec.layout,
    size: codec.size,
    write: (value, buf, offset, path) => codec.write(fromView(value, path), buf, offset, path),
    read: (buf, offset) => toView(codec.read(buf, offset)),
  };
}
