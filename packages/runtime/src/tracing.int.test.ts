import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';

import { subjects } from '@ciliate/contracts';
import { waitFor } from '@ciliate/testkit';

import { PROBE_PRINCIPAL, startProbe, type Probe } from './testing.int-helpers.js';
import { startSecureNats, type SecureNats } from './testing/secure-nats.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
}

/** A minimal OTLP/HTTP JSON trace receiver: what a collector would get. */
async function startCollector(): Promise<{
  url: string;
  spans: { service: string; span: OtlpSpan }[];
  close(): Promise<void>;
}> {
  const spans: { service: string; span: OtlpSpan }[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const parsed = JSON.parse(body) as {
        resourceSpans: {
          resource: { attributes: { key: string; value: { stringValue?: string } }[] };
          scopeSpans: { spans: OtlpSpan[] }[];
        }[];
      };
      for (const rs of parsed.resourceSpans) {
        const service =
          rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '?';
        for (const ss of rs.scopeSpans) for (const span of ss.spans) spans.push({ service, span });
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('tracing across services', () => {
  let nats: SecureNats;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  const probes: Probe[] = [];
  before(async () => {
    nats = await startSecureNats();
    collector = await startCollector();
  });
  after(async () => {
    for (const p of probes) await p.proc.kill('SIGKILL');
    await collector.close();
    await nats.close();
  });

  it('continues a trace started in one service in the service it calls', async () => {
    const otel = {
      ...nats.env(PROBE_PRINCIPAL),
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    probes.push(await startProbe({ ...otel, PROBE_COMPONENT: 'back', PROBE_LISTEN_TO: 'front' }));
    probes.push(await startProbe({ ...otel, PROBE_COMPONENT: 'front', PROBE_RELAY_TO: 'back' }));

    const nc = await nats.connect();
    try {
      // A caller without tracing: the trace starts in the front service.
      const reply = await nc.request(
        subjects.endpoint('front', 'relay'),
        JSON.stringify({ text: 'hello' }),
        { timeout: 5000 },
      );
      assert.deepEqual(reply.json(), { text: 'hello', by: 'back' });
    } finally {
      await nc.close();
    }

    const frontServer = await waitFor('the front server span', () =>
      collector.spans.find(
        (s) =>
          s.service === 'ciliate-front' &&
          s.span.name === `${subjects.endpoint('front', 'relay')} process`,
      ),
    );
    const frontClient = await waitFor('the front client span', () =>
      collector.spans.find(
        (s) =>
          s.service === 'ciliate-front' &&
          s.span.name === `${subjects.endpoint('back', 'echo')} send`,
      ),
    );
    const backServer = await waitFor('the back server span', () =>
      collector.spans.find(
        (s) =>
          s.service === 'ciliate-back' &&
          s.span.name === `${subjects.endpoint('back', 'echo')} process`,
      ),
    );

    assert.equal(frontServer.span.parentSpanId ?? '', '', 'the trace starts in the front service');
    assert.equal(frontServer.span.kind, 2, 'SERVER');
    assert.equal(frontClient.span.kind, 3, 'CLIENT');
    assert.equal(backServer.span.kind, 2, 'SERVER');
    assert.equal(frontClient.span.traceId, frontServer.span.traceId);
    assert.equal(
      backServer.span.traceId,
      frontServer.span.traceId,
      'one trace across both services',
    );
    assert.equal(frontClient.span.parentSpanId, frontServer.span.spanId);
    assert.equal(
      backServer.span.parentSpanId,
      frontClient.span.spanId,
      'the back span is a child of the call',
    );
  });
});
