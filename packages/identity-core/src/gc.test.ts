import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  IdentityTable,
  enforceDeadline,
  startAllocation,
  stepAllocation,
  type AllocationStep,
  type KvResult,
} from './allocation.js';
import {
  collectGarbage,
  emptyReferenceState,
  liveReferenceCounts,
  startRelease,
  stepRelease,
  withIdentities,
  withLease,
  withReference,
  withoutReference,
  type ReferenceState,
  type ReleaseState,
  type ReleaseStep,
} from './gc.js';
import {
  auditIdentityStore,
  bindingKey,
  decodeBindingRecord,
  encodeRecord,
  identityKey,
  identityRecord,
  parseKey,
  referenceKey,
  referenceRecord,
} from './kv.js';
import { labelSetHash } from './labels.js';
import { MemoryKv, runMachine } from './memory-kv.js';

const GRACE = 1000;
const RANGE = { min: 256, max: 65535 };
const setOf = (app: string): string => `k8s:app=${app};`;

describe('collectGarbage: a timeline as a spec', () => {
  type Event =
    | { at: number; lease: string; until: number }
    | { at: number; ref: string; id: number }
    | { at: number; unref: string; id: number }
    | { at: number; gc: number[]; expired?: string[]; sync?: false };
  // Identity 300 is used by two nodes; 301 is never used by anyone. Grace is 1000 ms.
  const timeline: Event[] = [
    { at: 0, lease: 'n1', until: 5000 },
    { at: 0, lease: 'n2', until: 3000 },
    { at: 0, ref: 'n1', id: 300 },
    { at: 0, ref: 'n2', id: 300 },
    { at: 100, gc: [], sync: false }, // before the initial sync nothing is decided
    { at: 1000, gc: [] }, // 301 seen idle for the first time: its clock starts now
    { at: 1999, gc: [] }, // not a moment before the grace period
    { at: 2000, gc: [301] }, // 301 idle for exactly the grace period
    { at: 3500, gc: [301], expired: ['n2'] }, // n2's lease ran out; n1 still holds 300
    { at: 4000, unref: 'n1', id: 300 }, // last live holder lets go at 4000
    { at: 4999, gc: [301] },
    { at: 5000, gc: [300, 301], expired: ['n1'] },
  ];
  it('frees exactly after the grace period, never while a node holds it', () => {
    let s: ReferenceState = withIdentities(emptyReferenceState(), [300, 301]);
    for (const e of timeline) {
      if ('lease' in e) s = withLease(s, e.lease, e.until);
      else if ('ref' in e) s = withReference(s, e.ref, e.id, e.at);
      else if ('unref' in e) s = withoutReference(s, e.unref, e.id, e.at);
      else {
        const r = collectGarbage(s, e.at, GRACE, e.sync ?? true);
        assert.deepEqual(r.free, e.gc, `free at ${e.at}`);
        assert.deepEqual(r.expiredNodes, e.expired ?? [], `expired at ${e.at}`);
        s = r.state;
      }
    }
  });

  it('a node that vanishes releases its references when its lease expires', () => {
    let s = withIdentities(emptyReferenceState(), [400]);
    s = withReference(withLease(s, 'gone', 2000), 'gone', 400, 0);
    assert.deepEqual(liveReferenceCounts(s, 1999), new Map([[400, 1]]));
    assert.deepEqual(liveReferenceCounts(s, 2000), new Map());
    // The GC first looks long after: the idle clock still starts at the lease expiry.
    const r = collectGarbage(s, 2999, GRACE, true);
    assert.deepEqual([r.free, r.expiredNodes], [[], ['gone']]);
    assert.deepEqual(r.state.references, {});
    assert.deepEqual(collectGarbage(r.state, 3000, GRACE, true).free, [400]);
  });

  it('references without a lease are not live', () => {
    const s = withReference(withIdentities(emptyReferenceState(), [500]), 'nolease', 500, 0);
    const r = collectGarbage(s, 10, GRACE, true);
    assert.deepEqual(r.expiredNodes, ['nolease']);
    assert.deepEqual(collectGarbage(r.state, 1010, GRACE, true).free, [500]);
  });

  it('refuses a negative grace period', () => {
    assert.throws(
      () => collectGarbage(emptyReferenceState(), 0, -1, true),
      /graceMs: Invalid value: -1: must be a non-negative duration in ms/,
    );
  });
});

