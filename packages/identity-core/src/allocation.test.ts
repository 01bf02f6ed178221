import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import {
  IdentityTable,
  allocationError,
  planAllocate,
  probeCandidate,
  probeSequence,
  startAllocation,
  stepAllocation,
  type AllocationState,
  type AllocationStep,
  type AllocationView,
} from './allocation.js';
import {
  auditIdentityStore,
  bindingKey,
  bindingRecord,
  decodeBindingRecord,
  encodeRecord,
  identityKey,
  identityRecord,
} from './kv.js';
import { labelSetHash } from './labels.js';
import { MemoryKv, runMachine } from './memory-kv.js';
import type { IdentityRange } from './numeric.js';

const RANGE: IdentityRange = { min: 256, max: 65535 };
const setOf = (app: string): string => `k8s:app=${app};k8s:io.kubernetes.pod.namespace=default;`;

/** A bucket plus a mirror kept current by a watch, as the service has. */
function store(): { kv: MemoryKv; table: IdentityTable } {
  const kv = new MemoryKv();
  const table = new IdentityTable();
  kv.onChange((key, value) => table.applyKv(key, value));
  return { kv, table };
}

function allocate(
  kv: MemoryKv,
  view: AllocationView,
  labels: string,
  extra: { range?: IdentityRange; node?: string; now?: number; atomic?: boolean } = {},
): AllocationState {
  const now = extra.now ?? 0;
  return runMachine(
    kv,
    startAllocation(
      {
        labels,
        range: extra.range ?? RANGE,
        now,
        ...(extra.node === undefined ? {} : { node: extra.node }),
        ...(extra.atomic === undefined ? {} : { atomic: extra.atomic }),
      },
      view,
    ),
    (s, r) => stepAllocation(s, r, view, now),
  );
}

/** Invariants of the bucket that must hold after every single operation. */
function checkStore(kv: MemoryKv): void {
  const audit = auditIdentityStore(kv.entries().map(([k, e]) => [k, e.value] as const));
  assert.deepEqual(audit.violations, []);
}

describe('planAllocate', () => {
  it('claims the first free candidate of the label set’s probe sequence', () => {
    const labels = setOf('web');
    const plan = planAllocate({ labels, range: RANGE, view: new IdentityTable() });
    const seq = probeSequence(labelSetHash(labels), RANGE);
    assert.equal(plan.kind, 'claim');
    assert.equal(plan.kind === 'claim' && plan.id, probeCandidate(seq, RANGE, 0));
    assert.deepEqual(plan.kind === 'claim' && plan.writes.map((w) => [w.op, 'key' in w && w.key]), [
      ['create', identityKey(probeCandidate(seq, RANGE, 0))],
      ['create', bindingKey(labelSetHash(labels))],
    ]);
  });

  it('skips numbers taken in the view or known taken, and starts where told', () => {
    const labels = setOf('web');
    const seq = probeSequence(labelSetHash(labels), RANGE);
    const [c0, c1, c2] = [0, 1, 2].map((i) => probeCandidate(seq, RANGE, i));
    const view = new IdentityTable();
    view.setIdentity(c0!, identityRecord(c0!, setOf('other')));
    const plan = planAllocate({ labels, range: RANGE, view, skip: new Set([c1!]) });
    assert.deepEqual(plan.kind === 'claim' && [plan.id, plan.probe], [c2, 2]);
    const later = planAllocate({ labels, range: RANGE, view, fromProbe: 5 });
    assert.equal(later.kind === 'claim' && later.probe, 5);
  });

  it('returns the existing binding', () => {
    const labels = setOf('web');
    const view = new IdentityTable();
    view.setBinding(labelSetHash(labels), bindingRecord(4242, labels));
    assert.deepEqual(planAllocate({ labels, range: RANGE, view }), {
      kind: 'existing',
      id: 4242,
      hash: labelSetHash(labels),
    });
  });

  it('reports exhaustion with a coded error', () => {
    const range = { min: 256, max: 259 };
    const view = new IdentityTable();
    for (let id = 256; id <= 259; id++) view.setIdentity(id, identityRecord(id, setOf(`x${id}`)));
    const plan = planAllocate({ labels: setOf('web'), range, view });
    assert.equal(plan.kind, 'exhausted');
    assert.equal(plan.kind === 'exhausted' && plan.error.code, 'IDENTITY_EXHAUSTED');
    assert.match(
      plan.kind === 'exhausted' ? plan.error.message : '',
      /identity range 256-259 is exhausted: all 4 numbers are in use/,
    );
  });

  it('property: a probe sequence visits every number of the range exactly once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3000 }),
        fc.integer({ min: 256, max: 70000 }),
        fc.string(),
        (size, min, text) => {
          const range = { min, max: min + size - 1 };
          const seq = probeSequence(labelSetHash(text), range);
          const seen = new Set<number>();
          for (let i = 0; i < size; i++) seen.add(probeCandidate(seq, range, i));
          assert.equal(seen.size, size);
          assert.ok([...seen].every((n) => n >= range.min && n <= range.max));
        },
      ),
    );
  });
});

