// The request limits every service gets from the runtime, on a real nats-server with the probe
// service as a real process: a request over --max-request-bytes and requests beyond
// --max-inflight-requests are answered at once with a coded error, counted, and leave the
// service serving.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { CiliateError, subjects } from '@ciliate/contracts';
import { waitFor } from '@ciliate/testkit';
import { z } from 'zod';

import { discoverInstances, fetchHealth } from './discovery.js';
import { createRpcClient } from './rpc.js';
import { PROBE_PRINCIPAL, getStatus, startProbe } from './testing.int-helpers.js';
import { startSecureNats, type SecureNats } from './testing/secure-nats.js';
import { disabledTracing } from './tracing.js';

const EchoReply = z.object({ text: z.string(), by: z.string() });
const ERROR_CODE_HEADER = 'Nats-Service-Error-Code';

async function metricsOf(httpAddress: string): Promise<string> {
  return (await fetch(`http://${httpAddress}/metrics`)).text();
}

/** The value of one sample whose labels include every one of `labels`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (m?.[1] !== name) continue;
    const have = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}

describe('request limits of a service', () => {
  let nats: SecureNats;
  before(async () => {
    nats = await startSecureNats();
  });
  after(async () => {
    await nats.close();
  });

  it('answers a request over --max-request-bytes with too_large naming `request` and the limit, without decoding it', async () => {
    const probe = await startProbe({ ...nats.env(PROBE_PRINCIPAL), PROBE_COMPONENT: 'sizer' }, [
      '--max-request-bytes',
      '1024',
    ]);
    const nc = await nats.connect();
    try {
      const rpc = createRpcClient(nc, disabledTracing);
      const echo = subjects.endpoint('sizer', 'echo');
      const big = { text: 'x'.repeat(2000) };
      const bigBytes = JSON.stringify(big).length;
      await assert.rejects(rpc.request(echo, big, EchoReply), (err: unknown) => {
        assert.ok(err instanceof CiliateError);
        assert.equal(err.code, 'too_large');
        assert.equal(err.status, 413);
        assert.equal(err.field, 'request');
        assert.equal(
          err.message,
          `request: Too long: ${bigBytes} bytes, the limit is 1024 bytes (--max-request-bytes)`,
        );
        return true;
      });
      // Not JSON at all: refused for its size, not its syntax, since it is never parsed.
      const raw = await nc.request(echo, new Uint8Array(4096).fill(0x7b), { timeout: 5000 });
      assert.equal(raw.headers?.get(ERROR_CODE_HEADER), '413');
      // The same garbage under the limit is parsed, and refused for what it is.
      const small = await nc.request(echo, new Uint8Array(100).fill(0x7b), { timeout: 5000 });
      assert.equal(small.headers?.get(ERROR_CODE_HEADER), '400');

      const ok = await rpc.request(echo, { text: 'y'.repeat(1000) }, EchoReply);
      assert.equal(ok.text.length, 1000, 'a request of 1,011 bytes is under the limit');

      const metrics = await metricsOf(probe.httpAddress);
      assert.equal(
        sample(metrics, 'ciliate_rpc_refused_total', { endpoint: 'echo', reason: 'size' }),
        2,
      );
      assert.equal(
        sample(metrics, 'ciliate_runtime_requests_total', {
          endpoint: 'echo',
          outcome: 'too_large',
        }),
        2,
      );
      assert.equal(probe.proc.child.exitCode, null);
    } finally {
      await probe.proc.kill('SIGKILL');
      await nc.close();
    }
  });

  it('answers requests beyond --max-inflight-requests with busy at once, for every endpoint, and serves again when the flood is over', async () => {
    const probe = await startProbe({ ...nats.env(PROBE_PRINCIPAL), PROBE_COMPONENT: 'flooded' }, [
      '--max-inflight-requests',
      '4',
    ]);
    const nc = await nats.connect();
    try {
      const rpc = createRpcClient(nc, disabledTracing);
      const slow = subjects.endpoint('flooded', 'slow');
      const echo = subjects.endpoint('flooded', 'echo');
      const holdMs = 3000;
      const sent = Date.now();
      const outcomes: { at: number; code: string }[] = [];
      const flood = Array.from({ length: 12 }, (_, i) =>
        rpc.request(slow, { text: `f${i}`, ms: holdMs }, EchoReply, { timeoutMs: 15_000 }).then(
          () => outcomes.push({ at: Date.now() - sent, code: 'ok' }),
          (err: unknown) => {
            assert.ok(err instanceof CiliateError, String(err));
            assert.equal(err.code, 'busy');
            assert.equal(err.status, 429);
            assert.match(err.message, /flooded has 4 requests in flight.*--max-inflight-requests/);
            outcomes.push({ at: Date.now() - sent, code: err.code });
          },
        ),
      );
      await waitFor(
        'the excess refused',
        () => (outcomes.filter((o) => o.code === 'busy').length === 8 ? true : undefined),
        { timeoutMs: holdMs },
      );
      assert.equal(outcomes.filter((o) => o.code === 'ok').length, 0, 'the first four still run');

      // While the four run, every other endpoint is full too, and a request is refused before
      // it is parsed (garbage gets busy, not bad_request).
      await assert.rejects(rpc.request(echo, { text: 'hi' }, EchoReply), /in flight/);
      const garbage = await nc.request(echo, new TextEncoder().encode('{not json'), {
        timeout: 5000,
      });
      assert.equal(garbage.headers?.get(ERROR_CODE_HEADER), '429');
      // Health stays out of the cap: a busy instance is not a dead one.
      const [instance] = (await discoverInstances(nc)).filter((s) => s.component === 'flooded');
      assert.ok(instance);
      assert.equal((await fetchHealth(nc, instance))?.ready, true);
      assert.equal((await getStatus(`http://${probe.httpAddress}/healthz`)).status, 200);
      assert.equal(
        sample(await metricsOf(probe.httpAddress), 'ciliate_rpc_inflight_requests', {}),
        4,
      );

      await Promise.all(flood);
      const oks = outcomes.filter((o) => o.code === 'ok');
      const busy = outcomes.filter((o) => o.code === 'busy');
      assert.equal(oks.length, 4);
      assert.ok(
        Math.max(...busy.map((o) => o.at)) < Math.min(...oks.map((o) => o.at)),
        `refusals come before the admitted requests finish: ${JSON.stringify(outcomes)}`,
      );

      const again = await rpc.request(echo, { text: 'after' }, EchoReply);
      assert.deepEqual(again, { text: 'after', by: 'flooded' });
      const metrics = await metricsOf(probe.httpAddress);
      assert.equal(
        sample(metrics, 'ciliate_rpc_refused_total', { endpoint: 'slow', reason: 'inflight' }),
        8,
      );
      assert.equal(
        sample(metrics, 'ciliate_rpc_refused_total', { endpoint: 'echo', reason: 'inflight' }),
        2,
      );
      assert.equal(
        sample(metrics, 'ciliate_runtime_requests_total', { endpoint: 'slow', outcome: 'busy' }),
        8,
      );
      assert.equal(
        sample(metrics, 'ciliate_runtime_requests_total', { endpoint: 'slow', outcome: 'ok' }),
        4,
      );
      assert.equal(sample(metrics, 'ciliate_rpc_inflight_requests', {}), 0);
      // One warning for the burst, not one per refusal.
      const warned = probe.proc
        .jsonLines<{ event?: string; refused?: number }>()
        .filter((l) => l.event === 'rpc.refused');
      assert.equal(warned.length, 1, JSON.stringify(warned));
      assert.equal(probe.proc.child.exitCode, null, 'the same process throughout');
    } finally {
      await probe.proc.kill('SIGKILL');
      await nc.close();
    }
  });
});
