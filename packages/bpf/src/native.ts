// Loads the compiled addon once, on first use, so that importing this package (for its
// constants and codecs) works on machines where the addon is not built.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import { BpfError, ErrorCodes } from './errors.js';

export interface NativeMapDesc {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  internal: boolean;
  pinPath: string | null;
  pinned: boolean;
  fd: number;
}

export interface NativeProgramDesc {
  name: string;
  section: string;
  type: number;
  fd: number;
}

export interface NativeConstantDesc {
  name: string;
  offset: number;
  size: number;
}

export interface NativeObjectInfo {
  name: string;
  loaded: boolean;
  maps: NativeMapDesc[];
  programs: NativeProgramDesc[];
  constants: NativeConstantDesc[];
}

export interface BtfType {
  kind: 'int' | 'ptr' | 'array' | 'struct' | 'union' | 'enum' | 'other';
  name: string;
  size: number;
  length?: number;
  element?: BtfType;
  members?: BtfMember[];
}

export interface BtfMember {
  name: string;
  offset: number;
  bitOffset: number;
  bitSize: number;
  type: BtfType | null;
}

export interface BtfComposite extends BtfType {
  kind: 'struct' | 'union';
  members: BtfMember[];
}

export interface NativeTcArgs {
  ifindex: number;
  attachPoint: 'ingress' | 'egress';
  handle?: number;
  priority?: number;
  progFd?: number;
  replace?: boolean;
  netns?: string | null;
}

export type NativeHandle = { readonly __nativeHandle: unique symbol };

export interface NativeBinding {
  setErrorClass(ctor: unknown): void;
  openObject(path: string, opts: { pinRoot?: string; name?: string }): NativeHandle;
  closeObject(h: NativeHandle): void;
  objectInfo(h: NativeHandle): NativeObjectInfo;
  setConstant(h: NativeHandle, name: string, value: Buffer): void;
  setMapPinPath(h: NativeHandle, map: string, path: string | null): void;
  setMapMaxEntries(h: NativeHandle, map: string, n: number): void;
  reuseMapFd(h: NativeHandle, map: string, fd: number): void;
  loadObject(h: NativeHandle): void;
  btfStruct(h: NativeHandle, name: string): BtfComposite | null;

  mapLookup(fd: number, key: Buffer, valueSize: number, flags?: number): Buffer | null;
  mapLookupAndDelete(fd: number, key: Buffer, valueSize: number): Buffer | null;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags?: number): void;
  mapDelete(fd: number, key: Buffer): boolean;
  mapGetNextKey(fd: number, key: Buffer | null, keySize: number): Buffer | null;
  mapLookupBatch(
    fd: number,
    inBatch: Buffer | null,
    keySize: number,
    valueSize: number,
    count: number,
    del: boolean,
    elemFlags: number,
  ): { keys: Buffer; values: Buffer; count: number; nextBatch: Buffer; done: boolean };
  mapUpdateBatch(
    fd: number,
    keys: Buffer,
    values: Buffer,
    count: number,
    elemFlags: number,
  ): number;
  mapDeleteBatch(fd: number, keys: Buffer, count: number): number;
  mapInfo(fd: number): {
    id: number;
    name: string;
    type: number;
    keySize: number;
    valueSize: number;
    maxEntries: number;
    flags: number;
  };
  objGet(path: string): number;
  objPin(fd: number, path: string): void;
  closeFd(fd: number): void;
  possibleCpus(): number;

  tcAttach(args: NativeTcArgs): { handle: number; priority: number; progId: number };
  tcDetach(args: NativeTcArgs): void;
  tcQuery(args: NativeTcArgs): number | null;
  tcHookDestroy(ifindex: number, netns: string | null): boolean;
  xdpAttach(ifindex: number, progFd: number, flags: number, netns: string | null): void;
  xdpDetach(ifindex: number, flags: number, netns: string | null): void;
  xdpQuery(ifindex: number, flags: number, netns: string | null): number;
  ifIndex(name: string, netns: string | null): number;
  tcxAttach(
    ifindex: number,
    progFd: number,
    attachPoint: 'ingress' | 'egress',
    netns: string | null,
  ): number;
  linkUpdate(linkFd: number, progFd: number): void;
  linkDetach(linkFd: number): void;
  linkInfo(linkFd: number): { id: number; progId: number; type: number };

  ringbufOpen(
    mapFd: number,
    cb: (err: Error | null, samples: Buffer[] | null) => void,
    maxBatch: number,
  ): NativeHandle;
  ringbufClose(h: NativeHandle): void;
  ringbufStats(h: NativeHandle): { samples: number; batches: number };
  ringbufRef(h: NativeHandle, keepAlive: boolean): void;

  progInfo(fd: number): { id: number; name: string; type: number; tag: string };
  progTestRun(
    fd: number,
    data: Buffer,
    repeat: number,
    ctxIn?: Buffer,
  ): { retval: number; duration: number; data: Buffer; ctx?: Buffer };
  isBpffs(path: string): boolean;
  mountBpffs(path: string): void;
  libbpfVersion(): string;
}

const ADDON = fileURLToPath(new URL('../build/Release/ciliate_bpf.node', import.meta.url));

let binding: NativeBinding | undefined;

export function native(): NativeBinding {
  if (binding) return binding;
  if (!existsSync(ADDON)) {
    throw new BpfError(
      `the native addon is not built (${ADDON} missing): run the build of @ciliate/bpf (needs clang, libbpf-dev, libelf-dev)`,
      { code: ErrorCodes.ADDON_MISSING },
    );
  }
  try {
    const b = createRequire(import.meta.url)(ADDON) as NativeBinding;
    b.setErrorClass(BpfError);
    binding = b;
    return b;
  } catch (err) {
    throw new BpfError(`cannot load the native addon ${ADDON}: ${(err as Error).message}`, {
      code: ErrorCodes.ADDON_MISSING,
      cause: err,
    });
  }
}

/** Where the compiled BPF objects are. */
export const OBJECT_DIR = fileURLToPath(new URL('../build/Release/bpf/', import.meta.url));
