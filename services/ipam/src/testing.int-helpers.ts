// Helpers shared by the IPAM service's integration tests (not exported from the package): the
// service runs as a child process with its own credentials, so a test can SIGKILL it like a
// crash, and is called as the principal a caller would be.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  IpamAllocateReplySchema,
  IpamListReplySchema,
  IpamNodeCidrsReplySchema,
  IpamReleaseReplySchema,
  IpamStatusReplySchema,
  ipamSubject,
  ipamNodeSubject,
  type IpamAllocateRequest,
  type IpamReleaseRequest,
  type Principal,
} from '@ciliate/contracts';
import { createRpcClient, disabledTracing, type RpcClient } from '@ciliate/runtime';
import type { SecureNats } from '@ciliate/runtime/testing';
import { spawnNode, waitFor, type NodeProcess } from '@ciliate/testkit';

export const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** A secured nats-server or cluster (@ciliate/runtime/testing): what the helpers need of it. */
export type SecuredNats = Pick<SecureNats, 'env' | 'connect' | 'pool'>;

export const IPAM: Principal = { role: 'ipam' };

/**
 * Starts ciliate-ipam as the IPAM principal. The resource store's buckets must exist (the
 * kube-bridge's or the admin's to create).
 */
export async function startIpam(
  nats: SecuredNats,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<NodeProcess> {
  const proc = spawnNode(MAIN, args, {
    env: {
      ...nats.env(IPAM),
      CILIATE_HTTP_ADDRESS: '127.0.0.1:0',
      CILIATE_LOG_LEVEL: process.env.IPAM_LOG_LEVEL ?? 'info',
      CILIATE_NODE: 'ipam-test',
      CILIATE_IPAM_LEASE_TTL: '1s',
      ...env,
    },
  });
  try {
    await waitFor(
      'the IPAM service to start',
      () => {
        if (proc.child.exitCode !== null) throw new Error(`ipam exited: ${proc.output()}`);
        return proc.jsonLines<{ event?: string }>().some((l) => l.event === 'service.started')
          ? true
          : undefined;
      },
      { timeoutMs: 20_000 },
    );
  } catch (err) {
    await proc.kill('SIGKILL');
    throw new Error(
      `${(err as Error).message}\n--- ipam output ---\n${proc.output().slice(-3000)}`,
    );
  }
  return proc;
}

/**
 * Calls IPAM as its callers would: a node's requests for itself (allocate, release, node-cidrs)
 * as that node's datapath (the server must have issued it: `nodes` of startSecureNats), the
 * cluster-wide ones (list, status) as an operator, the admin. `close()` closes what it opened.
 */
export function ipamClient(nats: SecuredNats, timeoutMs = 5_000) {
  const pool = nats.pool();
  const as = async (p: Principal): Promise<RpcClient> =>
    createRpcClient(await pool.get(p), disabledTracing);
  const datapath = (node: string): Promise<RpcClient> => as({ role: 'datapath', node });
  const admin = (): Promise<RpcClient> => as({ role: 'admin' });
  return {
    allocate: async (req: IpamAllocateRequest) =>
      (await datapath(req.node)).request(
        ipamNodeSubject('allocate', req.node),
        req,
        IpamAllocateReplySchema,
        { timeoutMs },
      ),
    /** As `node`, by default the one the body names (a body without it is still the node's). */
    release: async (req: IpamReleaseRequest, node = req.node) => {
      if (node === undefined) throw new Error('release: name the node that asks');
      return (await datapath(node)).request(
        ipamNodeSubject('release', node),
        req,
        IpamReleaseReplySchema,
        { timeoutMs },
      );
    },
    list: async (node?: string) =>
      (await admin()).request(ipamSubject('list'), node ? { node } : {}, IpamListReplySchema, {
        timeoutMs,
      }),
    nodeCidrs: async (node: string) =>
      (await datapath(node)).request(
        ipamNodeSubject('node-cidrs', node),
        { node },
        IpamNodeCidrsReplySchema,
        { timeoutMs },
      ),
    status: async () =>
      (await admin()).request(ipamSubject('status'), {}, IpamStatusReplySchema, { timeoutMs }),
    /** An RPC client of a node's datapath, for requests the typed calls cannot make. */
    datapath,
    close: () => pool.close(),
  };
}

export function owner(pod: string, ns = 'default', ifname = 'eth0') {
  return { namespace: ns, pod, containerID: `c-${pod}`, ifname };
}

/** The seed manifests directory: CILIATE_FIXTURES_DIR, else the repository's fixtures/. */
export function seedManifestsDir(): string {
  const env = process.env.CILIATE_FIXTURES_DIR;
  if (env) return join(env, 'seed-manifests');
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'fixtures', 'seed-manifests');
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error('fixtures/seed-manifests not found (set CILIATE_FIXTURES_DIR)');
    dir = up;
  }
}
