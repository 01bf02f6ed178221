// Maps by file descriptor: raw Buffer operations, and typed views that encode keys and values
// with codecs. A map belongs either to a loaded object (closed with it) or was opened from a
// pin (closed by its own close()).
import { decode, encode, type Codec } from './codec.js';
import { BpfError, ErrorCodes } from './errors.js';
import { native } from './native.js';

export const MapType = {
  HASH: 1,
  ARRAY: 2,
  PROG_ARRAY: 3,
  PERF_EVENT_ARRAY: 4,
  PERCPU_HASH: 5,
  PERCPU_ARRAY: 6,
  LRU_HASH: 9,
  LRU_PERCPU_HASH: 10,
  LPM_TRIE: 11,
  ARRAY_OF_MAPS: 12,
  HASH_OF_MAPS: 13,
  RINGBUF: 27,
} as const;

/** Flags of map updates (BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK). */
export const UpdateFlags = { ANY: 0, NOEXIST: 1, EXIST: 2, LOCK: 4 } as const;

const PERCPU_TYPES: ReadonlySet<number> = new Set([
  MapType.PERCPU_HASH,
  MapType.PERCPU_ARRAY,
  MapType.LRU_PERCPU_HASH,
]);

export interface MapDescription {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export interface BatchOptions {
  /** Entries per syscall (default 256). */
  batchSize?: number;
}

let cpus: number | undefined;
/** Possible CPUs: the number of slots in every per-CPU value. */
export function possibleCpus(): number {
  cpus ??= native().possibleCpus();
  return cpus;
}

export class BpfMap implements MapDescription {
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  /** Bytes of one value as the syscalls see it: one 8-byte aligned slot per CPU for per-CPU maps. */
  readonly valueBufferSize: number;
  private fdValue: number;
  private readonly owned: boolean;

  constructor(desc: MapDescription, fd: number, owned: boolean) {
    this.name = desc.name;
    this.type = desc.type;
    this.keySize = desc.keySize;
    this.valueSize = desc.valueSize;
    this.maxEntries = desc.maxEntries;
    this.flags = desc.flags;
    this.fdValue = fd;
    this.owned = owned;
    this.valueBufferSize = this.perCpu
      ? Math.ceil(desc.valueSize / 8) * 8 * possibleCpus()
      : desc.valueSize;
  }

  /** Opens a map pinned at `path` (for tools and restarts that do not load an object). */
  static openPinned(path: string): BpfMap {
    const n = native();
    const fd = n.objGet(path);
    try {
      return new BpfMap(n.mapInfo(fd), fd, true);
    } catch (err) {
      n.closeFd(fd);
      throw err;
    }
  }

  get fd(): number {
    if (this.fdValue < 0) {
      throw new BpfError(`map ${this.name} is closed`, { code: ErrorCodes.CLOSED });
    }
    return this.fdValue;
  }

  get perCpu(): boolean {
    return PERCPU_TYPES.has(this.type);
  }

  /** Kernel id of the map (stable while it exists, shared by every fd and pin). */
  id(): number {
    return native().mapInfo(this.fd).id;
  }

  pin(path: string): void {
    native().objPin(this.fd, path);
  }

  private checkKey(key: Buffer): void {
    if (key.length !== this.keySize) {
      throw new BpfError(
        `${this.name}: key is ${key.length} bytes, the map's keys are ${this.keySize}`,
        {
          code: ErrorCodes.INVALID_ARG,
        },
      );
    }
  }

  private checkValue(value: Buffer): void {
    if (value.length !== this.valueBufferSize) {
      throw new BpfError(
        `${this.name}: value is ${value.length} bytes, the map's values are ${this.valueBufferSize}`,
        { code: ErrorCodes.INVALID_ARG },
      );
    }
  }

  lookup(key: Buffer): Buffer | undefined {
    this.checkKey(key);
    return native().mapLookup(this.fd, key, this.valueBufferSize) ?? undefined;
  }

  lookupAndDelete(key: Buffer): Buffer | undefined {
    this.checkKey(key);
    return native().mapLookupAndDelete(this.fd, key, this.valueBufferSize) ?? undefined;
  }

  update(key: Buffer, value: Buffer, flags: number = UpdateFlags.ANY): void {
    this.checkKey(key);
    this.checkValue(value);
    native().mapUpdate(this.fd, key, value, flags);
  }

  /** Returns whether an entry was there. */
  delete(key: Buffer): boolean {
    this.checkKey(key);
    return native().mapDelete(this.fd, key);
  }

  nextKey(key?: Buffer): Buffer | undefined {
    if (key) this.checkKey(key);
    return native().mapGetNextKey(this.fd, key ?? null, this.keySize) ?? undefined;
  }

