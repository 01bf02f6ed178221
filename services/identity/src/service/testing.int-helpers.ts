// Helpers of the identity service's integration tests (not exported): start the real service as
// a child process (so it can be SIGKILLed) with its own credentials, talk to it as the principal
// a caller would be, read its bucket.
import { fileURLToPath } from 'node:url';

import {
  IDENTITY_CLUSTER_ENDPOINTS,
  buckets,
  identityNodeSubject,
  identitySubject,
  type IdentityClusterEndpoint,
  type IdentityEndpoint,
  type IdentityNodeEndpoint,
  type Principal,
} from '@ciliate/contracts';
import { createRpcClient, disabledTracing, type RpcClient } from '@ciliate/runtime';
import type { SecureNats } from '@ciliate/runtime/testing';
import { spawnNode, waitFor, type NodeProcess } from '@ciliate/testkit';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { z } from 'zod';

export const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

export interface IdentityProcess {
  proc: NodeProcess;
  httpAddress: string;
}

/** A secured nats-server or cluster (@ciliate/runtime/testing): what the helpers need of it. */
export type SecuredNats = Pick<SecureNats, 'env' | 'connect' | 'pool'>;

export const IDENTITY: Principal = { role: 'identity' };

/**
 * Starts ciliate-identity as the identity principal and waits until it reports started (and, by
 * default, synced). The resource store's buckets must exist (the kube-bridge's or admin's).
 */
export async function startIdentity(
  nats: SecuredNats,
  env: Record<string, string> = {},
  opts: { waitSynced?: boolean } = {},
): Promise<IdentityProcess> {
  const proc = spawnNode(MAIN, [], {
    env: {
      ...nats.env(IDENTITY),
      CILIATE_HTTP_ADDRESS: '127.0.0.1:0',
      CILIATE_LOG_LEVEL: 'info',
      CILIATE_NODE: 'identity-1',
      ...env,
    },
  });
  try {
    const httpAddress = await waitFor(
      'ciliate-identity to start',
      () => {
        if (proc.child.exitCode !== null) throw new Error(`exited: ${proc.output()}`);
        const lines = proc.jsonLines<{ event?: string; address?: string }>();
        if (!lines.some((l) => l.event === 'service.started')) return undefined;
        if (opts.waitSynced !== false && !lines.some((l) => l.event === 'identity.synced')) {
          return undefined;
        }
        return lines.find((l) => l.event === 'http.listening')?.address ?? '';
      },
      { timeoutMs: 30_000 },
    );
    return { proc, httpAddress };
  } catch (err) {
    await proc.kill('SIGKILL');
    throw err;
  }
}

export interface IdentityClient {
  call: <S extends z.ZodType>(
    ep: IdentityEndpoint,
    body: unknown,
    reply: S,
    timeoutMs?: number,
  ) => Promise<z.output<S>>;
  /** Closes the connections the client opened. */
  close(): Promise<void>;
}

/**
 * Calls the identity service as its callers would: a node-scoped endpoint on the node the body
 * names, as that node's datapath (the server must have issued it: `nodes` of startSecureNats);
 * cluster-wide ones (the ipcache ones too) as an operator, the admin. A body without a node goes
 * to a placeholder node's subject as the admin, to see the service refuse it.
 */
export function identityClient(nats: SecuredNats): IdentityClient {
  const pool = nats.pool();
  const rpcAs = async (p: Principal): Promise<RpcClient> =>
    createRpcClient(await pool.get(p), disabledTracing);
  return {
    call: async (ep, body, reply, timeoutMs = 5000) => {
      if ((IDENTITY_CLUSTER_ENDPOINTS as readonly string[]).includes(ep)) {
        const rpc = await rpcAs({ role: 'admin' });
        return rpc.request(identitySubject(ep as IdentityClusterEndpoint), body, reply, {
          timeoutMs,
        });
      }
      const node = (body as { node?: unknown } | null)?.node;
      const named = typeof node === 'string' && node !== '';
      const rpc = await rpcAs(named ? { role: 'datapath', node } : { role: 'admin' });
      const subject = identityNodeSubject(ep as IdentityNodeEndpoint, named ? node : 'no-node');
      return rpc.request(subject, body, reply, { timeoutMs });
    },
    close: () => pool.close(),
  };
}

/** Every live entry of the identity bucket, as the audit wants them. */
export async function bucketEntries(nc: NatsConnection): Promise<[string, string][]> {
  const kv = await new Kvm(nc).open(buckets.identities());
  const out: [string, string][] = [];
  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  for (const k of keys) {
    const e = await kv.get(k);
    if (e !== null && e.operation === 'PUT') out.push([k, e.string()]);
  }
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export async function bucketValue(
  nc: NatsConnection,
  bucket: string,
  key: string,
): Promise<string | undefined> {
  const kv = await new Kvm(nc).open(bucket);
  const e = await kv.get(key);
  return e !== null && e.operation === 'PUT' ? e.string() : undefined;
}
