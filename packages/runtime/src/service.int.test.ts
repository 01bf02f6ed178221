import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { CiliateError, serviceMetadataKeys, subjects } from '@ciliate/contracts';
import { duplicateJsonKeys, waitFor } from '@ciliate/testkit';
import { z } from 'zod';

import { discoverInstances, fetchHealth } from './discovery.js';
import { createRpcClient } from './rpc.js';
import { PROBE_PRINCIPAL, getStatus, startProbe } from './testing.int-helpers.js';
import { startSecureNats, type SecureNats } from './testing/secure-nats.js';
import { disabledTracing } from './tracing.js';

const EchoReply = z.object({ text: z.string(), by: z.string() });

describe('a service on the runtime', () => {
  let nats: SecureNats;
  before(async () => {
    nats = await startSecureNats();
  });
  after(async () => {
    await nats.close();
  });

  it('is ready only after its initial sync, turns unready when NATS stops and ready again when it is back', async () => {
    const probe = await startProbe({ ...nats.env(PROBE_PRINCIPAL), PROBE_SYNC_DELAY: '1500ms' });
    try {
      const base = `http://${probe.httpAddress}`;
      const early = await getStatus(`${base}/readyz`);
      assert.equal(early.status, 503);
      assert.deepEqual(
        (early.body as { checks: { name: string; ok: boolean }[] }).checks.find(
          (c) => c.name === 'initial-sync',
        )?.ok,
        false,
      );
      await waitFor(
        'ready',
        async () => ((await getStatus(`${base}/readyz`)).status === 200 ? true : undefined),
        { timeoutMs: 5000 },
      );

      await nats.server.stop();
      await waitFor(
        'unready while NATS is down',
        async () => ((await getStatus(`${base}/readyz`)).status === 503 ? true : undefined),
        { timeoutMs: 10_000 },
      );
      const down = await getStatus(`${base}/readyz`);
      assert.deepEqual(
        (down.body as { checks: { name: string; ok: boolean }[] }).checks.find(
          (c) => c.name === 'nats',
        ),
        {
          name: 'nats',
          ok: false,
          detail: 'not connected to NATS',
        },
      );
      assert.equal((await getStatus(`${base}/healthz`)).status, 200, 'alive while NATS is down');

      await nats.server.start();
      await waitFor(
        'ready again',
        async () => ((await getStatus(`${base}/readyz`)).status === 200 ? true : undefined),
        { timeoutMs: 15_000 },
      );
      const metrics = await (await fetch(`${base}/metrics`)).text();
      assert.match(metrics, /ciliate_runtime_nats_connected\{[^}]*\} 1/);
      assert.match(metrics, /ciliate_runtime_nats_reconnects_total\{[^}]*\} [1-9]/);
      assert.equal(probe.proc.child.exitCode, null, 'the same process throughout');
    } finally {
      await probe.proc.kill('SIGKILL');
    }
  });

  it('registers as a micro service that $SRV.PING finds with version and node, and leaves on SIGTERM', async () => {
    const probe = await startProbe({
      ...nats.env(PROBE_PRINCIPAL),
      PROBE_COMPONENT: 'pingme',
      CILIATE_NODE: 'node-7',
      CILIATE_LOG_LEVEL: 'debug',
    });
    const nc = await nats.connect();
    try {
      const mine = (await discoverInstances(nc)).filter((s) => s.component === 'pingme');
      assert.equal(mine.length, 1);
      assert.equal(mine[0]!.version, '0.0.1-test');
      assert.equal(mine[0]!.node, 'node-7');
      assert.equal(mine[0]!.metadata[serviceMetadataKeys.node], 'node-7');
      const health = await fetchHealth(nc, mine[0]!);
      assert.equal(health?.ready, true);
      assert.equal(health?.instanceId, mine[0]!.instanceId);
      const code = await probe.proc.kill('SIGTERM');
      assert.equal(code, 0, 'graceful exit');
      const again = (await discoverInstances(nc)).filter((s) => s.component === 'pingme');
      assert.equal(again.length, 0, 'deregistered after drain');

      // each key once per log line; from registration on, the registered id, also on the lines
      // of parts whose logger was made before it (the lifecycle's)
      const lines = probe.proc
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{"level"'));
      for (const l of lines) assert.deepEqual(duplicateJsonKeys(l), [], l);
      const parsed = lines.map(
        (l) => JSON.parse(l) as { event?: string; subsys?: string; instance?: string },
      );
      const after = parsed.slice(parsed.findIndex((l) => l.event === 'service.started'));
      assert.ok(
        after.some((l) => l.subsys === 'lifecycle'),
        'lifecycle lines after start-up',
      );
      for (const l of after) assert.equal(l.instance, mine[0]!.instanceId, JSON.stringify(l));
    } finally {
      await probe.proc.kill('SIGKILL');
      await nc.close();
    }
  });

  it('answers bad requests with a coded error naming the field, and keeps serving', async () => {
    const probe = await startProbe({ ...nats.env(PROBE_PRINCIPAL), PROBE_COMPONENT: 'echoer' });
    const nc = await nats.connect();
    try {
      const rpc = createRpcClient(nc, disabledTracing);
      await assert.rejects(
        rpc.request(subjects.endpoint('echoer', 'echo'), { text: '' }, EchoReply),
        (err: unknown) => {
          assert.ok(err instanceof CiliateError);
          assert.equal(err.code, 'bad_request');
          assert.equal(err.field, 'text');
          return true;
        },
      );
      await assert.rejects(
        rpc.request(subjects.endpoint('echoer', 'echo'), 'not an object', EchoReply),
        /bad_request|invalid echo request/,
      );
      const ok = await rpc.request(subjects.endpoint('echoer', 'echo'), { text: 'hi' }, EchoReply);
      assert.deepEqual(ok, { text: 'hi', by: 'echoer' });
      await assert.rejects(
        rpc.request(subjects.endpoint('nobody', 'echo'), { text: 'hi' }, EchoReply),
        (err: unknown) => {
          assert.ok(err instanceof CiliateError);
          assert.equal(err.code, 'unavailable');
          return true;
        },
      );
      const metrics = await (await fetch(`http://${probe.httpAddress}/metrics`)).text();
      assert.match(
        metrics,
        /ciliate_runtime_requests_total\{endpoint="echo",outcome="bad_request"[^}]*\} 2/,
      );
    } finally {
      await probe.proc.kill('SIGKILL');
      await nc.close();
    }
  });
});