describe('allocation machine, one allocator at a time', () => {
  it('is idempotent: the same set gets the same number, others another', () => {
    const { kv, table } = store();
    const a = allocate(kv, table, setOf('web'));
    assert.equal(a.phase, 'done');
    assert.equal(a.result?.outcome, 'created');
    const again = allocate(kv, table, setOf('web'));
    assert.deepEqual(again.result, { id: a.result.id, outcome: 'existing', conflicts: 0 });
    // Answered from the mirror without touching the store.
    assert.equal(again.steps, 0);
    const cold = allocate(kv, new IdentityTable(), setOf('web'));
    assert.equal(cold.result?.id, a.result.id);
    const b = allocate(kv, table, setOf('db'));
    assert.notEqual(b.result?.id, a.result?.id);
    checkStore(kv);
  });

  it('the asking node holds the number before the answer: as the holder of the binding it created, else by a reference', () => {
    const { kv, table } = store();
    const s = allocate(kv, table, setOf('web'), { node: 'worker-1.lab' });
    assert.equal(s.phase, 'done');
    const b = decodeBindingRecord(kv.get(bindingKey(labelSetHash(setOf('web'))))!.value);
    assert.equal(b.holder, 'worker-1.lab');
    assert.equal(kv.get(`ref.${s.result!.id}.worker-1_lab`), undefined);
    // id, binding: two writes for a new identity
    assert.equal(kv.counts.create, 2);
    assert.equal(kv.counts.put, 0);
    const other = allocate(kv, table, setOf('web'), { node: 'worker-2' });
    assert.equal(other.result?.outcome, 'existing');
    assert.ok(kv.get(`ref.${s.result!.id}.worker-2`) !== undefined);
  });

  it('two allocators racing for one set converge on one number (step by step)', () => {
    const kv = new MemoryKv();
    const empty = new IdentityTable();
    const labels = setOf('web');
    const n = probeCandidate(probeSequence(labelSetHash(labels), RANGE), RANGE, 0);
    let a: AllocationStep = startAllocation({ labels, range: RANGE, now: 0 }, empty);
    let b: AllocationStep = startAllocation({ labels, range: RANGE, now: 0 }, empty);
    const run = (who: 'A' | 'B', expect: string): void => {
      const s = who === 'A' ? a : b;
      const op = s.op!;
      assert.equal(`${op.op} ${'key' in op ? op.key : ''}`, expect, `${who} ${s.state.phase}`);
      const next = stepAllocation(s.state, kv.execute(op), empty, 0);
      if (who === 'A') a = next;
      else b = next;
    };
    // who, the operation it must ask for next
    const spec: ['A' | 'B', string][] = [
      ['A', `get ${bindingKey(labelSetHash(labels))}`], // missing
      ['B', `get ${bindingKey(labelSetHash(labels))}`], // missing
      ['A', `create id.${n}`], // written: A reserves n
      ['B', `create id.${n}`], // conflict: same hash, same first candidate
      ['B', `get id.${n}`], // same labels: adopt
      ['B', `update id.${n}`], // rewrite so a stale GC delete would fail
      ['A', `create ${bindingKey(labelSetHash(labels))}`], // written: bound
      ['B', `create ${bindingKey(labelSetHash(labels))}`], // conflict
      ['B', `get ${bindingKey(labelSetHash(labels))}`], // bound to n: B's own number
    ];
    for (const [who, expect] of spec) run(who, expect);
    assert.deepEqual(a.state.result, { id: n, outcome: 'created', conflicts: 0 });
    assert.deepEqual(b.state.result, { id: n, outcome: 'converged', conflicts: 2 });
    checkStore(kv);
  });

  it('with an atomic store, claims number and binding (naming the node) in one batch', () => {
    const { kv, table } = store();
    const s = allocate(kv, table, setOf('web'), { node: 'worker-1', atomic: true });
    assert.equal(s.phase, 'done');
    assert.deepEqual(s.result, { id: s.result!.id, outcome: 'created', conflicts: 0 });
    // read binding, one batch: nothing else
    assert.equal(s.steps, 2);
    assert.deepEqual(
      { ...kv.counts },
      { get: 1, create: 0, update: 0, put: 0, delete: 0, keys: 0, wait: 0, batch: 1 },
    );
    assert.equal(
      decodeBindingRecord(kv.get(bindingKey(labelSetHash(setOf('web'))))!.value).holder,
      'worker-1',
    );
    assert.equal(
      decodeBindingRecord(kv.get(bindingKey(labelSetHash(setOf('web'))))!.value).id,
      s.result.id,
    );
    checkStore(kv);
  });

  it('with an atomic store, two racers for one set: the loser writes nothing and reads the winner', () => {
    const kv = new MemoryKv();
    const empty = new IdentityTable();
    const labels = setOf('web');
    const start = (): AllocationStep =>
      startAllocation({ labels, range: RANGE, now: 0, node: 'n1', atomic: true }, empty);
    let a = start();
    let b = start();
    const step = (x: AllocationStep): AllocationStep =>
      stepAllocation(x.state, kv.execute(x.op!), empty, 0);
    a = step(a); // get binding: missing
    b = step(b); // get binding: missing
    a = step(a); // batch: written
    assert.equal(a.state.phase, 'done');
    const before = kv.revision;
    b = step(b); // batch: conflict, nothing written
    assert.equal(kv.revision, before);
    assert.equal(b.op?.op, 'get');
    b = step(b); // the binding: A's number
    b = step(b); // B's node reference
    assert.deepEqual(b.state.result, { id: a.state.result!.id, outcome: 'existing', conflicts: 1 });
    checkStore(kv);
  });

  it('a batch the store refuses falls back to the sequential steps', () => {
    const { kv, table } = store();
    kv.refuseBatches = true;
    const s = allocate(kv, table, setOf('web'), { node: 'n1', atomic: true });
    assert.equal(s.result?.outcome, 'created');
    assert.equal(kv.counts.batch, 1);
    assert.equal(kv.counts.create, 2);
    assert.equal(kv.counts.put, 0);
    checkStore(kv);
  });

  it('revives a binding the GC is about to release', () => {
    const { kv, table } = store();
    const labels = setOf('web');
    kv.execute({
      op: 'put',
      key: identityKey(300),
      value: encodeRecord(identityRecord(300, labels)),
    });
    const key = bindingKey(labelSetHash(labels));
    kv.execute({ op: 'put', key, value: encodeRecord(bindingRecord(300, labels, true)) });
    const s = allocate(kv, table, labels);
    assert.deepEqual(s.result, { id: 300, outcome: 'revived', conflicts: 0 });
    assert.equal(decodeBindingRecord(kv.get(key)!.value).releasing, undefined);
  });

  it('reports exhaustion, and still answers sets that have a number', () => {
    const { kv, table } = store();
    const range = { min: 256, max: 258 };
    const ids = ['a', 'b', 'c'].map((x) => allocate(kv, table, setOf(x), { range }).result?.id);
    assert.deepEqual([...ids].sort(), [256, 257, 258]);
    const full = allocate(kv, table, setOf('d'), { range });
    assert.equal(full.phase, 'failed');
    assert.equal(allocationError(full)?.code, 'IDENTITY_EXHAUSTED');
    assert.equal(allocate(kv, table, setOf('b'), { range }).result?.id, ids[1]);
  });

  it('refuses to merge two label sets whose hashes collide', () => {
    const kv = new MemoryKv();
    const labels = setOf('web');
    // Forge a binding at web's hash holding other labels: what a SHA-256 collision would look like.
    kv.execute({
      op: 'put',
      key: bindingKey(labelSetHash(labels)),
      value: encodeRecord(bindingRecord(300, setOf('db'))),
    });
    const s = allocate(kv, new IdentityTable(), labels);
    assert.equal(s.error?.code, 'HASH_COLLISION');
  });

  it('gives no answer after its deadline', () => {
    const kv = new MemoryKv();
    const view = new IdentityTable();
    const first = startAllocation(
      { labels: setOf('web'), range: RANGE, now: 0, deadlineMs: 100 },
      view,
    );
    const s = stepAllocation(first.state, kv.execute(first.op!), view, 101);
    assert.equal(s.op, undefined);
    assert.equal(s.state.error?.code, 'ALLOCATION_TIMEOUT');
  });

  it('fails a corrupt record with INVALID_RECORD instead of throwing', () => {
    const kv = new MemoryKv();
    const labels = setOf('web');
    kv.execute({ op: 'put', key: bindingKey(labelSetHash(labels)), value: '{"v":1,"id":"x"}' });
    const s = allocate(kv, new IdentityTable(), labels);
    assert.equal(s.error?.code, 'INVALID_RECORD');
  });

  it('property: sequential allocations never share a number and are idempotent', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 60 }), (picks) => {
        const { kv, table } = store();
        const got = new Map<number, number>();
        for (const p of picks) {
          const id = allocate(kv, table, setOf(`s${p}`)).result!.id;
          if (got.has(p)) assert.equal(id, got.get(p));
          else {
            assert.ok(![...got.values()].includes(id));
            got.set(p, id);
          }
        }
        checkStore(kv);
      }),
    );
  });
});

