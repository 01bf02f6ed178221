import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { WorkQueue } from './queue.js';

describe('WorkQueue', () => {
  it('queues a key once, and again when added while being worked on', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    assert.equal(q.length, 2);
    assert.equal(await q.take(), 'a');
    q.add('a'); // while active
    assert.equal(await q.take(), 'b', 'an active key is not handed out twice');
    q.done('a');
    assert.equal(await q.take(), 'a', 'handed out again after done');
    q.done('a');
    q.done('b');
    assert.equal(q.pending, 0);
  });

  it('hands a key added later to a waiting worker, and undefined once closed', async () => {
    const q = new WorkQueue();
    const waiting = q.take();
    q.add('x');
    assert.equal(await waiting, 'x');
    const last = q.take();
    q.close();
    assert.equal(await last, undefined);
  });

  it('retries a failed key after a backoff that doubles', async () => {
    const q = new WorkQueue({ baseMs: 5, maxMs: 20 });
    q.add('k');
    await q.take();
    assert.equal(q.retry('k'), 5);
    q.done('k');
    assert.equal(q.waiting('k'), true, 'waiting out its backoff');
    assert.equal(await q.take(), 'k');
    assert.equal(q.waiting('k'), false);
    assert.equal(q.retry('k'), 10);
    q.done('k');
    assert.equal(await q.take(), 'k');
    q.forget('k');
    assert.equal(q.retry('k'), 5, 'a success starts the backoff over');
    q.done('k');
    q.close();
  });

  it('never hands one key to two workers and loses no key (random schedules)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 4 }),
        async (adds, workers) => {
          const q = new WorkQueue();
          const active = new Set<string>();
          const lastAdd = new Map<string, number>();
          const lastDone = new Map<string, number>();
          let clock = 0;
          const worker = async (): Promise<void> => {
            for (;;) {
              const key = await q.take();
              if (key === undefined) return;
              assert.ok(!active.has(key), `${key} handed out twice`);
              active.add(key);
              const started = ++clock;
              await new Promise((r) => setImmediate(r));
              active.delete(key);
              lastDone.set(key, started);
              q.done(key);
            }
          };
          const running = Array.from({ length: workers }, () => worker());
          for (const key of adds) {
            lastAdd.set(key, ++clock);
            q.add(key);
            if (clock % 3 === 0) await new Promise((r) => setImmediate(r));
          }
          while (q.pending > 0) await new Promise((r) => setImmediate(r));
          q.close();
          await Promise.all(running);
          for (const [key, added] of lastAdd) {
            assert.ok((lastDone.get(key) ?? 0) > added, `${key} was worked on after its last add`);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
