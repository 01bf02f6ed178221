// Helpers of the identity service's integration tests (not exported): start the real service as
// a child process (so it can be SIGKILLed), talk to it, read its bucket.
import { fileURLToPath } from 'node:url';

import {
  IDENTITY_CLUSTER_ENDPOINTS,
  buckets,
  identityNodeSubject,
  identitySubject,
  type IdentityClusterEndpoint,
  type IdentityEndpoint,
  type IdentityNodeEndpoint,
} from '@ciliate/contracts';
import { createRpcClient, disabledTracing, type RpcClient } from '@ciliate/runtime';
import { spawnNode, waitFor, type NodeProcess } from '@ciliate/testkit';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { z } from 'zod';

export const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

export interface IdentityProcess {
  proc: NodeProcess;
  httpAddress: string;
}

/** Starts ciliate-identity and waits until it reports started (and, by default, synced). */
export async function startIdentity(
  env: Record<string, string>,
  opts: { waitSynced?: boolean } = {},
): Promise<IdentityProcess> {
  const proc = spawnNode(MAIN, [], {
    env: {
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

export function identityClient(nc: NatsConnection): {
  rpc: RpcClient;
  call: <S extends z.ZodType>(
    ep: IdentityEndpoint,
    body: unknown,
    reply: S,
    timeoutMs?: number,
  ) => Promise<z.output<S>>;
} {
  const rpc = createRpcClient(nc, disabledTracing);
  return {
    rpc,
    // Node-scoped endpoints go to the node the body names; cluster-wide ones to their subject
    // (the ipcache ones too: the tests act as an operator there).
    call: (ep, body, reply, timeoutMs = 5000) => {
      const node = (body as { node?: unknown } | null)?.node;
      const subject = (IDENTITY_CLUSTER_ENDPOINTS as readonly string[]).includes(ep)
        ? identitySubject(ep as IdentityClusterEndpoint)
        : identityNodeSubject(
            ep as IdentityNodeEndpoint,
            typeof node === 'string' && node !== '' ? node : 'no-node',
          );
      return rpc.request(subject, body, reply, { timeoutMs });
    },
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