describe('allocation machine, many allocators interleaved', () => {
  interface Actor {
    readonly labels: string;
    readonly view: AllocationView;
    step: AllocationStep;
    killed: boolean;
  }

  const scenario = fc.record({
    sets: fc.integer({ min: 1, max: 5 }),
    extra: fc.integer({ min: 0, max: 12 }),
    refuseBatches: fc.boolean(),
    actors: fc.array(
      fc.record({ set: fc.nat(), stale: fc.boolean(), startAt: fc.nat(60), atomic: fc.boolean() }),
      { minLength: 2, maxLength: 32 },
    ),
    schedule: fc.array(fc.record({ who: fc.nat(), kill: fc.integer({ min: 0, max: 7 }) }), {
      maxLength: 400,
    }),
  });

  it('property: zero duplicates, and every caller of one set gets the same number, whatever the interleaving and whoever dies', () => {
    // What the runs went through, to show the property was exercised and not vacuous.
    const seen = { conflicts: 0, converged: 0, orphans: 0, kills: 0, atomic: 0, sequential: 0 };
    fc.assert(
      fc.property(scenario, ({ sets, extra, refuseBatches, actors: specs, schedule }) => {
        const { kv, table } = store();
        kv.refuseBatches = refuseBatches;
        const range = { min: 256, max: 256 + sets + extra };
        const actors: (Actor | undefined)[] = specs.map(() => undefined);
        const startActor = (i: number): Actor => {
          const spec = specs[i]!;
          const labels = setOf(`s${spec.set % sets}`);
          // A stale view is a mirror that stopped updating when the actor started.
          const view = spec.stale ? IdentityTable.fromJSON(table.toJSON()) : table;
          const actor: Actor = {
            labels,
            view,
            step: startAllocation(
              { labels, range, now: 0, maxSteps: 10_000, atomic: spec.atomic },
              view,
            ),
            killed: false,
          };
          actors[i] = actor;
          return actor;
        };
        schedule.forEach(({ who, kill }, t) => {
          const i = who % specs.length;
          if (actors[i] === undefined && specs[i]!.startAt > t) return;
          const actor = actors[i] ?? startActor(i);
          if (actor.killed || actor.step.op === undefined) return;
          if (kill === 0) {
            seen.kills++;
            actor.killed = true; // a replica dies between two operations
            return;
          }
          actor.step = stepAllocation(actor.step.state, kv.execute(actor.step.op), actor.view, 0);
          checkStore(kv);
        });
        // Survivors (and those that never started) run to the end, round robin.
        specs.forEach((_, i) => actors[i] ?? startActor(i));
        for (let busy = true; busy;) {
          busy = false;
          for (const actor of actors) {
            if (actor === undefined || actor.killed || actor.step.op === undefined) continue;
            actor.step = stepAllocation(actor.step.state, kv.execute(actor.step.op), actor.view, 0);
            checkStore(kv);
            busy = true;
          }
        }
        const answers = new Map<string, number>();
        for (const actor of actors) {
          if (actor === undefined || actor.killed) continue;
          const s = actor.step.state;
          if (s.phase === 'failed') {
            // Only a range too small for the sets plus abandoned reservations may refuse.
            assert.equal(s.error?.code, 'IDENTITY_EXHAUSTED', s.error?.message);
            continue;
          }
          assert.equal(s.phase, 'done');
          const id = s.result!.id;
          seen.conflicts += s.result!.conflicts;
          if (s.result!.outcome === 'converged') seen.converged++;
          if (s.result!.outcome === 'created') {
            if (s.atomic) seen.atomic++;
            else seen.sequential++;
          }
          if (s.result!.orphan !== undefined) seen.orphans++;
          const bound = kv.get(bindingKey(labelSetHash(actor.labels)));
          assert.equal(bound && decodeBindingRecord(bound.value).id, id, 'answer is the binding');
          const prev = answers.get(actor.labels);
          if (prev !== undefined) assert.equal(id, prev, `two numbers for ${actor.labels}`);
          answers.set(actor.labels, id);
        }
      }),
      { numRuns: 300 },
    );
    for (const [what, n] of Object.entries(seen)) assert.ok(n > 0, `no run saw any ${what}`);
  });
});
