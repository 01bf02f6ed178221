import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { sleep, waitFor } from '@ciliate/testkit';

import { startSecureNatsCluster, type SecureNatsCluster } from './testing/secure-nats.js';

import { startProbe, type Probe } from './testing.int-helpers.js';

interface LeaseEvent {
  event: 'acquired' | 'lost';
  token?: number;
  reason?: string;
  pid: number;
  at: number;
}

const TTL_MS = 1500;
const ROUNDS = 6;

describe('lease on JetStream KV (three-server cluster, three contenders)', () => {
  let cluster: SecureNatsCluster;
  const all: Probe[] = [];
  before(async () => {
    cluster = await startSecureNatsCluster();
  });
  after(async () => {
    for (const p of all) await p.proc.kill('SIGKILL');
    await cluster?.close();
  });

  it('elects a new holder within the lease time after the holder is killed, and never shares a fencing token', async () => {
    const env = {
      // the probe service runs as the admin (see fixtures/probe-service.ts)
      ...cluster.env({ role: 'admin' }),
      CILIATE_KV_REPLICAS: '3',
      PROBE_LEASE: 'singleton-test',
      PROBE_LEASE_TTL: `${TTL_MS}ms`,
    };
    const spawn = async (): Promise<Probe> => {
      const p = await startProbe(env);
      all.push(p);
      return p;
    };
    const live = new Set<Probe>([await spawn(), await spawn(), await spawn()]);
    const killedAt = new Map<number, number>();
    const events = (): LeaseEvent[] =>
      all.flatMap((p) =>
        p.proc.jsonLines<LeaseEvent>().filter((l) => l.event === 'acquired' || l.event === 'lost'),
      );
    /** The pid that acquired last and has neither lost nor been killed since. */
    const holder = (): number | undefined => {
      const byPid = new Map<number, LeaseEvent>();
      for (const e of events().sort((a, b) => a.at - b.at)) byPid.set(e.pid, e);
      const holders = [...byPid.values()].filter(
        (e) => e.event === 'acquired' && !killedAt.has(e.pid),
      );
      assert.ok(holders.length <= 1, `two live holders at once: ${JSON.stringify(holders)}`);
      return holders[0]?.pid;
    };

    const takeovers: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const current = await waitFor('a holder', holder, { timeoutMs: 3 * TTL_MS });
      // Let the holder renew a few times, then kill it at a random point of its renewal cycle.
      await sleep(TTL_MS / 2 + Math.random() * TTL_MS);
      const victim = [...live].find((p) => p.proc.pid === current)!;
      await victim.proc.kill('SIGKILL');
      const t0 = Date.now();
      killedAt.set(current, t0);
      live.delete(victim);
      const next = await waitFor(
        'a new holder',
        () => {
          const h = holder();
          return h !== undefined && h !== current ? h : undefined;
        },
        { timeoutMs: 3 * TTL_MS, intervalMs: 10 },
      );
      const acquired = events().find(
        (e) => e.pid === next && e.event === 'acquired' && e.at >= t0 - TTL_MS,
      )!;
      takeovers.push(acquired.at - t0);
      live.add(await spawn());
    }

    // Every takeover happened within the lease time of the kill.
    for (const ms of takeovers)
      assert.ok(
        ms <= TTL_MS,
        `takeover took ${ms} ms (lease ${TTL_MS} ms): ${takeovers.join(', ')}`,
      );

    // Fencing tokens: one per acquisition, never shared, growing with each new holder.
    const acquisitions = events()
      .filter((e) => e.event === 'acquired')
      .sort((a, b) => a.at - b.at);
    assert.ok(acquisitions.length >= ROUNDS + 1);
    const tokens = acquisitions.map((e) => e.token!);
    assert.equal(new Set(tokens).size, tokens.length, `a token was shared: ${tokens.join(', ')}`);
    for (let i = 1; i < tokens.length; i++)
      assert.ok(tokens[i]! > tokens[i - 1]!, `tokens grow: ${tokens.join(', ')}`);

    // Holding intervals never overlap: each ends (lost or killed) before the next begins.
    for (let i = 1; i < acquisitions.length; i++) {
      const prev = acquisitions[i - 1]!;
      const lost = events().find(
        (e) => e.pid === prev.pid && e.event === 'lost' && e.at >= prev.at,
      )?.at;
      const end = Math.min(lost ?? Infinity, killedAt.get(prev.pid) ?? Infinity);
      assert.ok(
        end <= acquisitions[i]!.at,
        `holder ${prev.pid} (token ${prev.token}) overlapped the next one`,
      );
    }
    console.log(`takeover after kill (ms): ${takeovers.join(', ')}; lease ${TTL_MS} ms`);
  });

  it('hands the lease over at once when the holder stops gracefully', async () => {
    const env = {
      // the probe service runs as the admin (see fixtures/probe-service.ts)
      ...cluster.env({ role: 'admin' }),
      CILIATE_KV_REPLICAS: '3',
      PROBE_LEASE: 'graceful-test',
      PROBE_LEASE_TTL: '5s',
    };
    const a = await startProbe(env);
    all.push(a);
    await waitFor(
      'a to hold',
      () => (a.proc.jsonLines<LeaseEvent>().some((e) => e.event === 'acquired') ? true : undefined),
      { timeoutMs: 5000 },
    );
    const b = await startProbe(env);
    all.push(b);
    const t0 = Date.now();
    assert.equal(await a.proc.kill('SIGTERM'), 0);
    const got = await waitFor(
      'b to take over',
      () => b.proc.jsonLines<LeaseEvent>().find((e) => e.event === 'acquired'),
      { timeoutMs: 5000 },
    );
    assert.ok(
      got.at - t0 < 2000,
      `released lease taken after ${got.at - t0} ms, not after the 5 s lease time`,
    );
  });
});