  /** Keys by get_next_key. Entries deleted meanwhile may restart a hash walk; that is the kernel's. */
  *keys(): Generator<Buffer> {
    let key = this.nextKey();
    while (key) {
      yield key;
      key = this.nextKey(key);
    }
  }

  /**
   * All entries, in batches of `batchSize` per syscall when the map type supports batch
   * lookup, else key by key.
   */
  *entries(opts: BatchOptions = {}): Generator<[Buffer, Buffer]> {
    if (this.supportsBatch()) {
      for (const batch of this.lookupBatches(opts)) yield* batch;
      return;
    }
    for (const key of this.keys()) {
      const value = this.lookup(key);
      if (value) yield [key, value];
    }
  }

  private supportsBatch(): boolean {
    return this.type !== MapType.LPM_TRIE && this.type !== MapType.RINGBUF;
  }

  /** BPF_MAP_LOOKUP_BATCH (or LOOKUP_AND_DELETE_BATCH with `delete`), one array per syscall. */
  *lookupBatches(opts: BatchOptions & { delete?: boolean } = {}): Generator<[Buffer, Buffer][]> {
    if (!this.supportsBatch()) {
      throw new BpfError(`${this.name}: the map type does not support batch operations`, {
        code: ErrorCodes.NOT_SUPPORTED,
      });
    }
    let inBatch: Buffer | null = null;
    let count = opts.batchSize ?? 256;
    for (;;) {
      let r;
      try {
        r = native().mapLookupBatch(
          this.fd,
          inBatch,
          this.keySize,
          this.valueBufferSize,
          count,
          opts.delete === true,
          0,
        );
      } catch (err) {
        // A hash bucket holds more entries than the batch: retry the same position, larger.
        if (err instanceof BpfError && err.code === 'ENOSPC' && count < this.maxEntries) {
          count = Math.min(count * 2, this.maxEntries);
          continue;
        }
        throw err;
      }
      const out: [Buffer, Buffer][] = [];
      for (let i = 0; i < r.count; i++) {
        out.push([
          r.keys.subarray(i * this.keySize, (i + 1) * this.keySize),
          r.values.subarray(i * this.valueBufferSize, (i + 1) * this.valueBufferSize),
        ]);
      }
      if (out.length > 0) yield out;
      if (r.done) return;
      inBatch = r.nextBatch;
    }
  }

  /** BPF_MAP_UPDATE_BATCH; returns how many entries were written. */
  updateBatch(
    entries: readonly (readonly [Buffer, Buffer])[],
    flags: number = UpdateFlags.ANY,
  ): number {
    if (entries.length === 0) return 0;
    const keys = Buffer.alloc(entries.length * this.keySize);
    const values = Buffer.alloc(entries.length * this.valueBufferSize);
    entries.forEach(([k, v], i) => {
      this.checkKey(k);
      this.checkValue(v);
      k.copy(keys, i * this.keySize);
      v.copy(values, i * this.valueBufferSize);
    });
    return native().mapUpdateBatch(this.fd, keys, values, entries.length, flags);
  }

  /** BPF_MAP_DELETE_BATCH; fails with ENOENT (and deletes the ones before) if a key is missing. */
  deleteBatch(keys: readonly Buffer[]): number {
    if (keys.length === 0) return 0;
    const buf = Buffer.alloc(keys.length * this.keySize);
    keys.forEach((k, i) => {
      this.checkKey(k);
      k.copy(buf, i * this.keySize);
    });
    return native().mapDeleteBatch(this.fd, buf, keys.length);
  }

  /** Removes every entry (LRU and hash maps: by batch when possible). */
  clear(): number {
    let n = 0;
    if (this.type === MapType.ARRAY || this.type === MapType.PERCPU_ARRAY) {
      throw new BpfError(`${this.name}: array entries cannot be deleted`, {
        code: ErrorCodes.NOT_SUPPORTED,
      });
    }
    for (;;) {
      const keys = [...take(this.keys(), 1024)];
      if (keys.length === 0) return n;
      for (const k of keys) if (this.delete(k)) n++;
    }
  }

  typed<K, V>(key: Codec<K>, value: Codec<V>): TypedMap<K, V> {
    return new TypedMap(this, key, value);
  }

  perCpuTyped<K, V>(key: Codec<K>, value: Codec<V>): PerCpuMap<K, V> {
    return new PerCpuMap(this, key, value);
  }

  /** Only maps opened from a pin own their descriptor; an object's maps close with it. */
  close(): void {
    if (this.fdValue < 0) return;
    if (this.owned) native().closeFd(this.fdValue);
    this.fdValue = -1;
  }

