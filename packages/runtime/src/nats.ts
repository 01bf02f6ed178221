// The NATS connection every service holds: reconnects forever, and carries the options a
// production NATS needs (credentials or nkey file, TLS with CA, certificate and key).
import { readFileSync } from 'node:fs';

import {
  connect,
  createInbox,
  credsAuthenticator,
  nkeyAuthenticator,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';

import type { Logger } from './log.js';

export interface NatsSettings {
  servers: string;
  name: string;
  credsFile?: string | undefined;
  nkeySeedFile?: string | undefined;
  tlsCaFile?: string | undefined;
  tlsCertFile?: string | undefined;
  tlsKeyFile?: string | undefined;
  /** This principal's reply subjects (contracts' inboxPrefix): its permissions cover only these. */
  inboxPrefix?: string | undefined;
  /** Keep trying when the first connection fails (services); fail at once otherwise (CLI). */
  waitOnFirstConnect?: boolean;
  timeoutMs?: number;
}

export function natsConnectionOptions(s: NatsSettings): ConnectionOptions {
  const opts: ConnectionOptions = {
    servers: s.servers.split(',').map((u) => u.trim()),
    name: s.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    pingInterval: 10_000,
    waitOnFirstConnect: s.waitOnFirstConnect ?? false,
    timeout: s.timeoutMs ?? 5_000,
    // nats.js otherwise builds two Error objects (stack traces) per request just in case it
    // times out: ~20% of a busy service's CPU (measured on the IPAM allocate path).
    noAsyncTraces: true,
    ...(s.inboxPrefix ? { inboxPrefix: s.inboxPrefix } : {}),
  };
  if (s.credsFile) opts.authenticator = credsAuthenticator(readFileSync(s.credsFile));
  else if (s.nkeySeedFile) {
    opts.authenticator = nkeyAuthenticator(
      new TextEncoder().encode(readFileSync(s.nkeySeedFile, 'utf8').trim()),
    );
  }
  if (s.tlsCaFile || s.tlsCertFile || s.tlsKeyFile) {
    opts.tls = {
      ...(s.tlsCaFile ? { caFile: s.tlsCaFile } : {}),
      ...(s.tlsCertFile ? { certFile: s.tlsCertFile } : {}),
      ...(s.tlsKeyFile ? { keyFile: s.tlsKeyFile } : {}),
    };
  }
  return opts;
}

/**
 * A fresh inbox subject under the connection's own inbox prefix (replies to anything published
 * by hand must land where the principal may subscribe).
 */
export function newInbox(nc: NatsConnection): string {
  const prefix = (nc as unknown as { options?: ConnectionOptions }).options?.inboxPrefix;
  return createInbox(prefix);
}

export interface NatsLink {
  readonly nc: NatsConnection;
  connected(): boolean;
  /** Resolves when the connection has closed for good. */
  readonly closed: Promise<void>;
}

/** Connects and keeps `connected()` current from the client's status events. */
export async function connectNats(
  s: NatsSettings,
  log: Logger,
  hooks: { onChange?: (connected: boolean) => void; onReconnect?: () => void } = {},
): Promise<NatsLink> {
  const nc = await connect(natsConnectionOptions(s));
  let up = true;
  hooks.onChange?.(true);
  log.info({ event: 'nats.connected', server: nc.getServer() }, 'connected to NATS');
  const watch = (async () => {
    for await (const st of nc.status()) {
      switch (st.type) {
        case 'disconnect':
          up = false;
          hooks.onChange?.(false);
          log.warn({ event: 'nats.disconnected', server: st.server }, 'lost the NATS connection');
          break;
        case 'reconnect':
          up = true;
          hooks.onChange?.(true);
          hooks.onReconnect?.();
          log.info({ event: 'nats.reconnected', server: st.server }, 'reconnected to NATS');
          break;
        case 'error':
          log.error({ event: 'nats.error', err: st.error }, 'NATS error');
          break;
        default:
          break;
      }
    }
  })();
  const closed = nc.closed().then(async (err) => {
    up = false;
    hooks.onChange?.(false);
    await watch.catch(() => undefined);
    if (err) log.error({ event: 'nats.closed', err }, 'NATS connection closed with an error');
  });
  return { nc, connected: () => up && !nc.isClosed(), closed };
}
