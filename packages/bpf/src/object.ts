// BPF objects: open an ELF file compiled by clang, set load-time constants and pin paths,
// load (the verifier runs here), then use its programs and maps.
import { array, decode, encode, pad, struct, u32 } from './codec.js';
import { BpfError, ErrorCodes } from './errors.js';
import { BpfMap } from './map.js';
import {
  native,
  type BtfComposite,
  type NativeConstantDesc,
  type NativeHandle,
  type NativeObjectInfo,
} from './native.js';

export const ProgramType = { SOCKET_FILTER: 1, SCHED_CLS: 3, SCHED_ACT: 4, XDP: 6 } as const;

/**
 * struct __sk_buff (linux/bpf.h), the context of a tc program, up to the fields a test run may
 * set; the rest of its 192 bytes must be zero. The kernel accepts mark, priority,
 * ingress_ifindex, ifindex (an interface of the caller's network namespace; 0 is loopback) and
 * cb[] from a test, and refuses other non-zero fields with EINVAL.
 */
const skbContext = struct('__sk_buff', {
  len: u32,
  pktType: u32,
  mark: u32,
  queueMapping: u32,
  protocol: u32,
  vlanPresent: u32,
  vlanTci: u32,
  vlanProto: u32,
  priority: u32,
  ingressIfindex: u32,
  ifindex: u32,
  tcIndex: u32,
  cb: array(u32, 5),
  rest: pad(192 - 68),
});

/** What a tc test run may set in the program's context. */
export interface SkbContextIn {
  mark?: number;
  priority?: number;
  ingressIfindex?: number;
  ifindex?: number;
  cb?: readonly number[];
}

/** The context after the run, as the program left it. */
export type SkbContextOut = ReturnType<typeof skbContext.read>;

export interface TestRunResult {
  retval: number;
  duration: number;
  /** The packet as the program left it. */
  data: Buffer;
  /** Only when the run was given a context. */
  skb?: SkbContextOut;
}

export type ConstantValue = number | bigint | boolean | Buffer;

export interface OpenOptions {
  /** Directory where maps declared with `pinning = LIBBPF_PIN_BY_NAME` are pinned and reused. */
  pinRoot?: string;
  /** Object name (default: the file name). */
  name?: string;
  /** Load-time constants (`volatile const` globals) by name. */
  constants?: Record<string, ConstantValue>;
  /** Per-map pin paths; null unpins a map declared pinned. Reuses a map already pinned there. */
  pinPaths?: Record<string, string | null>;
  /** Per-map capacity overrides. */
  maxEntries?: Record<string, number>;
  /** Per-map: use this already open map instead of creating one. */
  reuseMaps?: Record<string, BpfMap>;
}

export class BpfProgram {
  constructor(
    readonly name: string,
    readonly section: string,
    readonly type: number,
    private readonly object: BpfObject,
    private readonly fdValue: number,
  ) {}

  get fd(): number {
    this.object.assertOpen();
    if (this.fdValue < 0) {
      throw new BpfError(`program ${this.name} is not loaded`, { code: ErrorCodes.INVALID_ARG });
    }
    return this.fdValue;
  }

  info(): { id: number; name: string; type: number; tag: string } {
    return native().progInfo(this.fd);
  }

  /**
   * BPF_PROG_TEST_RUN: runs the program on `data` (a packet for tc and XDP programs). `skb`
   * gives a tc program its context (mark, ifindex, cb, ...) and returns it as the program left
   * it.
   */
  testRun(data: Buffer, repeat = 1, skb?: SkbContextIn): TestRunResult {
    if (skb === undefined) return native().progTestRun(this.fd, data, repeat);
    const cb = skb.cb ?? [];
    if (cb.length > 5) {
      throw new BpfError(`skb.cb: Invalid value: ${cb.length} words: at most 5`, {
        code: ErrorCodes.INVALID_VALUE,
      });
    }
    const ctxIn = encode(
      skbContext,
      {
        len: 0,
        pktType: 0,
        mark: skb.mark ?? 0,
        queueMapping: 0,
        protocol: 0,
        vlanPresent: 0,
        vlanTci: 0,
        vlanProto: 0,
        priority: skb.priority ?? 0,
        ingressIfindex: skb.ingressIfindex ?? 0,
        ifindex: skb.ifindex ?? 0,
        tcIndex: 0,
        cb: [0, 1, 2, 3, 4].map((i) => cb[i] ?? 0),
      },
      'skb',
    );
    const r = native().progTestRun(this.fd, data, repeat, ctxIn);
    return {
      retval: r.retval,
      duration: r.duration,
      data: r.data,
      skb: r.ctx ? decode(skbContext, r.ctx) : undefined,
    };
  }
}

function encodeConstant(name: string, value: ConstantValue, size: number): Buffer {
  if (Buffer.isBuffer(value)) return value;
  const buf = Buffer.alloc(size);
  const big =
    typeof value === 'bigint' ? value : BigInt(typeof value === 'boolean' ? Number(value) : value);
  if (typeof value === 'number' && !Number.isInteger(value)) {
    throw new BpfError(`constant ${name}: Invalid value: ${value}: must be an integer`, {
      code: ErrorCodes.INVALID_VALUE,
    });
  }
  const bits = BigInt(size * 8);
  const min = -(1n << (bits - 1n));
  const max = (1n << bits) - 1n;
  if (big < min || big > max) {
    throw new BpfError(`constant ${name}: Invalid value: ${big}: does not fit in ${size} bytes`, {
      code: ErrorCodes.INVALID_VALUE,
    });
  }
  const u = big < 0n ? (1n << bits) + big : big;
  for (let i = 0; i < size; i++) buf[i] = Number((u >> BigInt(8 * i)) & 0xffn);
  return buf;
}

