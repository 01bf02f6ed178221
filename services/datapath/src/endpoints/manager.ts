// The agent's endpoint wiring: what CNI ADD, DEL, CHECK and GC do to the node. Every endpoint
// is recorded in one JSON file under the state directory, written after the wiring is complete
// and removed last on DEL, so a restarted agent knows exactly what exists and re-adopts it
// without touching the veth, the addresses or the map entries traffic depends on.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { detachTcxPin, type Datapath } from '@ciliate/bpf';

import type { NetConf, ValidAttachment } from '../cni/config.js';
import type { CniArgs } from '../cni/env.js';
import { CniError, CniErrorCode } from '../cni/errors.js';
import { buildAddResult, type CniResult } from '../cni/result.js';
import { CommandError, NO_NETNS, type LinkInfo, type Netlink } from '../netlink/netlink.js';
import { privateDir, restrictTree, writePrivateFile } from '../private-files.js';
import type {
  AddressLease,
  AddressSource,
  IdentityInputs,
  IdentitySource,
  PodOwner,
  ResolvedIdentity,
} from '../sources/local.js';

export interface EndpointState {
  v: 1;
  containerId: string;
  ifname: string;
  netns: string;
  owner: PodOwner;
  labels: Record<string, string>;
  ip: string;
  gateway: string;
  hostIfname: string;
  hostIfindex: number;
  hostMac: string;
  mac: string;
  mtu: number;
  endpointId: number;
  identity: number;
  /** The identity's labels as the identity source answered them (`k8s:app=web`). */
  identityLabels?: string[];
  /** The Pod fields the identity was derived from (to notice when they change). */
  identityFrom?: IdentityInputs;
  /** Identities this endpoint had before its labels changed: the node's references to them are
   * released once the new one is published (kept here so a restart still releases them). */
  previousIdentities?: number[];
  attachMode: 'tc' | 'tcx';
}

/** What changed, for whoever mirrors endpoints elsewhere (ipcache claims, CiliumEndpoints). */
export type EndpointChange =
  | { type: 'added' | 'restored' | 'updated'; state: EndpointState }
  | { type: 'deleted'; owner: PodOwner; state: EndpointState | undefined };

/** One CNI call as the agent receives it (already validated by the plugin). */
export interface EndpointRequest {
  containerId: string;
  ifname: string;
  netns?: string;
  args: CniArgs;
  config: Omit<NetConf, 'raw'>;
}

export interface EndpointManagerOptions {
  datapath: Datapath;
  addresses: AddressSource;
  identities: IdentitySource;
  netlink: Netlink;
  /** Endpoint state files go to `<stateDir>/endpoints`. */
  stateDir: string;
  /** Veth MTU unless the network config sets one. Default 1500. */
  mtu?: number;
  /** How endpoint programs are attached (see Datapath.attachEndpoint). Default tc. */
  attachMode?: 'tc' | 'tcx';
  /** Told after an endpoint is recorded, re-adopted or removed; must not throw. */
  onChange?: (change: EndpointChange) => void;
}

const MAX_ENDPOINT_ID = 0xffff;
/** Requests wired at the same time; more wait (each one runs a couple of `ip` processes). */
const MAX_IN_FLIGHT = 16;

class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/** `ip -j -batch` prints one JSON document per `show`; the last one is ours. */
function lastJson<T>(out: string): T {
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  return JSON.parse(lines[lines.length - 1] ?? '[]') as T;
}

/** Host-side veth name: `lxc` + 11 hex digits of a hash of the attachment (14 characters, under
 * the kernel's 15), stable so a DEL without state still finds it. */
export function hostIfname(containerId: string, ifname: string): string {
  const h = createHash('sha256').update(`${containerId}/${ifname}`).digest('hex');
  return `lxc${h.slice(0, 11)}`;
}

/** The IPAM owner of an attachment. Without Kubernetes arguments the pod is named after the
 * container, in the namespace `cni`. */
export function ownerOf(containerId: string, ifname: string, args: CniArgs): PodOwner {
  return {
    namespace: args.podNamespace ?? 'cni',
    pod: args.podName ?? containerId,
    containerId,
    ifname,
  };
}