  /** @internal called when the owning object closes. */
  invalidate(): void {
    this.fdValue = -1;
  }
}

function* take<T>(it: Iterable<T>, n: number): Generator<T> {
  if (n <= 0) return;
  let i = 0;
  for (const v of it) {
    yield v;
    if (++i >= n) return;
  }
}

function checkCodecs(map: BpfMap, key: Codec<unknown>, valueSize: number): void {
  if (key.size !== map.keySize || valueSize !== map.valueSize) {
    throw new BpfError(
      `${map.name}: codecs are ${key.size}/${valueSize} bytes, the map's key/value are ${map.keySize}/${map.valueSize}`,
      { code: ErrorCodes.INVALID_ARG },
    );
  }
}

/** A map seen through codecs: keys and values are plain objects. */
export class TypedMap<K, V> {
  constructor(
    readonly map: BpfMap,
    readonly keyCodec: Codec<K>,
    readonly valueCodec: Codec<V>,
  ) {
    checkCodecs(map, keyCodec, valueCodec.size);
    if (map.perCpu) {
      throw new BpfError(`${map.name} is a per-CPU map: use perCpuTyped()`, {
        code: ErrorCodes.INVALID_ARG,
      });
    }
  }

  get name(): string {
    return this.map.name;
  }

  encodeKey(key: K): Buffer {
    return encode(this.keyCodec, key, `${this.map.name} key`);
  }

  encodeValue(value: V): Buffer {
    return encode(this.valueCodec, value, `${this.map.name} value`);
  }

  get(key: K): V | undefined {
    const v = this.map.lookup(this.encodeKey(key));
    return v ? decode(this.valueCodec, v) : undefined;
  }

  set(key: K, value: V, flags: number = UpdateFlags.ANY): void {
    this.map.update(this.encodeKey(key), this.encodeValue(value), flags);
  }

  delete(key: K): boolean {
    return this.map.delete(this.encodeKey(key));
  }

  *keys(): Generator<K> {
    for (const k of this.map.keys()) yield decode(this.keyCodec, k);
  }

  *entries(opts: BatchOptions = {}): Generator<[K, V]> {
    for (const [k, v] of this.map.entries(opts)) {
      yield [decode(this.keyCodec, k), decode(this.valueCodec, v)];
    }
  }

  setMany(entries: readonly (readonly [K, V])[], flags: number = UpdateFlags.ANY): number {
    return this.map.updateBatch(
      entries.map(([k, v]) => [this.encodeKey(k), this.encodeValue(v)] as const),
      flags,
    );
  }

  deleteMany(keys: readonly K[]): number {
    return this.map.deleteBatch(keys.map((k) => this.encodeKey(k)));
  }
}

/** A per-CPU map: each value is one element per possible CPU. */
export class PerCpuMap<K, V> {
  private readonly slot: number;

  constructor(
    readonly map: BpfMap,
    readonly keyCodec: Codec<K>,
    readonly valueCodec: Codec<V>,
  ) {
    checkCodecs(map, keyCodec, valueCodec.size);
    if (!map.perCpu) {
      throw new BpfError(`${map.name} is not a per-CPU map: use typed()`, {
        code: ErrorCodes.INVALID_ARG,
      });
    }
    this.slot = Math.ceil(valueCodec.size / 8) * 8;
  }

  get name(): string {
    return this.map.name;
  }

  private decodeAll(buf: Buffer): V[] {
    const out: V[] = [];
    for (let off = 0; off + this.valueCodec.size <= buf.length; off += this.slot) {
      out.push(decode(this.valueCodec, buf, off));
    }
    return out;
  }

  get(key: K): V[] | undefined {
    const v = this.map.lookup(encode(this.keyCodec, key, `${this.map.name} key`));
    return v ? this.decodeAll(v) : undefined;
  }

  /** Writes the same value on every CPU (or one value per CPU). */
  set(key: K, value: V | readonly V[], flags: number = UpdateFlags.ANY): void {
    const n = possibleCpus();
    const values = Array.isArray(value) ? (value as readonly V[]) : Array<V>(n).fill(value as V);
    if (values.length !== n) {
      throw new BpfError(`${this.map.name}: ${values.length} values for ${n} CPUs`, {
        code: ErrorCodes.INVALID_ARG,
      });
    }
    const buf = Buffer.alloc(this.map.valueBufferSize);
    values.forEach((v, i) =>
      this.valueCodec.write(v, buf, i * this.slot, `${this.map.name} value[${i}]`),
    );
    this.map.update(encode(this.keyCodec, key, `${this.map.name} key`), buf, flags);
  }

  delete(key: K): boolean {
    return this.map.delete(encode(this.keyCodec, key, `${this.map.name} key`));
  }

  *entries(opts: BatchOptions = {}): Generator<[K, V[]]> {
    for (const [k, v] of this.map.entries(opts)) {
      yield [decode(this.keyCodec, k), this.decodeAll(v)];
    }
  }
}