export class BpfObject {
  private handle: NativeHandle | undefined;
  private info: NativeObjectInfo;
  private mapCache = new Map<string, BpfMap>();
  private failed = false;

  private constructor(
    handle: NativeHandle,
    readonly path: string,
  ) {
    this.handle = handle;
    this.info = native().objectInfo(handle);
  }

  /** Opens (parses) an object; apply constants and pin paths, then load(). */
  static open(path: string, opts: OpenOptions = {}): BpfObject {
    const n = native();
    const h = n.openObject(path, { pinRoot: opts.pinRoot, name: opts.name });
    const obj = new BpfObject(h, path);
    try {
      for (const [k, v] of Object.entries(opts.constants ?? {})) obj.setConstant(k, v);
      for (const [k, v] of Object.entries(opts.pinPaths ?? {})) obj.setPinPath(k, v);
      for (const [k, v] of Object.entries(opts.maxEntries ?? {})) obj.setMaxEntries(k, v);
      for (const [k, v] of Object.entries(opts.reuseMaps ?? {})) obj.reuseMap(k, v);
    } catch (err) {
      obj.close();
      throw err;
    }
    return obj;
  }

  /** open() and load() in one step; the object is closed again if loading fails. */
  static load(path: string, opts: OpenOptions = {}): BpfObject {
    const obj = BpfObject.open(path, opts);
    try {
      obj.load();
    } catch (err) {
      obj.close();
      throw err;
    }
    return obj;
  }

  get name(): string {
    return this.info.name;
  }

  get loaded(): boolean {
    return this.info.loaded;
  }

  /** @internal */
  assertOpen(): NativeHandle {
    if (!this.handle) {
      throw new BpfError(`object ${this.path} is closed`, { code: ErrorCodes.CLOSED });
    }
    return this.handle;
  }

  private assertNotLoaded(what: string): NativeHandle {
    const h = this.assertOpen();
    if (this.info.loaded || this.failed) {
      throw new BpfError(`${what}: object ${this.name} is already loaded`, {
        code: ErrorCodes.INVALID_ARG,
      });
    }
    return h;
  }

  constants(): NativeConstantDesc[] {
    return this.info.constants;
  }

  /** Numbers are written little-endian in the constant's size; Buffers as they are. */
  setConstant(name: string, value: ConstantValue): void {
    const h = this.assertNotLoaded(`constant ${name}`);
    const desc = this.info.constants.find((c) => c.name === name);
    if (!desc) {
      throw new BpfError(
        `constant ${name}: not a load-time constant of ${this.name} (known: ${this.info.constants.map((c) => c.name).join(', ')})`,
        { code: ErrorCodes.INVALID_ARG },
      );
    }
    native().setConstant(h, name, encodeConstant(name, value, desc.size));
  }

  setPinPath(map: string, path: string | null): void {
    native().setMapPinPath(this.assertNotLoaded(`pin path of ${map}`), map, path);
    this.info = native().objectInfo(this.assertOpen());
  }

  setMaxEntries(map: string, n: number): void {
    native().setMapMaxEntries(this.assertNotLoaded(`max entries of ${map}`), map, n);
    this.info = native().objectInfo(this.assertOpen());
  }

  reuseMap(map: string, existing: BpfMap): void {
    native().reuseMapFd(this.assertNotLoaded(`reuse of ${map}`), map, existing.fd);
  }

  load(): void {
    const h = this.assertNotLoaded('load');
    try {
      native().loadObject(h);
    } catch (err) {
      // libbpf leaves a failed object unusable; only close() is left.
      this.failed = true;
      throw err;
    }
    this.info = native().objectInfo(h);
  }

  map(name: string): BpfMap {
    const cached = this.mapCache.get(name);
    if (cached) return cached;
    this.assertOpen();
    const d = this.info.maps.find((m) => m.name === name);
    if (!d) {
      throw new BpfError(`map ${name} is not in object ${this.name}`, {
        code: ErrorCodes.INVALID_ARG,
      });
    }
    if (!this.info.loaded) {
      throw new BpfError(`map ${name}: object ${this.name} is not loaded`, {
        code: ErrorCodes.INVALID_ARG,
      });
    }
    const m = new BpfMap(d, d.fd, false);
    this.mapCache.set(name, m);
    return m;
  }

  /** Descriptions of every map (also internal ones such as .rodata). */
  maps(): NativeObjectInfo['maps'] {
    return this.info.maps;
  }

  program(name: string): BpfProgram {
    this.assertOpen();
    const p = this.info.programs.find((x) => x.name === name);
    if (!p) {
      throw new BpfError(
        `program ${name} is not in object ${this.name} (has: ${this.info.programs.map((x) => x.name).join(', ')})`,
        { code: ErrorCodes.INVALID_ARG },
      );
    }
    return new BpfProgram(p.name, p.section, p.type, this, p.fd);
  }

  programs(): BpfProgram[] {
    return this.info.programs.map((p) => this.program(p.name));
  }

  /** The C layout of a struct or union as recorded in the object's BTF. */
  btfStruct(name: string): BtfComposite | undefined {
    return native().btfStruct(this.assertOpen(), name) ?? undefined;
  }

  /**
   * Closes the object: its file descriptors go, pinned maps and attached programs stay (a tc or
   * XDP attachment holds its own reference), which is how forwarding survives a restart.
   */
  close(): void {
    if (!this.handle) return;
    for (const m of this.mapCache.values()) m.invalidate();
    this.mapCache.clear();
    native().closeObject(this.handle);
    this.handle = undefined;
  }
}
