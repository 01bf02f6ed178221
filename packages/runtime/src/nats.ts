// The NATS connection every service holds: reconnects forever, and carries the options a
// production NATS needs (credentials or nkey file, TLS with CA, certificate and key).
//
// Credentials are read at every (re)connect, not once: after a rotation (new files, then
// nats-server reloads and drops the connections of users it no longer has) a service reconnects
// with the new ones instead of being locked out until restarted. nats.js calls the authenticator
// for every connect; the Node transport reads the TLS CA, certificate and key files at every TLS
// handshake by itself.
import { readFileSync } from 'node:fs';

import {
  connect,
  createInbox,
  credsAuthenticator,
  nkeyAuthenticator,
  type Authenticator,
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

/**
 * An authenticator whose secret comes from `file`, read again at every connect. A read that
 * fails or does not parse (the file being rewritten by a rotation) keeps the last good content:
 * that connect may then be refused, and the next one reads again, whereas an authenticator that
 * throws would close the connection for good. The first read happens here, so a missing or
 * broken file still fails at start.
 */
function fileAuthenticator(
  file: string,
  read: (text: string) => Uint8Array,
  make: (secret: () => Uint8Array) => Authenticator,
): Authenticator {
  const load = (): Uint8Array => {
    const secret = read(readFileSync(file, 'utf8'));
    // what the authenticator will do with it, without a nonce: throws on a malformed secret
    make(() => secret)(undefined);
    return secret;
  };
  let last = load();
  return make(() => {
    try {
      last = load();
    } catch {
      // keep the last good secret
    }
    return last;
  });
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
    // A refused connect during a rotation (files and server not yet in step) is retried like
    // any other; nats.js would otherwise give up after the second authorization error in a row.
    ignoreAuthErrorAbort: true,
    ...(s.inboxPrefix ? { inboxPrefix: s.inboxPrefix } : {}),
  };
  const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
  if (s.credsFile) {
    opts.authenticator = fileAuthenticator(s.credsFile, encode, (creds) =>
      credsAuthenticator(creds),
    );
  } else if (s.nkeySeedFile) {
    opts.authenticator = fileAuthenticator(
      s.nkeySeedFile,
      (text) => encode(text.trim()),
      (seed) => nkeyAuthenticator(seed),
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
