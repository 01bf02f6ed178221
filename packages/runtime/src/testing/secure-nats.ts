// A real nats-server configured as a deployment runs it: mutual TLS and one nkey user per
// principal with the rights of contracts' access table. For tests (exported as
// @ciliate/runtime/testing, never imported by a service).
import { join } from 'node:path';

import { principalName, inboxPrefix, type Principal } from '@ciliate/contracts';
import { startNats, type NatsServer } from '@ciliate/testkit';
import { connect, type NatsConnection } from '@nats-io/transport-node';

import { natsConnectionOptions } from '../nats.js';
import { credentialEnv, issueSecurity, type SecurityBundle } from '../security.js';

export interface SecureNats {
  readonly server: NatsServer;
  readonly bundle: SecurityBundle;
  /** tls://127.0.0.1:<port> */
  readonly url: string;
  /** The environment a service needs to connect as `p` (URL, nkey, CA, certificate, key). */
  env(p: Principal): Record<string, string>;
  /** Connects as `p` (the admin by default), with its own inbox prefix. */
  connect(p?: Principal, opts?: { certOf?: Principal }): Promise<NatsConnection>;
  close(): Promise<void>;
}

const ADMIN: Principal = { role: 'admin' };

/** Starts one secured nats-server with credentials for `principals` (and an admin). */
export async function startSecureNats(principals: readonly Principal[]): Promise<SecureNats> {
  let bundle: SecurityBundle | undefined;
  const all = [ADMIN, ...principals.filter((p) => p.role !== 'admin')];
  const server = await startNats({
    extraConfig: async (dir) => {
      bundle = await issueSecurity(join(dir, 'security'), all);
      // nats-server resolves an include against the configuration's own directory
      return `include "security/nats-security.conf"`;
    },
  });
  const url = server.url.replace(/^nats:/, 'tls:');
  const b = bundle!;
  const settingsOf = (p: Principal, certOf: Principal = p) => {
    const env = credentialEnv(b, principalName(p));
    const cert = credentialEnv(b, principalName(certOf));
    return {
      servers: url,
      name: principalName(p),
      nkeySeedFile: env.CILIATE_NATS_NKEY,
      tlsCaFile: env.CILIATE_NATS_TLS_CA,
      tlsCertFile: cert.CILIATE_NATS_TLS_CERT,
      tlsKeyFile: cert.CILIATE_NATS_TLS_KEY,
      inboxPrefix: inboxPrefix(p),
    };
  };
  return {
    server,
    bundle: b,
    url,
    env: (p) => ({ CILIATE_NATS_URL: url, ...credentialEnv(b, principalName(p)) }),
    connect: (p = ADMIN, opts = {}) =>
      connect(natsConnectionOptions(settingsOf(p, opts.certOf ?? p))),
    close: () => server.close(),
  };
}
