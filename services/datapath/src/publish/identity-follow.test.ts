// Identities following label changes: when a running endpoint needs a new identity (a scenario
// table), and the follower's steps against an endpoint table and an identity source that record
// what happens, so the order (allocate, rewrite, publish, release) and the races with DEL are
// checked without NATS or a kernel.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { PodLike } from '@ciliate/datapath-core';
import type { Logger, RpcClient } from '@ciliate/runtime';
import type { ResourceStore } from '@ciliate/store';

import type { EndpointState } from '../endpoints/manager.js';
import type { IdentityInputs, PodOwner, ResolvedIdentity } from '../sources/local.js';
import { CniError, CniErrorCode } from '../cni/errors.js';
import { IdentityFollower, type FollowIdentities } from './identity-follow.js';
import { NatsIdentitySource } from '../sources/nats.js';

const pod = (labels: Record<string, string>, serviceAccountName?: string): PodLike => ({
  metadata: { labels },
  spec: serviceAccountName ? { serviceAccountName } : {},
});

function endpoint(name: string, identity: number, labels: Record<string, string>): EndpointState {
  return {
    v: 1,
    containerId: `c-${name}`,
    ifname: 'eth0',
    netns: `/var/run/netns/${name}`,
    owner: { namespace: 'default', pod: name, containerId: `c-${name}`, ifname: 'eth0' },
    labels: {},
    ip: '10.0.0.2',
    gateway: '10.0.0.1',
    hostIfname: 'lxc0',
    hostIfindex: 10,
    hostMac: '02:00:00:00:00:01',
    mac: '02:00:00:00:00:02',
    mtu: 1500,
    endpointId: 1,
    identity,
    identityLabels: Object.entries(labels).map(([k, v]) => `k8s:${k}=${v}`),
    identityFrom: { podLabels: labels },
    attachMode: 'tc',
  };
}

const quiet = { info: () => undefined, warn: () => undefined } as unknown as Logger;

/** Endpoints in a table, an identity source numbering label sets, and a log of every step. */
function rig(...initial: EndpointState[]) {
  const steps: string[] = [];
  const table = new Map<string, EndpointState>(initial.map((e) => [e.containerId, e]));
  const numbers = new Map<string, number>(
    initial.map((e) => [JSON.stringify(e.identityFrom), e.identity]),
  );
  let labels: Record<string, string> = initial[0]!.identityFrom!.podLabels;
  let beforeSet: () => void = () => undefined;
  let releaseFails = false;
  let allocateFails: Error | undefined;
  const identities: FollowIdentities = {
    resolveInputs(from: IdentityInputs, owner: PodOwner): Promise<ResolvedIdentity> {
      if (allocateFails) {
        steps.push(`allocate for ${owner.pod} failed`);
        return Promise.reject(allocateFails);
      }
      const key = JSON.stringify(from);
      if (!numbers.has(key)) numbers.set(key, 300 + numbers.size);
      const id = numbers.get(key)!;
      steps.push(`allocate ${id}`);
      return Promise.resolve({ id, labels: [], from });
    },
    abandon(identity, _owner, current) {
      steps.push(`abandon ${identity} (endpoint ${current ?? 'gone'})`);
      return Promise.resolve();
    },
    releaseIfUnused(identity) {
      if (releaseFails) return Promise.reject(new Error('identity service away'));
      steps.push(`release ${identity}`);
      return Promise.resolve(true);
    },
  };
  const follower = new IdentityFollower({
    endpoints: {
      list: () => [...table.values()],
      read: (containerId) => table.get(containerId),
      setIdentity(containerId, _ifname, expected, next) {
        beforeSet();
        const cur = table.get(containerId);
        if (!cur || cur.identity !== expected) return Promise.resolve(undefined);
        const previous = new Set(cur.previousIdentities);
        previous.add(cur.identity);
        previous.delete(next.id);
        const state = {
          ...cur,
          identity: next.id,
          identityFrom: next.from!,
          previousIdentities: [...previous],
        };
        table.set(containerId, state);
        steps.push(`endpoint ${next.id}`);
        return Promise.resolve(state);
      },
      async retirePreviousIdentities(containerId, _ifname, release) {
        const cur = table.get(containerId);
        let n = 0;
        const left = [...(cur?.previousIdentities ?? [])];
        for (const id of cur?.previousIdentities ?? []) {
          await release(id);
          left.splice(left.indexOf(id), 1);
          table.set(containerId, { ...cur!, previousIdentities: left });
          n++;
        }
        return n;
      },
    },
    identities,
    pod: () => pod(labels),
    log: quiet,
  });
  /** One publisher pass as EndpointPublisher runs it. */
  const pass = async (): Promise<number> => {
    const failures = await follower.follow();
    steps.push(`publish ${[...table.values()].map((s) => s.identity).join(',')}`);
    failures.push(...(await follower.retire()));
    return failures.length;
  };
  return {
    steps,
    table,
    follower,
    pass,
    relabel: (l: Record<string, string>) => (labels = l),
    onSet: (f: () => void) => (beforeSet = f),
    failReleases: (v: boolean) => (releaseFails = v),
    failAllocations: (err: Error | undefined) => (allocateFails = err),
  };
}

