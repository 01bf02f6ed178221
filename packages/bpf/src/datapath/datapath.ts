// One node's datapath: the four objects loaded with the node's config, sharing maps pinned in
// the node's directory, and typed views of those maps. Loading again over the same directory
// reuses the pinned maps, so endpoints, ipcache and conntrack survive an agent restart and a
// program upgrade; attachments are replaced atomically.
import { join } from 'node:path';
import { mkdirSync, rmSync } from 'node:fs';

import {
  attachTc,
  attachTcx,
  attachXdp,
  ifIndex,
  type InterfaceRef,
  type TcAttachment,
  type TcxAttachment,
  type XdpAttachment,
  type XdpMode,
} from '../attach.js';
import { DEFAULT_BPFFS, ensureBpffs, isBpffs } from '../bpffs.js';
import { BpfError, ErrorCodes } from '../errors.js';
import type { BpfMap, PerCpuMap, TypedMap } from '../map.js';
import { OBJECT_DIR } from '../native.js';
import { BpfObject } from '../object.js';
import { RingBufferReader, type RingBufferOptions } from '../ringbuf.js';
import {
  resolveDatapathConfig,
  datapathConstants,
  type DatapathConfig,
  type CtTimeouts,
} from './config.js';
import { MapNames, Programs } from './constants.js';
import { decodeEvent, type DatapathEvent } from './events.js';
import { compareLayout, type LayoutMismatch } from '../layout-check.js';
import {
  EVENT_LAYOUTS,
  MAP_LAYOUTS,
  ct4Key,
  ctEntry,
  endpointInfo,
  endpointKey,
  eventStats,
  ipcacheKey,
  ipcacheValue,
  metricsKey,
  metricsValue,
  u32Key,
  type Ct4Key,
  type CtEntry,
  type EndpointInfo,
  type EndpointKey,
  type EventStats,
  type IpcacheKey,
  type IpcacheValue,
  type MetricsKey,
  type MetricsValue,
} from './layouts.js';

export type DatapathObjectName = keyof typeof Programs;

/** Path of a compiled object: one of the datapath's (bpf_lxc, ...) or a test fixture (tests/reject). */
export function bpfObjectPath(name: string): string {
  return join(OBJECT_DIR, `${name}.o`);
}

export interface DatapathOptions {
  /** Directory on a BPF filesystem where this node's maps are pinned. One per node: a lab runs
   * several nodes in one kernel. */
  pinDir: string;
  config?: Partial<Omit<DatapathConfig, 'ctTimeouts'>> & { ctTimeouts?: Partial<CtTimeouts> };
  /** Objects to load (default: all). */
  objects?: DatapathObjectName[];
  /** Map capacities by map name. They must match maps already pinned: libbpf refuses to reuse
   * a pinned map of another size (resizing means a new, empty map). */
  maxEntries?: Record<string, number>;
}

export interface AttachOptions {
  /** tc: clsact filters (default; persist with the interface). tcx: BPF links (kernel 6.6+),
   * pinned so they persist too. */
  mode?: 'tc' | 'tcx';
}

export interface MetricsRow {
  reason: number;
  dir: number;
  count: bigint;
  bytes: bigint;
}

export class Datapath {
  readonly endpoints: TypedMap<EndpointKey, EndpointInfo>;
  readonly ipcache: TypedMap<IpcacheKey, IpcacheValue>;
  readonly ct4: TypedMap<Ct4Key, CtEntry>;
  readonly metrics: PerCpuMap<MetricsKey, MetricsValue>;
  readonly eventStats: PerCpuMap<number, EventStats>;
  readonly eventsMap: BpfMap;

  private constructor(
    readonly config: DatapathConfig,
    readonly pinDir: string,
    readonly objects: Partial<Record<DatapathObjectName, BpfObject>>,
  ) {
    const first = Object.values(objects)[0];
    if (!first) throw new BpfError('datapath: no object loaded', { code: ErrorCodes.INVALID_ARG });
    this.endpoints = first.map(MapNames.endpoints).typed(endpointKey, endpointInfo);
    this.ipcache = first.map(MapNames.ipcache).typed(ipcacheKey, ipcacheValue);
    this.ct4 = first.map(MapNames.ct4).typed(ct4Key, ctEntry);
    this.metrics = first.map(MapNames.metrics).perCpuTyped(metricsKey, metricsValue);
    this.eventStats = first.map(MapNames.eventStats).perCpuTyped(u32Key, eventStats);
    this.eventsMap = first.map(MapNames.events);
  }

  static load(opts: DatapathOptions): Datapath {
    const config = resolveDatapathConfig(opts.config);
    if (opts.pinDir.startsWith(`${DEFAULT_BPFFS}/`)) {
      ensureBpffs(DEFAULT_BPFFS, opts.pinDir);
    } else {
      mkdirSync(opts.pinDir, { recursive: true, mode: 0o700 });
      if (!isBpffs(opts.pinDir)) {
        throw new BpfError(
          `datapath.pinDir: Invalid value: "${opts.pinDir}": not on a BPF filesystem`,
          {
            code: ErrorCodes.INVALID_VALUE,
          },
        );
      }
    }
    const names = opts.objects ?? (Object.keys(Programs) as DatapathObjectName[]);
    const constants = datapathConstants(config);
    const objects: Partial<Record<DatapathObjectName, BpfObject>> = {};
    try {
      for (const n of names) {
        objects[n] = BpfObject.load(bpfObjectPath(Programs[n].object), {
          pinRoot: opts.pinDir,
          constants,
          maxEntries: opts.maxEntries,
        });
      }
    } catch (err) {
      for (const o of Object.values(objects)) o.close();
      throw err;
    }
    return new Datapath(config, opts.pinDir, objects);
  }