describe('collectGarbage properties', () => {
  const leases = fc.array(
    fc.record({ expiresAt: fc.integer({ min: 1, max: 10_000 }), holds: fc.boolean() }),
    { maxLength: 5 },
  );

  it('property: an identity held until its holders’ leases expire is freed at the first run at or after last expiry + grace, not before', () => {
    fc.assert(
      fc.property(
        leases,
        fc.integer({ min: 0, max: 5000 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 12 }),
        (nodes, grace, runTimes) => {
          let s = withIdentities(emptyReferenceState(), [300]);
          nodes.forEach((n, i) => {
            s = withLease(s, `n${i}`, n.expiresAt);
            if (n.holds) s = withReference(s, `n${i}`, 300, 0);
          });
          const holders = nodes.filter((n) => n.holds).map((n) => n.expiresAt);
          const times = [...runTimes].sort((a, b) => a - b);
          // Without holders the clock starts at the first run that sees the identity.
          const idleFrom = holders.length > 0 ? Math.max(...holders) : times[0]!;
          for (const t of times) {
            const r = collectGarbage(s, t, grace, true);
            const shouldFree = holders.every((e) => e <= t) && t >= idleFrom + grace;
            assert.equal(r.free.includes(300), shouldFree, `t=${t}`);
            s = r.state;
          }
        },
      ),
    );
  });

  it('property: explicit release starts the grace period at the release', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 0, max: 5000 }),
        (releasedAt, grace, t) => {
          let s = withLease(withIdentities(emptyReferenceState(), [300]), 'n1', 1_000_000);
          s = withReference(s, 'n1', 300, 0);
          s = withoutReference(s, 'n1', 300, releasedAt);
          const now = releasedAt + t;
          assert.equal(collectGarbage(s, now, grace, true).free.includes(300), t >= grace);
        },
      ),
    );
  });

  it('property: nothing is decided before the initial sync', () => {
    fc.assert(
      fc.property(leases, fc.integer({ min: 0, max: 20_000 }), (nodes, now) => {
        let s = withIdentities(emptyReferenceState(), [300, 301]);
        nodes.forEach((n, i) => (s = withLease(s, `n${i}`, n.expiresAt)));
        const r = collectGarbage(s, now, 0, false);
        assert.deepEqual([r.free, r.expiredNodes], [[], []]);
        assert.equal(r.state, s);
      }),
    );
  });
});

