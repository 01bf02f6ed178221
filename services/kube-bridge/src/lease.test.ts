import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';
import { pino } from 'pino';

import { KubeApiError, type KubeClient } from './kube/client.js';
import { KubeLeaderElector, leaseDecision, microTime } from './lease.js';

describe('leaseDecision', () => {
  const me = 'node-a_1';
  it('follows the rules in a table', () => {
    const rows: [string, Parameters<typeof leaseDecision>[0], string][] = [
      [
        'no lease record yet',
        { spec: undefined, observedAtMs: 0, nowMs: 0, me, durationMs: 15_000 },
        'acquire',
      ],
      [
        'released (no holder)',
        { spec: { holderIdentity: null }, observedAtMs: 0, nowMs: 0, me, durationMs: 15_000 },
        'acquire',
      ],
      [
        'mine',
        { spec: { holderIdentity: me }, observedAtMs: 0, nowMs: 99_000, me, durationMs: 15_000 },
        'renew',
      ],
      [
        'held, seen 5 s ago',
        {
          spec: { holderIdentity: 'b', leaseDurationSeconds: 15 },
          observedAtMs: 0,
          nowMs: 5_000,
          me,
          durationMs: 15_000,
        },
        'held',
      ],
      [
        'held, unchanged for 15 s',
        {
          spec: { holderIdentity: 'b', leaseDurationSeconds: 15 },
          observedAtMs: 0,
          nowMs: 15_000,
          me,
          durationMs: 15_000,
        },
        'acquire',
      ],
      [
        "the holder's duration counts",
        {
          spec: { holderIdentity: 'b', leaseDurationSeconds: 60 },
          observedAtMs: 0,
          nowMs: 30_000,
          me,
          durationMs: 15_000,
        },
        'held',
      ],
    ];
    for (const [what, input, expected] of rows) assert.equal(leaseDecision(input), expected, what);
  });

  it('never takes a lease held by another before a whole duration has passed unchanged', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 0, max: 1e9 }),
        fc.integer({ min: 0, max: 200_000 }),
        (seconds, observed, elapsed) => {
          const d = leaseDecision({
            spec: { holderIdentity: 'other', leaseDurationSeconds: seconds },
            observedAtMs: observed,
            nowMs: observed + elapsed,
            me,
            durationMs: 1000,
          });
          assert.equal(d, elapsed >= seconds * 1000 ? 'acquire' : 'held');
        },
      ),
    );
  });

  it('writes MicroTime with six fractional digits', () => {
    assert.equal(microTime(Date.UTC(2025, 0, 2, 3, 4, 5, 678)), '2025-01-02T03:04:05.678000Z');
  });
});

// An in-memory Lease endpoint with the API server's compare-and-set, and a switch that makes one
// client's requests hang (a partitioned leader).
class FakeLeaseApi {
  lease:
    | { metadata: { name: string; resourceVersion: string }; spec: Record<string, unknown> }
    | undefined;
  private rv = 0;

  client(o: { hung: () => boolean }): Pick<KubeClient, 'request'> {
    return {
      request: async <T>(method: string, _path: string, body?: unknown): Promise<T> => {
        while (o.hung()) await new Promise((r) => setTimeout(r, 10));
        const fail = (status: number): never => {
          throw new KubeApiError(method, _path, status, '', 'fake');
        };
        if (method === 'GET') {
          if (!this.lease) fail(404);
          return structuredClone(this.lease) as T;
        }
        const b = body as { metadata: { resourceVersion?: string }; spec: Record<string, unknown> };
        if (method === 'POST') {
          if (this.lease) fail(409);
        } else if (b.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) {
          fail(409);
        }
        this.lease = {
          metadata: { name: 'l', resourceVersion: String(++this.rv) },
          spec: structuredClone(b.spec),
        };
        return structuredClone(this.lease) as T;
      },
    };
  }
}

describe('KubeLeaderElector', () => {
  it('one leader at a time; a hung leader steps down before a standby takes over', async () => {
    const api = new FakeLeaseApi();
    const log = pino({ level: 'silent' });
    const events: { who: string; what: 'start' | 'stop'; at: number }[] = [];
    let hangA = false;
    const make = (who: string, hung: () => boolean): KubeLeaderElector =>
      new KubeLeaderElector({
        client: api.client({ hung }),
        namespace: 'kube-system',
        name: 'l',
        identity: who,
        durationMs: 400,
        renewDeadlineMs: 250,
        retryPeriodMs: 40,
        log,
        onStarted: () => events.push({ who, what: 'start', at: performance.now() }),
        onStopped: () => events.push({ who, what: 'stop', at: performance.now() }),
      });
    const a = make('a', () => hangA);
    const b = make('b', () => false);
    try {
      a.start();
      await new Promise((r) => setTimeout(r, 150));
      b.start();
      await new Promise((r) => setTimeout(r, 600));
      assert.ok(a.isLeader && !b.isLeader, 'the first keeps leading while it renews');
      hangA = true;
      // Timers run late on a loaded machine: poll rather than sleep a fixed time.
      for (let waited = 0; !(b.isLeader && !a.isLeader) && waited < 10_000; waited += 20) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(!a.isLeader && b.isLeader, 'the standby took over');
      const aStop = events.find((e) => e.who === 'a' && e.what === 'stop');
      const bStart = events.find((e) => e.who === 'b' && e.what === 'start');
      assert.ok(aStop && bStart);
      assert.ok(aStop.at < bStart.at, 'the old leader stopped before the new one started');
    } finally {
      // Also when an assertion failed: a hung elector left running would keep the test alive.
      hangA = false;
      await b.stop();
      await a.stop();
    }
  });
});
