// A pod's identity follows its labels, as in Cilium: when the Pod object's labels (or service
// account) change, the running endpoint is given the identity of the new label set in place.
// The identity service decides which labels count (Cilium's label filter, configurable there),
// so the node compares only what it sent: the Pod fields each identity was derived from.
//
// The steps run inside the endpoint publisher's pass, in the order that keeps every node right:
// allocate the new identity (a reference is taken) → rewrite the endpoints map entry and the
// state file (the old identity kept in `previousIdentities`) → publish the ipcache claim and the
// CiliumEndpoint (the publisher's own work) → release the node's reference to the old identity.
// Releasing only after publication means no other node can see the old number reused by another
// label set while it still maps this pod's address to it. A failure at any step leaves the state
// file saying what is still owed, and the publisher's retry runs the pass again.
import {
  planIdentityFollow,
  newIdentityInputs,
  type IdentityInputs,
  type PodLike,
  type PodLookup,
} from '@ciliate/datapath-core';
import type { Logger } from '@ciliate/runtime';

import type { EndpointManager, EndpointState } from '../endpoints/manager.js';
import type { PodOwner, ResolvedIdentity } from '../sources/local.js';
import { CniError, CniErrorCode } from '../cni/errors.js';

/** What the follower needs of the node's identity source. */
export interface FollowIdentities {
  resolveInputs(from: IdentityInputs, owner: PodOwner): Promise<ResolvedIdentity>;
  /** An identity allocated for `owner` that its endpoint did not take. */
  abandon(identity: number, owner: PodOwner, current: number | undefined): Promise<void>;
  releaseIfUnused(identity: number, retiring: PodOwner): Promise<boolean>;
}

export interface IdentityFollowerOptions {
  endpoints: Pick<EndpointManager, 'list' | 'read' | 'setIdentity' | 'retirePreviousIdentities'>;
  identities: FollowIdentities;
  pod: PodLookup;
  log: Logger;
}

export class IdentityFollower {
  constructor(private readonly opts: IdentityFollowerOptions) {}

  /** Whether a change of `pod` concerns an endpoint of this node (worth a pass now). */
  concerns(namespace: string, name: string, pod: PodLike | undefined): boolean {
    return this.opts.endpoints
      .list()
      .some(
        (s) =>
          s.owner.namespace === namespace &&
          s.owner.pod === name &&
          newIdentityInputs(s, pod) !== undefined,
      );
  }

  /**
   * Before publishing: new identities for endpoints whose Pod fields changed. Failures are
   * answered, not thrown, so one pod does not hold back the others' publication.
   */
  async follow(): Promise<unknown[]> {
    const failures: unknown[] = [];
    const { relabel } = planIdentityFollow(this.opts.endpoints.list(), this.opts.pod);
    for (const { endpoint, from } of relabel) {
      try {
        await this.relabel(endpoint, from);
      } catch (err) {
        failures.push(err);
        // the identity service did not answer within the deadline: the others would wait as
        // long for the same answer, and hold back this pass's publication meanwhile
        if (err instanceof CniError && err.code === CniErrorCode.TRY_AGAIN_LATER) break;
      }
    }
    return failures;
  }

  private async relabel(endpoint: EndpointState, from: IdentityInputs): Promise<void> {
    const { containerId, ifname, owner } = endpoint;
    const started = Date.now();
    const next = await this.opts.identities.resolveInputs(from, owner);
    const state = await this.opts.endpoints.setIdentity(
      containerId,
      ifname,
      endpoint.identity,
      next,
    );
    if (!state) {
      // deleted (or changed) while we asked: the reference just taken is not the endpoint's
      const cur = this.opts.endpoints.read(containerId, ifname);
      this.opts.log.info(
        { event: 'identity.abandoned', pod: `${owner.namespace}/${owner.pod}`, id: next.id },
        `endpoint changed while identity ${next.id} was allocated for it: not taken`,
      );
      await this.opts.identities.abandon(next.id, owner, cur?.identity);
      return;
    }
    if (next.id !== endpoint.identity) {
      this.opts.log.info(
        {
          event: 'identity.relabeled',
          pod: `${owner.namespace}/${owner.pod}`,
          ip: endpoint.ip,
          was: endpoint.identity,
          now: next.id,
          labels: next.labels,
          ms: Date.now() - started,
        },
        `endpoint ${endpoint.endpointId} takes identity ${next.id} (was ${endpoint.identity})`,
      );
    }
  }

  /**
   * After publishing (every endpoint's current identity is out): releases what relabeled
   * endpoints held before. Failures are answered; what was not released stays recorded.
   */
  async retire(): Promise<unknown[]> {
    const failures: unknown[] = [];
    const { retire } = planIdentityFollow(this.opts.endpoints.list(), () => undefined);
    for (const s of retire) {
      try {
        await this.opts.endpoints.retirePreviousIdentities(s.containerId, s.ifname, async (id) => {
          const sent = await this.opts.identities.releaseIfUnused(id, s.owner);
          this.opts.log.info(
            { event: 'identity.retired', pod: `${s.owner.namespace}/${s.owner.pod}`, id, sent },
            sent
              ? `identity ${id} released (no endpoint of this node uses it)`
              : `identity ${id} no longer used by this endpoint (others still do)`,
          );
        });
      } catch (err) {
        failures.push(err);
      }
    }
    return failures;
  }
}
