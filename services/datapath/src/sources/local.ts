// Where an endpoint's address and identity come from, as the agent sees them: narrow
// interfaces so the CNI path does not care whether the answer is local or a NATS request.
import type { IdentityInputs } from '@ciliate/datapath-core';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';

import { RESERVED_IDENTITIES, formatLabel, reservedLabel } from '@ciliate/contracts';
import {
  allocatePodIp,
  checkPodPoolState,
  createPodPool,
  listPodIps,
  lookupPodIp,
  parsePodOwnerKey,
  podOwnerKey,
  podPoolUsage,
  releasePodIp,
  ROUTER_OWNER,
  type PodOwner,
  type PodPoolState,
} from '@ciliate/ipam-core';

import { privateDir, writePrivateFile } from '../private-files.js';

export type { PodOwner };

export interface AddressLease {
  /** The pod's address (no prefix length). */
  ip: string;
  /** The node's router address: the pod's default gateway. */
  gateway: string;
}

export interface AddressSource {
  /** An address for the owner; the same one again when it already holds one. */
  allocate(owner: PodOwner): Promise<AddressLease>;
  /** Frees the owner's address; no error when it holds none. Returns the address freed. */
  release(owner: PodOwner): Promise<string | null>;
  /** Owners holding addresses, for GC (sources that cannot list leave it out). */
  owners?(): Promise<PodOwner[]>;
  /** Addresses left; 0, or a throw (no pod CIDR yet, IPAM unreachable), makes STATUS answer
   * "not ready" (50) with the reason. */
  available?(): Promise<number>;
}

// What a pod's identity was derived from (its Pod's labels and service account): the type is
// @ciliate/datapath-core's, which decides when it changed.
export type { IdentityInputs };

export interface ResolvedIdentity {
  /** The numeric security identity. */
  id: number;
  /** Its label set as `source:key=value`. */
  labels: string[];
  /** The Pod fields it was derived from (sources that read no Pod leave it out). */
  from?: IdentityInputs;
}

export interface IdentitySource {
  /** The security identity of a pod interface; `labels` are what the CNI arguments tell. */
  resolve(labels: Record<string, string>, owner: PodOwner): Promise<ResolvedIdentity>;
  /** The owner no longer uses `identity` (DEL); no error when it held none. */
  release?(identity: number, owner: PodOwner): Promise<void>;
}

/**
 * The documented default until the identity service is wired in: every pod gets the reserved
 * identity `init` (5), Cilium's identity for endpoints whose labels are not known yet. Policy
 * cannot tell such pods apart; do not use it where policy matters.
 */
export class InitIdentitySource implements IdentitySource {
  resolve(_labels: Record<string, string>, _owner: PodOwner): Promise<ResolvedIdentity> {
    return Promise.resolve({
      id: RESERVED_IDENTITIES.init,
      labels: [formatLabel(reservedLabel('init'))],
    });
  }
}

/**
 * Addresses from the node's pod CIDR through the IPAM core, the pool persisted as a JSON file
 * (written atomically after every change) so that a restarted agent keeps every lease. The
 * router address (the first usable one) is the pods' gateway.
 */
export class PoolAddressSource implements AddressSource {
  private state: PodPoolState;
  private dirReady = false;

  private constructor(
    private readonly file: string | undefined,
    state: PodPoolState,
  ) {
    this.state = state;
  }

  /** `file` holds the pool across restarts; a file for another CIDR is an error. */
  static open(podCidr: string, file?: string): PoolAddressSource {
    let state: PodPoolState | undefined;
    if (file) {
      try {
        state = checkPodPoolState(JSON.parse(readFileSync(file, 'utf8')), file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    const fresh = createPodPool(podCidr, {}, 'podCidr');
    if (state && state.cidr !== fresh.cidr) {
      throw new Error(
        `podCidr: Invalid value: "${podCidr}": the pool in ${file} is for ${state.cidr}`,
      );
    }
    const src = new PoolAddressSource(file, state ?? fresh);
    src.save();
    return src;
  }

  get gateway(): string {
    const gw = lookupPodIp(this.state, ROUTER_OWNER);
    if (!gw) throw new Error(`pod pool ${this.state.cidr} has no router address`);
    return gw;
  }

  get cidr(): string {
    return this.state.cidr;
  }

  private save(): void {
    if (!this.file) return;
    if (!this.dirReady) {
      privateDir(dirname(this.file));
      this.dirReady = true;
    }
    writePrivateFile(this.file, JSON.stringify(this.state));
  }

  // Promises built from executors, so that a synchronous throw of the core is a rejection.
  allocate(owner: PodOwner): Promise<AddressLease> {
    return new Promise((resolve) => {
      const r = allocatePodIp(this.state, podOwnerKey(owner));
      if (r.created) {
        this.state = r.state;
        this.save();
      }
      resolve({ ip: r.ip, gateway: this.gateway });
    });
  }

  release(owner: PodOwner): Promise<string | null> {
    return new Promise((resolve) => {
      const r = releasePodIp(this.state, podOwnerKey(owner));
      if (r.ip !== null) {
        this.state = r.state;
        this.save();
      }
      resolve(r.ip);
    });
  }

  owners(): Promise<PodOwner[]> {
    const out: PodOwner[] = [];
    for (const a of listPodIps(this.state)) {
      const o = parsePodOwnerKey(a.owner);
      if (o) out.push(o);
    }
    return Promise.resolve(out);
  }

  /** Held addresses, by owner key (tests look for leaks here). */
  leases(): { owner: string; ip: string }[] {
    return listPodIps(this.state).map((a) => ({ owner: a.owner, ip: a.ip }));
  }

  available(): Promise<number> {
    return Promise.resolve(Number(podPoolUsage(this.state).free));
  }
}