describe('IdentityFollower', () => {
  it('allocates the new identity, rewrites the endpoint, publishes, then releases the old', async () => {
    const r = rig(endpoint('a', 300, { app: 'a' }));
    assert.equal(await r.pass(), 0);
    assert.deepEqual(r.steps, ['publish 300'], 'unchanged labels: nothing to do');
    r.steps.length = 0;
    r.relabel({ app: 'b' });
    assert.equal(r.follower.concerns('default', 'a', pod({ app: 'b' })), true);
    assert.equal(r.follower.concerns('default', 'other', pod({ app: 'b' })), false);
    assert.equal(await r.pass(), 0);
    assert.deepEqual(r.steps, ['allocate 301', 'endpoint 301', 'publish 301', 'release 300']);
    assert.deepEqual(r.table.get('c-a')?.previousIdentities, []);
    r.steps.length = 0;
    assert.equal(await r.pass(), 0);
    assert.deepEqual(r.steps, ['publish 301'], 'settled: the next pass does nothing');
  });

  it('a release that fails is retried on the next pass, never before publication', async () => {
    const r = rig(endpoint('a', 300, { app: 'a' }));
    r.relabel({ app: 'b' });
    r.failReleases(true);
    assert.equal(await r.pass(), 1);
    assert.deepEqual(r.table.get('c-a')?.previousIdentities, [300], 'still owed');
    r.failReleases(false);
    r.steps.length = 0;
    assert.equal(await r.pass(), 0);
    assert.deepEqual(r.steps, ['publish 301', 'release 300']);
  });

  it('two changes before a release: both earlier identities are released', async () => {
    const r = rig(endpoint('a', 300, { app: 'a' }));
    r.relabel({ app: 'b' });
    r.failReleases(true);
    await r.pass();
    r.relabel({ app: 'c' });
    r.failReleases(false);
    r.steps.length = 0;
    assert.equal(await r.pass(), 0);
    assert.deepEqual(r.steps, [
      'allocate 302',
      'endpoint 302',
      'publish 302',
      'release 300',
      'release 301',
    ]);
  });

  it('labels changed back before the release: the old identity is the current one again', async () => {
    const r = rig(endpoint('a', 300, { app: 'a' }));
    r.relabel({ app: 'b' });
    r.failReleases(true);
    await r.pass();
    r.relabel({ app: 'a' });
    r.failReleases(false);
    r.steps.length = 0;
    assert.equal(await r.pass(), 0);
    assert.deepEqual(r.steps, ['allocate 300', 'endpoint 300', 'publish 300', 'release 301']);
  });

  it('a DEL while the new identity is allocated: the new reference is abandoned', async () => {
    const r = rig(endpoint('a', 300, { app: 'a' }));
    r.relabel({ app: 'b' });
    r.onSet(() => r.table.delete('c-a'));
    assert.equal(await r.pass(), 0);
    assert.deepEqual(r.steps, ['allocate 301', 'abandon 301 (endpoint gone)', 'publish ']);
  });

  it('the identity service not answering: one pod waits the deadline, not every pod', async () => {
    const r = rig(endpoint('a', 300, { app: 'a' }), endpoint('b', 300, { app: 'a' }));
    r.relabel({ app: 'b' });
    r.failAllocations(new CniError(CniErrorCode.TRY_AGAIN_LATER, 'no answer'));
    assert.equal(await r.pass(), 1);
    assert.deepEqual(r.steps, ['allocate for a failed', 'publish 300,300']);
    // a failure of one pod's own (a label the identity service refuses) does not stop the rest
    r.steps.length = 0;
    r.failAllocations(new Error('bad label'));
    assert.equal(await r.pass(), 2);
    assert.deepEqual(r.steps, [
      'allocate for a failed',
      'allocate for b failed',
      'publish 300,300',
    ]);
  });
});

