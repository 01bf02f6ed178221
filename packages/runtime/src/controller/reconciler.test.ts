import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Registry } from 'prom-client';
import { pino } from 'pino';

import { FencedError } from './errors.js';
import {
  Reconciler,
  backoffDelay,
  createReconcilerMetrics,
  type ReconcilerOptions,
} from './reconciler.js';

const silent = pino({ level: 'silent' });

/** A deferred the test resolves by hand: a pass that stays running until told. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => {};
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

function make(
  reconcile: ReconcilerOptions['reconcile'],
  extra: Partial<ReconcilerOptions> = {},
): { loop: Reconciler; registry: Registry } {
  const registry = new Registry();
  const loop = new Reconciler({
    name: 'test',
    log: silent,
    metrics: createReconcilerMetrics(registry),
    coalesceMs: 5,
    backoff: { baseMs: 5, maxMs: 20 },
    reconcile,
    ...extra,
  });
  return { loop, registry };
}

async function metric(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) =>
    Object.entries(labels).every(([k, want]) => x.labels[k] === want),
  );
  return v?.value ?? 0;
}

describe('backoffDelay', () => {
  it('doubles per failure up to the maximum, with jitter within [0.8, 1.2)', () => {
    const b = { baseMs: 100, maxMs: 1000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 40].map((n) => backoffDelay(n, b, () => 0.5)),
      [100, 200, 400, 800, 1000, 1000],
    );
    assert.equal(
      backoffDelay(1, b, () => 0),
      80,
    );
    assert.equal(
      backoffDelay(1, b, () => 0.999999),
      120,
    );
    assert.equal(
      backoffDelay(0, b, () => 0.5),
      100,
    );
  });
});

describe('Reconciler', () => {
  it('coalesces a burst of triggers into one pass', async () => {
    let passes = 0;
    const { loop } = make(() => {
      passes++;
    });
    loop.start();
    await loop.idle();
    assert.equal(passes, 1);
    for (let i = 0; i < 50; i++) loop.trigger();
    await loop.idle();
    assert.equal(passes, 2);
    await loop.close();
  });

  it('runs exactly one more pass for triggers that arrive during a pass', async () => {
    let passes = 0;
    const first = gate();
    const { loop } = make(async () => {
      passes++;
      if (passes === 1) await first.promise;
    });
    loop.start();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(passes, 1);
    loop.trigger();
    loop.trigger();
    loop.trigger();
    first.open();
    await loop.idle();
    assert.equal(passes, 2);
    await loop.close();
  });

  it('retries a failing pass with growing, jittered backoff until it succeeds', async () => {
    const at: number[] = [];
    const { loop, registry } = make(
      () => {
        at.push(Date.now());
        if (at.length < 4) throw new Error('not yet');
        return { changes: 3 };
      },
      { backoff: { baseMs: 10, maxMs: 40 }, random: () => 0.5 },
    );
    loop.start();
    while (at.length < 4) await new Promise((r) => setTimeout(r, 5));
    await loop.idle();
    assert.equal(loop.failures, 0);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    // 10, 20, 40 ms (jitter 0.5 → factor 1.0); timers fire no earlier than asked
    assert.ok(gaps[0]! >= 9 && gaps[1]! >= 19 && gaps[2]! >= 39, `gaps ${gaps.join(',')}`);
    assert.equal(
      await metric(registry, 'ciliate_controller_passes_total', { result: 'failed' }),
      3,
    );
    assert.equal(await metric(registry, 'ciliate_controller_passes_total', { result: 'ok' }), 1);
    assert.equal(await metric(registry, 'ciliate_controller_drift_changes_total', {}), 3);
    await loop.close();
  });

  it('stops by itself and reports when a pass finds itself fenced', async () => {
    let passes = 0;
    let fenced: FencedError | undefined;
    const { loop, registry } = make(
      () => {
        passes++;
        throw new FencedError('state', 3, 7);
      },
      { onFenced: (e) => (fenced = e) },
    );
    loop.start();
    await loop.idle();
    assert.equal(loop.active, false);
    assert.equal(fenced?.stored, 7);
    loop.trigger(0);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(passes, 1);
    assert.equal(
      await metric(registry, 'ciliate_controller_passes_total', { result: 'fenced' }),
      1,
    );
  });

  it('a pass fenced under an earlier term does not stop the loop started again since', async () => {
    const first = gate();
    let passes = 0;
    const { loop } = make(async () => {
      passes++;
      if (passes === 1) {
        await first.promise;
        throw new FencedError('state', 1);
      }
    });
    loop.start();
    await new Promise((r) => setTimeout(r, 20));
    loop.stop(); // lease lost
    loop.start(); // and acquired again, while the old pass still runs
    first.open();
    await loop.idle();
    await new Promise((r) => setTimeout(r, 20));
    await loop.idle();
    assert.equal(loop.active, true);
    assert.ok(passes >= 2);
    await loop.close();
  });

  it('runs a resync pass with no trigger, and none once stopped', async () => {
    let passes = 0;
    const { loop } = make(
      () => {
        passes++;
      },
      { resyncMs: 15 },
    );
    loop.start();
    while (passes < 3) await new Promise((r) => setTimeout(r, 5));
    await loop.close();
    const stoppedAt = passes;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(passes, stoppedAt);
  });

  it('ignores triggers while inactive', async () => {
    let passes = 0;
    const { loop } = make(() => {
      passes++;
    });
    loop.trigger(0);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(passes, 0);
  });
});