  private object(name: DatapathObjectName): BpfObject {
    const o = this.objects[name];
    if (!o) {
      throw new BpfError(`datapath: object ${Programs[name].object} was not loaded`, {
        code: ErrorCodes.INVALID_ARG,
      });
    }
    return o;
  }

  private attachPair(
    object: DatapathObjectName,
    ingress: string,
    egress: string,
    ref: InterfaceRef,
    opts: AttachOptions,
  ): (TcAttachment | TcxAttachment)[] {
    const o = this.object(object);
    if ((opts.mode ?? 'tc') === 'tc') {
      return [
        attachTc(o.program(ingress), { ...ref, attachPoint: 'ingress' }),
        attachTc(o.program(egress), { ...ref, attachPoint: 'egress' }),
      ];
    }
    const ifindex = ref.ifindex ?? ifIndex(ref.ifname ?? '', ref.netns);
    const pin = (p: string) =>
      join(this.pinDir, 'links', `${object}-${ref.ifname ?? ifindex}-${p}`);
    return [
      attachTcx(o.program(ingress), {
        ...ref,
        ifindex,
        attachPoint: 'ingress',
        pinPath: pin('ingress'),
      }),
      attachTcx(o.program(egress), {
        ...ref,
        ifindex,
        attachPoint: 'egress',
        pinPath: pin('egress'),
      }),
    ];
  }

  /** The endpoint program on a pod's host-side veth: from-container on ingress, to-container
   * on egress. tc mode uses clsact filters; tcx mode pinned links under `<pinDir>/links`. */
  attachEndpoint(ref: InterfaceRef, opts: AttachOptions = {}): (TcAttachment | TcxAttachment)[] {
    return this.attachPair('lxc', Programs.lxc.fromContainer, Programs.lxc.toContainer, ref, opts);
  }

  /** The node program on the underlay device. */
  attachUnderlay(ref: InterfaceRef, opts: AttachOptions = {}): (TcAttachment | TcxAttachment)[] {
    return this.attachPair('host', Programs.host.fromNetdev, Programs.host.toNetdev, ref, opts);
  }

  /** The overlay program on the collect_md VXLAN device. */
  attachOverlay(ref: InterfaceRef, opts: AttachOptions = {}): (TcAttachment | TcxAttachment)[] {
    return this.attachPair(
      'overlay',
      Programs.overlay.fromOverlay,
      Programs.overlay.toOverlay,
      ref,
      opts,
    );
  }

  attachXdp(ref: InterfaceRef & { mode?: XdpMode }): XdpAttachment {
    return attachXdp(this.object('xdp').program(Programs.xdp.entry), ref);
  }

  /** Forward (reason 0) and drop counters by reason and direction, summed over CPUs. */
  readMetrics(): MetricsRow[] {
    const rows: MetricsRow[] = [];
    for (const [k, perCpu] of this.metrics.entries()) {
      let count = 0n;
      let bytes = 0n;
      for (const v of perCpu) {
        count += v.count;
        bytes += v.bytes;
      }
      rows.push({ reason: k.reason, dir: k.dir, count, bytes });
    }
    return rows.sort((a, b) => a.reason - b.reason || a.dir - b.dir);
  }

  /** Events handed to the ring buffer, and those lost because it was full. */
  readEventStats(): { submitted: bigint; lost: bigint } {
    let submitted = 0n;
    let lost = 0n;
    for (const v of this.eventStats.get(0) ?? []) {
      submitted += v.submitted;
      lost += v.lost;
    }
    return { submitted, lost };
  }

  /** Decoded trace and drop events, in batches, off the event loop's critical path. */
  openEvents(
    onEvents: (events: DatapathEvent[]) => void,
    opts: RingBufferOptions = {},
  ): RingBufferReader {
    return RingBufferReader.open(
      this.eventsMap,
      (records) => onEvents(records.map(decodeEvent)),
      opts,
    );
  }

  /**
   * Compares every map's and event's TypeScript layout with the BTF of each loaded object:
   * empty when this package and the compiled programs agree byte for byte (an agent checks
   * this before it writes a single entry).
   */
  checkLayouts(): LayoutMismatch[] {
    const out: LayoutMismatch[] = [];
    for (const [name, o] of Object.entries(this.objects)) {
      const prefix = (m: LayoutMismatch) => ({ ...m, path: `${name}: ${m.path}` });
      for (const m of MAP_LAYOUTS) {
        if (m.key && m.cKey)
          out.push(...compareLayout(m.key.layout, o.btfStruct(m.cKey)).map(prefix));
        if (m.value && m.cValue) {
          out.push(...compareLayout(m.value.layout, o.btfStruct(m.cValue)).map(prefix));
        }
      }
      if (name !== 'xdp') {
        for (const e of EVENT_LAYOUTS)
          out.push(...compareLayout(e.codec.layout, o.btfStruct(e.cType)).map(prefix));
      }
    }
    return out;
  }

  /** Closes file descriptors; pinned maps and attached programs stay and keep forwarding. */
  close(): void {
    for (const o of Object.values(this.objects)) o.close();
  }

  /** Removes a node's pinned maps (the maps disappear once no program uses them). */
  static removePins(pinDir: string): void {
    rmSync(pinDir, { recursive: true, force: true });
  }
}

/** CLOCK_MONOTONIC seconds, the clock of conntrack lifetimes. */
export function monotonicSeconds(): number {
  return Number(process.hrtime.bigint() / 1_000_000_000n);
}

/** Seconds until a conntrack entry expires (negative when expired). */
export function ctExpiresIn(entry: CtEntry, now: number = monotonicSeconds()): number {
  return entry.lifetime - now;
}