/** A recording identity service: every request and the reply it gets. */
function identityService() {
  const released: number[] = [];
  let next = 400;
  const rpc = {
    publish: () => undefined,
    request(subject: string, body: unknown, reply: { parse(v: unknown): unknown }) {
      const b = body as { id?: number; podLabels?: Record<string, string> };
      if (subject.endsWith('.allocate'))
        return Promise.resolve(
          reply.parse({ id: next++, labels: [], isNew: true, reserved: false }),
        );
      if (subject.endsWith('.release')) {
        released.push(b.id!);
        return Promise.resolve(reply.parse({ id: b.id, released: true }));
      }
      return Promise.reject(new Error(`unexpected ${subject}`));
    },
  } as unknown as RpcClient;
  return { rpc, released };
}

describe('NatsIdentitySource releases of a relabel', () => {
  const setup = (holders: EndpointState[]) => {
    const svc = identityService();
    const src = new NatsIdentitySource({
      rpc: svc.rpc,
      node: 'n1',
      log: quiet,
      store: {} as ResourceStore,
      holders: () => holders,
    });
    return { src, released: svc.released };
  };

  it('an old identity still used by another endpoint is kept; the last user releases it', async () => {
    const a = { ...endpoint('a', 301, { app: 'b' }), previousIdentities: [300] };
    const b = endpoint('b', 300, { app: 'a' });
    const { src, released } = setup([a, b]);
    assert.equal(await src.releaseIfUnused(300, a.owner), false, 'b still has it');
    const alone = setup([a]);
    assert.equal(await alone.src.releaseIfUnused(300, a.owner), true);
    assert.deepEqual(alone.released, [300]);
    assert.deepEqual(released, []);
  });

  it("a DEL does not release an identity another endpoint's relabel has not retired yet", async () => {
    // a was relabeled (300 -> 301) but its new identity is not published yet; b, the other
    // holder of 300, is deleted: 300 must stay referenced until a retires it
    const a = { ...endpoint('a', 301, { app: 'b' }), previousIdentities: [300] };
    const b = endpoint('b', 300, { app: 'a' });
    const { src, released } = setup([a, b]);
    await src.release(300, b.owner);
    assert.deepEqual(released, []);
    assert.equal(await src.releaseIfUnused(300, a.owner), true);
    assert.deepEqual(released, [300]);
  });

  it('a relabel allocation answered while its own DEL releases is not claimed', async () => {
    const a = endpoint('a', 300, { app: 'a' });
    const holders = [a];
    const { src, released } = setup(holders);
    const allocating = src.resolveInputs({ podLabels: { app: 'b' } }, a.owner);
    const deleting = src.release(300, a.owner);
    const got = await allocating;
    await deleting;
    assert.deepEqual(released, [300], 'the DEL released the old identity');
    holders.length = 0; // the DEL removed the state file
    await src.abandon(got.id, a.owner, undefined);
    assert.deepEqual(released, [300, got.id], 'and the abandoned new one');
  });
});
