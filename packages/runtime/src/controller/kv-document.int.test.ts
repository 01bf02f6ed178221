import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

import { startSecureNats, type SecureNats } from '../testing/secure-nats.js';
import { KvDocument } from './kv-document.js';

interface Counter {
  n: number;
  by: string[];
}

describe('KvDocument: compare-and-set with group commit', () => {
  let nats: SecureNats;
  let nc: NatsConnection;
  let kv: KV;
  before(async () => {
    nats = await startSecureNats();
    // The test's own bucket, which no component owns: only the admin may create it.
    nc = await nats.connect();
    kv = await new Kvm(nc).create('kvdoc-test', { history: 1 });
  });
  after(async () => {
    await nc?.close();
    await nats?.close();
  });

  it('loses no update when two writers with their own copies race on one key', async () => {
    let conflicts = 0;
    const make = () =>
      new KvDocument<Counter>({
        kv,
        key: 'counter',
        decode: (v) => v as Counter,
        onConflict: () => conflicts++,
      });
    const a = make();
    const b = make();
    const inc = (doc: KvDocument<Counter>, who: string) =>
      doc.apply((cur) => {
        const next = { n: (cur?.n ?? 0) + 1, by: [...(cur?.by ?? []), who] };
        return { next, result: next.n };
      });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? inc(a, `a${i}`) : inc(b, `b${i}`))),
    );
    const stored = (await a.read()).state!;
    assert.equal(stored.n, 200);
    assert.equal(new Set(stored.by).size, 200);
    // Every answer is a distinct count: no two operations saw the same state.
    assert.equal(new Set(results).size, 200);
    assert.ok(conflicts > 0, 'the writers never collided; the test proves nothing');
  });

  it('fails one operation of a batch without failing the others', async () => {
    const doc = new KvDocument<Counter>({ kv, key: 'batch', decode: (v) => v as Counter });
    const ok = (who: string) =>
      doc.apply((cur) => ({
        next: { n: (cur?.n ?? 0) + 1, by: [...(cur?.by ?? []), who] },
        result: who,
      }));
    const bad = doc.apply<string>(() => {
      throw new Error('refused');
    });
    const all = await Promise.allSettled([ok('x'), bad, ok('y')]);
    assert.deepEqual(
      all.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.equal((await doc.read()).state?.n, 2);
  });

  it('answers a no-op from a stale copy only after proving it current', async () => {
    const a = new KvDocument<Counter>({ kv, key: 'stale', decode: (v) => v as Counter });
    const b = new KvDocument<Counter>({ kv, key: 'stale', decode: (v) => v as Counter });
    await a.apply(() => ({ next: { n: 1, by: ['a'] }, result: undefined }));
    await b.read();
    await a.apply((cur) => ({
      next: { n: cur!.n + 1, by: [...cur!.by, 'a2'] },
      result: undefined,
    }));
    // b's copy says n = 1; a read-only operation must still see n = 2.
    const seen = await b.apply((cur) => ({ next: cur, result: cur?.n }));
    assert.equal(seen, 2);
  });
});
