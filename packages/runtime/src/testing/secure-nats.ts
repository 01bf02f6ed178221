// Real nats-servers configured as the lab and deployments run them: mutual TLS and one nkey user
// per principal with the rights of contracts' access table. For tests (exported as
// @ciliate/runtime/testing, never imported by a service).
import { join } from 'node:path';

import { principalName, principalsFor, type Principal } from '@ciliate/contracts';
import { startNats, startNatsCluster, type NatsCluster, type NatsServer } from '@ciliate/testkit';
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';

import { natsConnectionOptions } from '../nats.js';
import {
  credentialEnv,
  issueSecurity,
  principalNatsSettings,
  type SecurityBundle,
} from '../security.js';

export interface SecureNatsOptions {
  /** Nodes whose datapath and kubelet principals are issued (node-scoped roles). */
  nodes?: readonly string[];
  /** More principals; every cluster-wide role is always issued. */
  principals?: readonly Principal[];
}

interface SecureClients {
  readonly bundle: SecurityBundle;
  /** tls://127.0.0.1:<port>[,...] */
  readonly url: string;
  /** The environment a service needs to connect as `p` (URL, nkey, CA, certificate, key). */
  env(p: Principal): Record<string, string>;
  /** Client options for `p` (the admin by default), with its own inbox prefix. */
  options(p?: Principal, opts?: { certOf?: Principal }): ConnectionOptions;
  /** Connects as `p` (the admin by default). */
  connect(p?: Principal, opts?: { certOf?: Principal }): Promise<NatsConnection>;
  /** One connection per principal, opened on first use; `close()` closes them all. */
  pool(): ConnectionPool;
}

export interface ConnectionPool {
  get(p: Principal): Promise<NatsConnection>;
  close(): Promise<void>;
}

export interface SecureNats extends SecureClients {
  readonly server: NatsServer;
  close(): Promise<void>;
}

export interface SecureNatsCluster extends SecureClients {
  readonly cluster: NatsCluster;
  readonly servers: readonly NatsServer[];
  close(): Promise<void>;
}

const ADMIN: Principal = { role: 'admin' };

/** Every cluster-wide role, and the node-scoped ones for each of `nodes`. */
export function testPrincipals(opts: SecureNatsOptions = {}): Principal[] {
  const all = principalsFor(opts.nodes ?? []);
  const seen = new Set(all.map(principalName));
  for (const p of opts.principals ?? []) {
    if (!seen.has(principalName(p))) all.push(p);
    seen.add(principalName(p));
  }
  return all;
}

function clients(bundle: SecurityBundle, url: string): SecureClients {
  const options = (p: Principal = ADMIN, o: { certOf?: Principal } = {}): ConnectionOptions => {
    credentialEnv(bundle, principalName(p)); // throws when `p` was not issued
    return natsConnectionOptions({
      servers: url,
      name: principalName(p),
      ...principalNatsSettings(bundle.dir, p, o.certOf),
    });
  };
  return {
    bundle,
    url,
    env: (p) => ({ CILIATE_NATS_URL: url, ...credentialEnv(bundle, principalName(p)) }),
    options,
    connect: (p, o) => connect(options(p, o)),
    pool: () => {
      const conns = new Map<string, Promise<NatsConnection>>();
      return {
        get: (p) => {
          let nc = conns.get(principalName(p));
          if (nc === undefined) conns.set(principalName(p), (nc = connect(options(p))));
          return nc;
        },
        close: async () => {
          const all = [...conns.values()];
          conns.clear();
          for (const nc of all) await (await nc.catch(() => undefined))?.close();
        },
      };
    },
  };
}

const tlsUrl = (u: string): string =>
  u
    .split(',')
    .map((x) => x.replace(/^nats:/, 'tls:'))
    .join(',');

/** Starts one secured nats-server (a list of principals is the old form of `principals`). */
export async function startSecureNats(
  opts: SecureNatsOptions | readonly Principal[] = {},
): Promise<SecureNats> {
  const o: SecureNatsOptions = Array.isArray(opts)
    ? { principals: opts as readonly Principal[] }
    : (opts as SecureNatsOptions);
  let bundle: SecurityBundle | undefined;
  const server = await startNats({
    extraConfig: async (dir) => {
      bundle = await issueSecurity(join(dir, 'security'), testPrincipals(o));
      // nats-server resolves an include against the configuration's own directory
      return `include "security/nats-security.conf"`;
    },
  });
  return { ...clients(bundle!, tlsUrl(server.url)), server, close: () => server.close() };
}

/** Starts a secured cluster of JetStream servers (three by default) sharing one CA and users. */
export async function startSecureNatsCluster(
  opts: SecureNatsOptions & { size?: number } = {},
): Promise<SecureNatsCluster> {
  let bundle: SecurityBundle | undefined;
  const cluster = await startNatsCluster({
    ...(opts.size !== undefined ? { size: opts.size } : {}),
    extraConfig: async (base) => {
      bundle = await issueSecurity(join(base, 'security'), testPrincipals(opts));
      // each member's configuration sits one directory below the cluster's
      return `include "../security/nats-security.conf"`;
    },
  });
  return {
    ...clients(bundle!, tlsUrl(cluster.url)),
    cluster,
    servers: cluster.servers,
    close: () => cluster.close(),
  };
}
