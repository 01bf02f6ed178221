// Attaching programs to interfaces: tc clsact (direct action) and XDP. Attachments belong to
// the interface and outlive this process; detach() or deleting the interface removes them.
// `netns` (a name under /var/run/netns or a path) runs the netlink calls in that namespace.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';

import { BpfError, ErrorCodes } from './errors.js';
import { native } from './native.js';
import type { BpfProgram } from './object.js';

export type TcAttachPoint = 'ingress' | 'egress';

export interface InterfaceRef {
  /** Interface index in `netns` (or the current namespace). */
  ifindex?: number;
  /** Interface name; resolved in `netns`. */
  ifname?: string;
  /** Network namespace name (as `ip netns` shows) or path such as /proc/<pid>/ns/net. */
  netns?: string;
}

export interface TcFilterRef extends InterfaceRef {
  attachPoint: TcAttachPoint;
  /** tc filter priority (default 1, as Cilium uses). */
  priority?: number;
  /** tc filter handle (default 1). */
  handle?: number;
}

export interface TcAttachment {
  readonly ifindex: number;
  readonly netns: string | undefined;
  readonly attachPoint: TcAttachPoint;
  readonly priority: number;
  readonly handle: number;
  /** Kernel id of the attached program. */
  readonly progId: number;
  detach(): void;
}

export function netnsPath(netns: string): string {
  return netns.includes('/') ? netns : `/var/run/netns/${netns}`;
}

function ns(ref: InterfaceRef): string | null {
  return ref.netns ? netnsPath(ref.netns) : null;
}

export function ifIndex(name: string, netns?: string): number {
  return native().ifIndex(name, netns ? netnsPath(netns) : null);
}

function resolveIfindex(ref: InterfaceRef): number {
  if (ref.ifindex !== undefined) return ref.ifindex;
  if (ref.ifname !== undefined) return ifIndex(ref.ifname, ref.netns);
  throw new BpfError('interface: ifindex or ifname is required', { code: ErrorCodes.INVALID_ARG });
}

/** Attaches `program` as a direct-action tc filter, creating the clsact qdisc if needed. An
 * existing filter with the same priority and handle is replaced atomically unless
 * `replace: false`. */
export function attachTc(
  program: BpfProgram,
  opts: TcFilterRef & { replace?: boolean },
): TcAttachment {
  const ifindex = resolveIfindex(opts);
  const r = native().tcAttach({
    ifindex,
    attachPoint: opts.attachPoint,
    priority: opts.priority ?? 1,
    handle: opts.handle ?? 1,
    progFd: program.fd,
    replace: opts.replace ?? true,
    netns: ns(opts),
  });
  const ref: TcFilterRef = {
    ifindex,
    netns: opts.netns,
    attachPoint: opts.attachPoint,
    priority: r.priority,
    handle: r.handle,
  };
  return {
    ifindex,
    netns: opts.netns,
    attachPoint: opts.attachPoint,
    priority: r.priority,
    handle: r.handle,
    progId: r.progId,
    detach: () => detachTc(ref),
  };
}

export function detachTc(ref: TcFilterRef): void {
  native().tcDetach({
    ifindex: resolveIfindex(ref),
    attachPoint: ref.attachPoint,
    priority: ref.priority ?? 1,
    handle: ref.handle ?? 1,
    netns: ns(ref),
  });
}

/** The id of the program attached at this filter, or undefined. */
export function queryTc(ref: TcFilterRef): number | undefined {
  return (
    native().tcQuery({
      ifindex: resolveIfindex(ref),
      attachPoint: ref.attachPoint,
      priority: ref.priority ?? 1,
      handle: ref.handle ?? 1,
      netns: ns(ref),
    }) ?? undefined
  );
}

/** Removes the clsact qdisc and with it every tc filter of the interface. */
export function destroyTcHook(ref: InterfaceRef): boolean {
  return native().tcHookDestroy(resolveIfindex(ref), ns(ref));
}

// ---- tcx (kernel 6.6+) ----------------------------------------------------------------------

export interface TcxAttachment {
  readonly ifindex: number;
  readonly netns: string | undefined;
  readonly attachPoint: TcAttachPoint;
  /** Where the link is pinned; without a pin the attachment ends with this process. */
  readonly pinPath: string | undefined;
  /** Kernel ids of the link and of the program it runs. */
  info(): { id: number; progId: number };
  /** Detaches the program and removes the pin. */
  detach(): void;
  /** Drops this process's reference; a pinned link stays attached. */
  close(): void;
}

