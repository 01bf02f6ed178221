// The unix-socket transport between the plugin and the agent.
import { createConnection } from 'node:net';

import type { AgentReply, AgentRequest, AgentTransport } from './protocol.js';

export const unixTransport =
  (timeoutMs = 60_000): AgentTransport =>
  (socketPath: string, request: AgentRequest) =>
    new Promise<AgentReply>((resolve, reject) => {
      const sock = createConnection(socketPath);
      let buf = '';
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      sock.setEncoding('utf8');
      sock.on('connect', () => sock.write(JSON.stringify(request) + '\n'));
      sock.on('data', (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        sock.end();
        try {
          resolve(JSON.parse(buf.slice(0, nl)) as AgentReply);
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
      sock.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      sock.on('close', () => {
        clearTimeout(timer);
        reject(new Error('connection closed without a reply'));
      });
    });