describe('release machine', () => {
  function store(): { kv: MemoryKv; table: IdentityTable } {
    const kv = new MemoryKv();
    const table = new IdentityTable();
    kv.onChange((key, value) => table.applyKv(key, value));
    return { kv, table };
  }
  function allocate(kv: MemoryKv, table: IdentityTable, labels: string): number {
    const s = runMachine(kv, startAllocation({ labels, range: RANGE, now: 0 }, table), (st, r) =>
      stepAllocation(st, r, table, 0),
    );
    return s.result!.id;
  }
  function release(kv: MemoryKv, id: number, now = 0): ReleaseState {
    return runMachine(kv, startRelease({ id, holdMs: 0 }), (s, r) => stepRelease(s, r, now));
  }
  function ops(step: ReleaseStep | AllocationStep): string {
    const op = step.op!;
    if (op.op === 'batch') return `batch ${op.writes.map((w) => w.key).join(',')}`;
    return `${op.op} ${'key' in op ? op.key : 'filter' in op ? op.filter : op.until}`;
  }

  it('frees a bound, unreferenced identity: binding first, then the number', () => {
    const { kv, table } = store();
    const id = allocate(kv, table, setOf('web'));
    const hashKey = bindingKey(labelSetHash(setOf('web')));
    let step = startRelease({ id, holdMs: 500 });
    const seen: string[] = [];
    let now = 0;
    while (step.op !== undefined) {
      seen.push(ops(step));
      const r: KvResult = kv.execute(step.op);
      if (step.op.op === 'wait') now = step.op.until;
      step = stepRelease(step.state, r, now);
    }
    assert.deepEqual(seen, [
      `get id.${id}`,
      `get ${hashKey}`,
      `update ${hashKey}`, // mark releasing
      'wait 500',
      `keys ref.${id}.>`,
      `delete ${hashKey}`,
      `delete id.${id}`,
    ]);
    assert.equal(step.state.result, 'freed');
    assert.equal(kv.size, 0);
    assert.equal(table.size, 0);
  });

  it('is revived when a reference shows up during the hold', () => {
    const { kv, table } = store();
    const id = allocate(kv, table, setOf('web'));
    let step = startRelease({ id, holdMs: 500 });
    while (step.state.phase !== 'hold') step = stepRelease(step.state, kv.execute(step.op!), 0);
    kv.execute({
      op: 'put',
      key: referenceKey(id, 'n1'),
      value: encodeRecord(referenceRecord(id, 'n1')),
    });
    const end = runMachine(kv, step, (s, r) => stepRelease(s, r, 500));
    assert.equal(end.result, 'revived');
    const b = decodeBindingRecord(kv.get(bindingKey(labelSetHash(setOf('web'))))!.value);
    assert.deepEqual(b, { v: 1, id, labels: setOf('web') });
  });

  it('is revived when an allocator asks for the set during the hold', () => {
    const { kv, table } = store();
    const id = allocate(kv, table, setOf('web'));
    let step = startRelease({ id, holdMs: 500 });
    while (step.state.phase !== 'hold') step = stepRelease(step.state, kv.execute(step.op!), 0);
    // The mirror shows the mark, so the allocator goes to the store and clears it.
    const got = runMachine(
      kv,
      startAllocation({ labels: setOf('web'), range: RANGE, now: 0 }, table),
      (s, r) => stepAllocation(s, r, table, 0),
    );
    assert.deepEqual(got.result, { id, outcome: 'revived', conflicts: 0 });
    const end = runMachine(kv, step, (s, r) => stepRelease(s, r, 500));
    assert.equal(end.result, 'revived');
    assert.ok(kv.get(identityKey(id)) !== undefined);
  });

  it('loses to an allocator that adopts the number after the binding went', () => {
    const { kv } = store();
    const labels = setOf('web');
    const empty = new IdentityTable();
    // A reservation nobody bound (an allocator died): the GC frees it, an allocator adopts it.
    const n = 4000;
    kv.execute({
      op: 'create',
      key: identityKey(n),
      value: encodeRecord(identityRecord(n, labels)),
    });
    let rel = startRelease({ id: n, holdMs: 0 });
    while (rel.state.phase !== 'delete-id') rel = stepRelease(rel.state, kv.execute(rel.op!), 0);
    // The allocator reads the reservation and rewrites it before the GC's delete lands.
    let alloc = startAllocation({ labels, range: { min: n, max: n }, now: 0 }, empty);
    while (alloc.state.phase !== 'create-binding') {
      alloc = stepAllocation(alloc.state, kv.execute(alloc.op!), empty, 0);
    }
    rel = stepRelease(rel.state, kv.execute(rel.op!), 0);
    assert.equal(rel.state.result, 'revived');
    alloc = stepAllocation(alloc.state, kv.execute(alloc.op!), empty, 0);
    assert.deepEqual(alloc.state.result, { id: n, outcome: 'converged', conflicts: 1 });
    assert.deepEqual(
      auditIdentityStore(kv.entries().map(([k, e]) => [k, e.value] as const)).violations,
      [],
    );
  });

  it('frees an orphaned reservation and reports a missing one as gone', () => {
    const { kv } = store();
    kv.execute({
      op: 'create',
      key: identityKey(777),
      value: encodeRecord(identityRecord(777, setOf('x'))),
    });
    assert.equal(release(kv, 777).result, 'freed');
    assert.equal(release(kv, 777).result, 'gone');
  });

  it('property: allocators and releases interleaved, with releases started at random, never break the store, and every answer was bound when given', () => {
    // Time is the number of operations so far. Allocations give up after DEADLINE; releases
    // hold for HOLD > DEADLINE, as the service is configured.
    const DEADLINE = 40;
    const HOLD = 60;
    const scenario = fc.record({
      actors: fc.array(
        fc.oneof(
          fc.record({
            kind: fc.constant('alloc' as const),
            set: fc.nat(4),
            atomic: fc.boolean(),
            node: fc.option(fc.constantFrom('n1', 'n2'), { nil: undefined }),
          }),
          fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
        ),
        { minLength: 2, maxLength: 24 },
      ),
      schedule: fc.array(fc.nat(), { maxLength: 400 }),
      size: fc.integer({ min: 4, max: 12 }),
      refuseBatches: fc.boolean(),
    });
    const seen = { freed: 0, revived: 0, answered: 0, timedOut: 0, atomicClaims: 0, held: 0 };
    fc.assert(
      fc.property(scenario, ({ actors, schedule, size, refuseBatches }) => {
        const { kv, table } = store();
        kv.refuseBatches = refuseBatches;
        // Answers given to a node: the node holds them, so no release may free them.
        const held: { labels: string; id: number }[] = [];
        const range = { min: 256, max: 256 + size - 1 };
        let now = 0;
        type Running =
          | { kind: 'alloc'; labels: string; step: AllocationStep; node: string | undefined }
          | { kind: 'release'; step: ReleaseStep };
        const running: (Running | undefined)[] = actors.map(() => undefined);
        const begin = (i: number): Running => {
          const a = actors[i]!;
          if (a.kind === 'alloc') {
            const labels = setOf(`s${a.set}`);
            const step = startAllocation(
              {
                labels,
                range,
                now,
                deadlineMs: DEADLINE,
                atomic: a.atomic,
                ...(a.node === undefined ? {} : { node: a.node }),
              },
              table,
            );
            return { kind: 'alloc', labels, step, node: a.node };
          }
          // The worst GC: it picks any number at all, in use or not.
          const ids = kv.keys('id.>').map((k) => (parseKey(k) as { id: number }).id);
          const id = ids.length === 0 ? 256 : ids[a.pick % ids.length]!;
          return { kind: 'release', step: startRelease({ id, holdMs: HOLD }) };
        };
        const finished = (r: Running): void => {
          if (r.kind === 'release') {
            assert.equal(r.step.state.phase, 'done', r.step.state.error?.message);
            if (r.step.state.result === 'freed') seen.freed++;
            if (r.step.state.result === 'revived') seen.revived++;
            return;
          }
          const st = r.step.state;
          if (st.phase === 'failed') {
            assert.ok(
              st.error?.code === 'IDENTITY_EXHAUSTED' || st.error?.code === 'ALLOCATION_TIMEOUT',
              st.error?.message,
            );
            if (st.error?.code === 'ALLOCATION_TIMEOUT') seen.timedOut++;
            return;
          }
          const b = kv.get(bindingKey(labelSetHash(r.labels)));
          assert.equal(b && decodeBindingRecord(b.value).id, st.result!.id, 'answer was bound');
          seen.answered++;
          if (r.node !== undefined) held.push({ labels: r.labels, id: st.result!.id });
        };
        const advance = (r: Running): void => {
          if (r.kind === 'alloc') {
            r.step = enforceDeadline(r.step, now);
            if (r.step.op === undefined) return finished(r);
          }
          const result = kv.execute(r.step.op!);
          if (r.step.op!.op === 'batch' && result.kind === 'written') seen.atomicClaims++;
          now++;
          if (r.kind === 'alloc') r.step = stepAllocation(r.step.state, result, table, now);
          else r.step = stepRelease(r.step.state, result, now);
          assert.deepEqual(
            auditIdentityStore(kv.entries().map(([k, e]) => [k, e.value] as const)).violations,
            [],
          );
          if (r.step.op === undefined) finished(r);
        };
        for (const who of schedule) {
          const i = who % actors.length;
          const r = (running[i] ??= begin(i));
          if (r.step.op !== undefined) advance(r);
        }
        for (let i = 0; i < actors.length; i++) {
          const r = (running[i] ??= begin(i));
          while (r.step.op !== undefined) advance(r);
        }
        for (const h of held) {
          const b = kv.get(bindingKey(labelSetHash(h.labels)));
          assert.equal(b && decodeBindingRecord(b.value).id, h.id, 'a held answer stays bound');
          seen.held++;
        }
      }),
      { numRuns: 300 },
    );
    for (const [what, n] of Object.entries(seen)) assert.ok(n > 0, `no run saw any ${what}`);
  });
});