describe('start-up with a bad setting', () => {
  const cases: [string, Record<string, string>, string[], RegExp][] = [
    [
      'a bad listen address from the environment',
      { CILIATE_HTTP_ADDRESS: 'nowhere' },
      [],
      /invalid setting --http-address \(CILIATE_HTTP_ADDRESS\).*"nowhere" is not host:port/,
    ],
    [
      'a bad duration flag',
      {},
      ['--lease-ttl', '10ms'],
      /invalid setting --lease-ttl \(PROBE_LEASE_TTL\).*from --lease-ttl: 10ms is shorter than 300ms/,
    ],
    [
      'a NATS URL with the wrong scheme',
      { CILIATE_NATS_URL: 'http://127.0.0.1:4222' },
      [],
      /--nats-url \(CILIATE_NATS_URL\).*must use nats:\/\//,
    ],
    ['an unknown flag', {}, ['--no-such-thing'], /unknown flag --no-such-thing/],
    [
      'an in-flight cap of zero',
      { CILIATE_MAX_INFLIGHT_REQUESTS: '0' },
      [],
      /--max-inflight-requests \(CILIATE_MAX_INFLIGHT_REQUESTS\).*0 is below the minimum 1/,
    ],
    [
      'a request size that is not a number',
      {},
      ['--max-request-bytes', '256KiB'],
      /--max-request-bytes \(CILIATE_MAX_REQUEST_BYTES\).*"256KiB" is not an integer/,
    ],
    [
      'a TLS file that does not exist',
      { CILIATE_NATS_TLS_CA: '/nonexistent/ca.pem' },
      [],
      /--nats-tls-ca \(CILIATE_NATS_TLS_CA\).*does not exist/,
    ],
    [
      'an unknown tracing exporter',
      { OTEL_TRACES_EXPORTER: 'zipkinish' },
      [],
      /OTEL_TRACES_EXPORTER: "zipkinish" is not one of otlp, console, none/,
    ],
  ];
  for (const [what, env, args, message] of cases) {
    it(`stops with the setting's name for ${what}`, async () => {
      const { spawnNode } = await import('@ciliate/testkit');
      const { PROBE } = await import('./testing.int-helpers.js');
      const proc = spawnNode(PROBE, args, {
        env: { CILIATE_NATS_URL: 'nats://127.0.0.1:1', ...env },
      });
      const { code } = await proc.exited;
      assert.equal(code, 2, proc.output());
      assert.match(proc.output(), message);
    });
  }
});