/** Labels the identity is derived from, in Cilium's source-prefixed form. */
export function endpointLabels(args: CniArgs): Record<string, string> {
  const labels: Record<string, string> = {};
  if (args.podNamespace) labels['k8s:io.kubernetes.pod.namespace'] = args.podNamespace;
  return labels;
}

/** `@` cannot occur in a container ID, so the key is unambiguous. */
function attachmentKey(containerId: string, ifname: string): string {
  return `${containerId}@${ifname}`;
}

function wrap(err: unknown, what: string): CniError {
  if (err instanceof CniError) return err;
  const code = (err as { code?: string }).code;
  if (code === 'RANGE_FULL') {
    return new CniError(CniErrorCode.ADDRESS_EXHAUSTED, `${what}: ${(err as Error).message}`);
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new CniError(CniErrorCode.DATAPATH_FAILURE, `${what}: ${msg}`, undefined, { cause: err });
}

export class EndpointManager {
  private readonly dir: string;
  private readonly mtu: number;
  private readonly attachMode: 'tc' | 'tcx';
  /** Endpoint ids in use (recorded endpoints and ADDs in progress). */
  private readonly ids: Set<number>;
  private lastId = 0;
  /** Tail of the request chain per attachment. */
  private readonly locks = new Map<string, Promise<void>>();
  private readonly slots = new Semaphore(MAX_IN_FLIGHT);

  constructor(private readonly opts: EndpointManagerOptions) {
    this.dir = join(opts.stateDir, 'endpoints');
    // owner-only, also what an older agent left readable
    restrictTree(opts.stateDir);
    privateDir(this.dir);
    this.mtu = opts.mtu ?? 1500;
    this.attachMode = opts.attachMode ?? 'tc';
    this.ids = new Set(this.list().map((s) => s.endpointId));
  }

  private get dp(): Datapath {
    return this.opts.datapath;
  }

  private get nl(): Netlink {
    return this.opts.netlink;
  }

  // ---- state files ---------------------------------------------------------------------------

  private file(containerId: string, ifname: string): string {
    return join(this.dir, `${attachmentKey(containerId, ifname)}.json`);
  }

  read(containerId: string, ifname: string): EndpointState | undefined {
    try {
      return JSON.parse(readFileSync(this.file(containerId, ifname), 'utf8')) as EndpointState;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  private write(s: EndpointState): void {
    writePrivateFile(this.file(s.containerId, s.ifname), JSON.stringify(s, null, 2));
  }

  /** Every recorded endpoint. */
  list(): EndpointState[] {
    const out: EndpointState[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as EndpointState);
      } catch {
        // a torn file cannot come from write() (rename is atomic); skip foreign junk
      }
    }
    return out;
  }

  /** Taken synchronously (no await between choice and reservation), so concurrent ADDs never
   * pick the same id; freed on DEL and when an ADD is undone. */
  private takeEndpointId(): number {
    for (let i = 0; i < MAX_ENDPOINT_ID; i++) {
      const id = ((this.lastId + i) % MAX_ENDPOINT_ID) + 1;
      if (!this.ids.has(id)) {
        this.ids.add(id);
        this.lastId = id;
        return id;
      }
    }
    throw new CniError(CniErrorCode.ADDRESS_EXHAUSTED, 'no endpoint id left on this node');
  }

  private tcxPins(hostIfindex: number): string[] {
    return ['ingress', 'egress'].map((p) =>
      join(this.dp.pinDir, 'links', `lxc-${hostIfindex}-${p}`),
    );
  }

  private attach(s: Pick<EndpointState, 'hostIfindex' | 'attachMode'>): void {
    this.dp.attachEndpoint(
      { ifindex: s.hostIfindex, ...(this.nl.nodeNetns ? { netns: this.nl.nodeNetns } : {}) },
      { mode: s.attachMode },
    );
  }

  private programMap(s: EndpointState): void {
    this.dp.endpoints.set(
      { ip: s.ip },
      {
        ifindex: s.hostIfindex,
        endpointId: s.endpointId,
        flags: 0,
        mac: s.mac,
        nodeMac: s.hostMac,
        identity: s.identity,
      },
    );
  }

  // ---- ADD -----------------------------------------------------------------------------------

  /** One request per attachment at a time; requests for different attachments run
   * concurrently (at most MAX_IN_FLIGHT, so a burst does not fork hundreds of `ip`s). */
  private async locked<T>(containerId: string, ifname: string, fn: () => Promise<T>): Promise<T> {
    const key = attachmentKey(containerId, ifname);
    const prev = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.locks.set(key, tail);
    await prev;
    try {
      await this.slots.acquire();
      try {
        return await fn();
      } finally {
        this.slots.release();
      }
    } finally {
      release();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }

  add(req: EndpointRequest): Promise<CniResult> {
    return this.locked(req.containerId, req.ifname, () => this.addLocked(req));
  }

  /** Creates the veth inside the pod's namespace with its host end in the node's, and wires
   * the pod side, in one `ip -batch`; returns the pod interface. A host veth left behind by a
   * crashed ADD is removed and the batch retried once. `created` tells the caller whether the
   * veth exists (so undo knows to remove it). */
  private async wirePod(
    netns: string,
    ifname: string,
    hostIf: string,
    mtu: number,
    lease: AddressLease,
    created: { veth: boolean },
    retry = true,
  ): Promise<LinkInfo> {
    const lines = [
      ['link', 'add', ifname, 'mtu', String(mtu), 'up', 'type', 'veth', 'peer', 'name', hostIf],
      ['mtu', String(mtu), 'netns', this.nl.nodeNetnsPath],
      ['addr', 'add', `${lease.ip}/32`, 'dev', ifname],
      ['route', 'add', lease.gateway, 'dev', ifname, 'scope', 'link'],
      ['route', 'add', 'default', 'via', lease.gateway, 'dev', ifname],
      ['link', 'show', 'dev', ifname],
    ];
    // the first two are one command (peer options continue the line)
    const batch = [[...lines[0]!, ...lines[1]!], ...lines.slice(2)];
    try {
      const out = await this.nl.batch(batch, netns, { json: true });
      created.veth = true;
      return lastJson<LinkInfo[]>(out)[0]!;
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      if (NO_NETNS.test(err.stderr)) {
        throw new CniError(
          CniErrorCode.INVALID_ENVIRONMENT,
          `CNI_NETNS: Invalid value: ${JSON.stringify(netns)}: ${err.stderr.trim()}`,
        );
      }
      const failedLine = Number(/Command failed -:(\d+)/.exec(err.stderr)?.[1] ?? '0');
      if (failedLine !== 1) {
        created.veth = true;
        throw err;
      }
      if (!/File exists/.test(err.stderr)) throw err;
      if (await this.nl.link(ifname, netns)) {
        throw new CniError(
          CniErrorCode.ALREADY_EXISTS,
          `CNI_IFNAME: interface ${JSON.stringify(ifname)} already exists in ${netns}`,
        );
      }
      // a host veth left by an ADD that crashed half way
      if (retry && (await this.nl.link(hostIf))) {
        await this.nl.ip(['link', 'del', hostIf]);
        return this.wirePod(netns, ifname, hostIf, mtu, lease, created, false);
      }
      throw err;
    }
  }

  private async addLocked(req: EndpointRequest): Promise<CniResult> {
    const { containerId, ifname } = req;
    const netns = req.netns;
    if (!netns) throw new CniError(CniErrorCode.INVALID_ENVIRONMENT, 'CNI_NETNS: Required value');
    const existing = this.read(containerId, ifname);
    if (existing) {
      throw new CniError(
        CniErrorCode.ALREADY_EXISTS,
        `attachment ${containerId}/${ifname} already exists (address ${existing.ip}); DEL it first`,
      );
    }
    if (!existsSync(netns)) {
      throw new CniError(
        CniErrorCode.INVALID_ENVIRONMENT,
        `CNI_NETNS: Invalid value: ${JSON.stringify(netns)}: no such namespace`,
      );
    }
    const owner = ownerOf(containerId, ifname, req.args);
    const labels = endpointLabels(req.args);
    const mtu = req.config.mtu ?? this.mtu;
    const hostIf = hostIfname(containerId, ifname);
    const undo: (() => unknown)[] = [];
    try {
      const lease = await this.opts.addresses.allocate(owner);
      undo.push(() => this.opts.addresses.release(owner));
      const identity = await this.opts.identities.resolve(labels, owner);
      undo.push(() => this.opts.identities.release?.(identity.id, owner));

      const created = { veth: false };
      undo.push(() =>
        created.veth ? this.nl.ip(['link', 'del', hostIf]).catch(() => undefined) : undefined,
      );
      const pod = await this.wirePod(netns, ifname, hostIf, mtu, lease, created);
      const host = lastJson<LinkInfo[]>(
        await this.nl.batch(
          [
            ['link', 'set', hostIf, 'up'],
            ['route', 'replace', `${lease.ip}/32`, 'dev', hostIf],
            ['link', 'show', 'dev', hostIf],
          ],
          undefined,
          { json: true },
        ),
      )[0];
      if (!host || !pod) throw new Error(`veth ${hostIf}/${ifname} vanished while being set up`);

      const endpointId = this.takeEndpointId();
      undo.push(() => this.ids.delete(endpointId));
      const state: EndpointState = {
        v: 1,
        containerId,
        ifname,
        netns,
        owner,
        labels,
        ip: lease.ip,
        gateway: lease.gateway,
        hostIfname: hostIf,
        hostIfindex: host.ifindex,
        hostMac: host.address,
        mac: pod.address,
        mtu,
        endpointId,
        identity: identity.id,
        identityLabels: identity.labels,
        ...(identity.from ? { identityFrom: identity.from } : {}),
        attachMode: this.attachMode,
      };
      this.programMap(state);
      undo.push(() => this.dp.endpoints.delete({ ip: state.ip }));
      this.attach(state);
      if (state.attachMode === 'tcx') {
        undo.push(() => this.tcxPins(state.hostIfindex).forEach((p) => detachTcxPin(p)));
      }
      this.write(state);
      this.opts.onChange?.({ type: 'added', state });
      return buildAddResult(
        req.config.cniVersion,
        {
          hostIfname: hostIf,
          hostMac: host.address,
          ifname,
          mac: pod.address,
          mtu,
          netns,
          address: `${lease.ip}/32`,
          gateway: lease.gateway,
        },
        req.config.prevResult,
        req.config.dns,
      );
    } catch (err) {
      for (const u of undo.reverse()) {
        try {
          await u();
        } catch {
          // keep undoing: the address must be released even if a link is stuck
        }
      }
      throw wrap(err, `ADD ${containerId}/${ifname}`);
    }
  }

  // ---- DEL -----------------------------------------------------------------------------------

  /** Undoes ADD; idempotent, and works without state, netns or veth. */
  del(req: Pick<EndpointRequest, 'containerId' | 'ifname' | 'args'>): Promise<void> {
    return this.locked(req.containerId, req.ifname, () => this.delLocked(req));
  }

  private async delLocked(
    req: Pick<EndpointRequest, 'containerId' | 'ifname' | 'args'>,
  ): Promise<void> {
    const { containerId, ifname } = req;
    const state = this.read(containerId, ifname);
    const owner = state?.owner ?? ownerOf(containerId, ifname, req.args);
    const hostIf = state?.hostIfname ?? hostIfname(containerId, ifname);
    try {
      // with a state file the veth's ifindex is known: one `ip` fewer
      const link = state ? undefined : await this.nl.link(hostIf);
      // map entries first, so nothing is redirected to a veth about to disappear
      const ifindexes = new Set<number>();
      if (state) ifindexes.add(state.hostIfindex);
      if (link) ifindexes.add(link.ifindex);
      // collected first: deleting under a map walk would restart it from the first key
      const stale = [...this.dp.endpoints.entries()]
        .filter(([k, v]) => ifindexes.has(v.ifindex) || (state && k.ip === state.ip))
        .map(([k]) => k);
      for (const k of stale) this.dp.endpoints.delete(k);
      // as Cilium scrubs a deleted endpoint's flows: a pod that gets the address next must not
      // inherit its connections' state
      if (state) {
        const flows = [...this.dp.ct4.keys()].filter(
          (k) => k.saddr === state.ip || k.daddr === state.ip,
        );
        for (const k of flows) this.dp.ct4.delete(k);
      }
      if (state?.attachMode === 'tcx')
        this.tcxPins(state.hostIfindex).forEach((p) => detachTcxPin(p));
      // the tc filters, the route and the container's end go with the host end
      if (state || link) {
        await this.nl.ip(['link', 'del', hostIf]).catch((err: unknown) => {
          if (!(err instanceof CommandError && /Cannot find device/.test(err.stderr))) throw err;
        });
      }
      if (state) await this.opts.identities.release?.(state.identity, owner);
      // identities of a relabel not released yet: this DEL is their last chance
      for (const id of state?.previousIdentities ?? [])
        if (id !== state?.identity) await this.opts.identities.release?.(id, owner);
      await this.opts.addresses.release(owner);
      rmSync(this.file(containerId, ifname), { force: true });
      if (state) this.ids.delete(state.endpointId);
      this.opts.onChange?.({ type: 'deleted', owner, state });
    } catch (err) {
      throw wrap(err, `DEL ${containerId}/${ifname}`);
    }
  }

  // ---- identity change -----------------------------------------------------------------------

  /**
   * Gives a running endpoint a new identity in place: the endpoints map entry is rewritten (the
   * programs read the source identity from it per packet) and the state file records the new
   * identity, the old one joining `previousIdentities` until it is released after the new one
   * is published. Nothing else is touched: the veth, the programs and conntrack stay, so
   * established connections keep flowing. Answers undefined when the endpoint is gone or no
   * longer has `expected` (a DEL or another change came first): the caller still holds `next`.
   */
  setIdentity(
    containerId: string,
    ifname: string,
    expected: number,
    next: ResolvedIdentity,
  ): Promise<EndpointState | undefined> {
    return this.locked(containerId, ifname, () => {
      const cur = this.read(containerId, ifname);
      if (!cur || cur.identity !== expected) return Promise.resolve(undefined);
      const previous = new Set(cur.previousIdentities);
      previous.add(cur.identity);
      previous.delete(next.id);
      const { previousIdentities: _was, ...rest } = cur;
      const state: EndpointState = {
        ...rest,
        identity: next.id,
        identityLabels: next.labels,
        ...(next.from ? { identityFrom: next.from } : {}),
        ...(previous.size > 0 ? { previousIdentities: [...previous].sort((a, b) => a - b) } : {}),
      };
      if (next.id !== cur.identity) this.programMap(state);
      this.write(state);
      this.opts.onChange?.({ type: 'updated', state });
      return Promise.resolve(state);
    });
  }

  /**
   * Runs `release` for each of the endpoint's `previousIdentities` and forgets those released,
   * under the endpoint's lock, so a concurrent DEL either finds them released or releases them
   * itself. Answers how many were released; the first failure is thrown after the state file
   * has forgotten those released before it.
   */
  retirePreviousIdentities(
    containerId: string,
    ifname: string,
    release: (identity: number) => Promise<void>,
  ): Promise<number> {
    return this.locked(containerId, ifname, async () => {
      const cur = this.read(containerId, ifname);
      if (!cur?.previousIdentities) return 0;
      const left = [...cur.previousIdentities];
      let failure: Error | undefined;
      let done = 0;
      for (const id of cur.previousIdentities) {
        try {
          await release(id);
          left.splice(left.indexOf(id), 1);
          done++;
        } catch (err) {
          failure ??= err instanceof Error ? err : new Error(String(err));
        }
      }
      const { previousIdentities: _was, ...rest } = cur;
      this.write(left.length > 0 ? { ...rest, previousIdentities: left } : rest);
      if (failure !== undefined) throw failure;
      return done;
    });
  }

  // ---- CHECK ---------------------------------------------------------------------------------

  check(req: EndpointRequest): Promise<void> {
    return this.locked(req.containerId, req.ifname, () => this.checkLocked(req));
  }

  private async checkLocked(req: EndpointRequest): Promise<void> {
    const { containerId, ifname } = req;
    const s = this.read(containerId, ifname);
    const fail = (what: string) =>
      new CniError(CniErrorCode.CHECK_FAILED, `CHECK ${containerId}/${ifname}: ${what}`);
    if (!s) {
      throw new CniError(
        CniErrorCode.UNKNOWN_CONTAINER,
        `CNI_CONTAINERID: no attachment ${containerId}/${ifname} on this node`,
      );
    }
    if (req.netns && req.netns !== s.netns) {
      throw fail(`CNI_NETNS is ${req.netns} but the endpoint was added in ${s.netns}`);
    }
    const host = await this.nl.link(s.hostIfname);
    if (!host) throw fail(`host veth ${s.hostIfname} is missing`);
    if (host.ifindex !== s.hostIfindex) throw fail(`host veth ${s.hostIfname} was replaced`);
    let pod;
    try {
      pod = await this.nl.link(ifname, s.netns);
    } catch (err) {
      throw fail(`netns ${s.netns} is not usable: ${(err as Error).message}`);
    }
    if (!pod) throw fail(`interface ${ifname} is missing in ${s.netns}`);
    const addrs = JSON.parse(
      await this.nl.ipIn(s.netns, ['-j', '-4', 'addr', 'show', 'dev', ifname]),
    ) as {
      addr_info?: { local: string; prefixlen: number }[];
    }[];
    if (!addrs[0]?.addr_info?.some((a) => a.local === s.ip && a.prefixlen === 32)) {
      throw fail(`address ${s.ip}/32 is missing on ${ifname}`);
    }
    const routes = JSON.parse(
      await this.nl.ipIn(s.netns, ['-j', '-4', 'route', 'show', 'default']),
    ) as {
      gateway?: string;
      dev?: string;
    }[];
    if (!routes.some((r) => r.gateway === s.gateway && r.dev === ifname)) {
      throw fail(`default route via ${s.gateway} dev ${ifname} is missing`);
    }
    const entry = this.dp.endpoints.get({ ip: s.ip });
    if (!entry || entry.ifindex !== s.hostIfindex) {
      throw fail(`endpoint map entry for ${s.ip} is missing or points elsewhere`);
    }
    const prev = req.config.prevResult;
    if (prev && !(prev.ips ?? []).some((ip) => ip.address === `${s.ip}/32`)) {
      throw fail(`prevResult does not list ${s.ip}/32`);
    }
  }

  // ---- GC ------------------------------------------------------------------------------------

  /** Removes endpoints and address leases of attachments not in `valid`; carries on past
   * failures and reports them all at the end. Returns what was removed. */
  async gc(valid: ValidAttachment[]): Promise<string[]> {
    const keep = new Set(valid.map((a) => `${a.containerID}/${a.ifname}`));
    const removed: string[] = [];
    const failures: string[] = [];
    for (const s of this.list()) {
      const key = `${s.containerId}/${s.ifname}`;
      if (keep.has(key)) continue;
      try {
        await this.del({
          containerId: s.containerId,
          ifname: s.ifname,
          args: { ignoreUnknown: true, raw: {} },
        });
        removed.push(key);
      } catch (err) {
        failures.push(`${key}: ${(err as Error).message}`);
      }
    }
    for (const o of (await this.opts.addresses.owners?.()) ?? []) {
      const key = `${o.containerId}/${o.ifname}`;
      if (keep.has(key)) continue;
      try {
        await this.opts.addresses.release(o);
        if (!removed.includes(key)) removed.push(key);
      } catch (err) {
        failures.push(`${key}: ${(err as Error).message}`);
      }
    }
    if (failures.length > 0) {
      throw new CniError(
        CniErrorCode.DATAPATH_FAILURE,
        `GC: ${failures.length} attachment(s) could not be removed`,
        failures.join('; '),
      );
    }
    return removed;
  }

  // ---- restart -------------------------------------------------------------------------------

  /**
   * Re-adopts recorded endpoints after a restart: an endpoint whose veth is still there gets its
   * map entry re-asserted and the freshly loaded programs attached (an atomic replacement, no
   * packet lost); one whose veth is gone (its netns was deleted while we were down) is cleaned
   * up as a DEL would.
   */
  async restore(): Promise<{ restored: number; removed: number }> {
    let restored = 0;
    let removed = 0;
    for (const s of this.list()) {
      const link = await this.nl.link(s.hostIfname);
      if (link && link.ifindex === s.hostIfindex) {
        const entry = this.dp.endpoints.get({ ip: s.ip });
        if (!entry || entry.ifindex !== s.hostIfindex || entry.identity !== s.identity)
          this.programMap(s);
        this.attach(s);
        this.opts.onChange?.({ type: 'restored', state: s });
        restored++;
      } else {
        await this.del({
          containerId: s.containerId,
          ifname: s.ifname,
          args: { ignoreUnknown: true, raw: {} },
        });
        removed++;
      }
    }
    return { restored, removed };
  }
}
