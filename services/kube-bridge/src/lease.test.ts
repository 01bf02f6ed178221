import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { leaseDecision, microTime } from './lease.js';

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
