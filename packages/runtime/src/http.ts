// One HTTP listener per service: /metrics for Prometheus, /healthz (alive) and /readyz (ready).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Registry } from 'prom-client';

import type { Readiness } from './health.js';

export interface HttpListener {
  /** host:port actually bound (the port is real also when 0 was asked for). */
  readonly address: string;
  close(): Promise<void>;
}

export async function startHttp(
  listen: string,
  deps: { registry: Registry; readiness: Readiness },
): Promise<HttpListener> {
  const idx = listen.lastIndexOf(':');
  const host = listen.slice(0, idx).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(idx + 1));
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body) + '\n');
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      json(405, { error: 'method not allowed' });
      return;
    }
    switch (path) {
      case '/healthz':
        json(200, { alive: true });
        return;
      case '/readyz': {
        const r = deps.readiness.evaluate();
        json(r.ready ? 200 : 503, r);
        return;
      }
      case '/metrics':
        deps.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': deps.registry.contentType });
            res.end(text);
          },
          (err: unknown) => json(500, { error: String(err) }),
        );
        return;
      default:
        json(404, { error: `no such path ${path}; try /metrics, /healthz or /readyz` });
    }
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    address: `${shownHost}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