/**
 * Attaches through a tcx link (no qdisc, no filter priorities to collide on). With `pinPath`
 * the link outlives the process; when a link is already pinned there, its program is swapped
 * atomically (an agent restart or upgrade leaves no gap), and a pin whose interface is gone is
 * replaced by a fresh link.
 */
export function attachTcx(
  program: BpfProgram,
  opts: InterfaceRef & { attachPoint: TcAttachPoint; pinPath?: string },
): TcxAttachment {
  const n = native();
  const ifindex = resolveIfindex(opts);
  let fd = -1;
  if (opts.pinPath && existsSync(opts.pinPath)) {
    fd = n.objGet(opts.pinPath);
    try {
      n.linkUpdate(fd, program.fd);
    } catch {
      // defunct (interface deleted) or of another kind: start over
      n.closeFd(fd);
      fd = -1;
      rmSync(opts.pinPath, { force: true });
    }
  }
  if (fd < 0) {
    fd = n.tcxAttach(ifindex, program.fd, opts.attachPoint, ns(opts));
    if (opts.pinPath) {
      try {
        mkdirSync(dirname(opts.pinPath), { recursive: true, mode: 0o700 });
        n.objPin(fd, opts.pinPath);
      } catch (err) {
        n.closeFd(fd);
        throw err;
      }
    }
  }
  let open = true;
  const closeFd = () => {
    if (open) n.closeFd(fd);
    open = false;
  };
  return {
    ifindex,
    netns: opts.netns,
    attachPoint: opts.attachPoint,
    pinPath: opts.pinPath,
    info() {
      if (!open) throw new BpfError('tcx link is closed', { code: ErrorCodes.CLOSED });
      const i = n.linkInfo(fd);
      return { id: i.id, progId: i.progId };
    },
    detach() {
      if (!open) throw new BpfError('tcx link is closed', { code: ErrorCodes.CLOSED });
      try {
        n.linkDetach(fd);
      } finally {
        closeFd();
        if (opts.pinPath) rmSync(opts.pinPath, { force: true });
      }
    },
    close: closeFd,
  };
}

/** Detaches a tcx link known only by its pin (an endpoint deleted after a restart). */
export function detachTcxPin(pinPath: string): boolean {
  if (!existsSync(pinPath)) return false;
  const n = native();
  const fd = n.objGet(pinPath);
  try {
    n.linkDetach(fd);
  } catch (err) {
    // a link whose interface is gone is already detached
    if (!(err instanceof BpfError && (err.code === 'ENOLINK' || err.code === 'EINVAL'))) throw err;
  } finally {
    n.closeFd(fd);
    rmSync(pinPath, { force: true });
  }
  return true;
}

export const XdpFlags = {
  UPDATE_IF_NOEXIST: 1,
  SKB_MODE: 2,
  DRV_MODE: 4,
  HW_MODE: 8,
  REPLACE: 16,
} as const;

/** skb (generic, works everywhere), native (driver), hw (offload); auto lets the kernel pick. */
export type XdpMode = 'skb' | 'native' | 'hw' | 'auto';

function modeFlags(mode: XdpMode | undefined): number {
  switch (mode ?? 'auto') {
    case 'skb':
      return XdpFlags.SKB_MODE;
    case 'native':
      return XdpFlags.DRV_MODE;
    case 'hw':
      return XdpFlags.HW_MODE;
    default:
      return 0;
  }
}

export interface XdpAttachment {
  readonly ifindex: number;
  readonly netns: string | undefined;
  readonly mode: XdpMode;
  detach(): void;
}

export function attachXdp(
  program: BpfProgram,
  opts: InterfaceRef & { mode?: XdpMode; /** fail if a program is attached */ exclusive?: boolean },
): XdpAttachment {
  const ifindex = resolveIfindex(opts);
  const flags = modeFlags(opts.mode) | (opts.exclusive ? XdpFlags.UPDATE_IF_NOEXIST : 0);
  native().xdpAttach(ifindex, program.fd, flags, ns(opts));
  const mode = opts.mode ?? 'auto';
  return {
    ifindex,
    netns: opts.netns,
    mode,
    detach: () => detachXdp({ ifindex, netns: opts.netns, mode }),
  };
}

export function detachXdp(ref: InterfaceRef & { mode?: XdpMode }): void {
  native().xdpDetach(resolveIfindex(ref), modeFlags(ref.mode), ns(ref));
}

/** Id of the XDP program attached in `mode` (any mode by default), or undefined. */
export function queryXdp(ref: InterfaceRef & { mode?: XdpMode }): number | undefined {
  const id = native().xdpQuery(resolveIfindex(ref), modeFlags(ref.mode), ns(ref));
  return id === 0 ? undefined : id;
}
