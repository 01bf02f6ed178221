// Helpers shared by the IPAM service's integration tests (not exported from the package): the
// service runs as a child process, so a test can SIGKILL it like a crash.
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
} from '@ciliate/contracts';
import { createRpcClient, disabledTracing, type RpcClient } from '@ciliate/runtime';
import { spawnNode, waitFor, type NodeProcess } from '@ciliate/testkit';
import type { NatsConnection } from '@nats-io/transport-node';

export const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

export async function startIpam(
  natsUrl: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<NodeProcess> {
  const proc = spawnNode(MAIN, args, {
    env: {
      CILIATE_NATS_URL: natsUrl,
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

export function ipamClient(nc: NatsConnection, timeoutMs = 5_000) {
  const rpc: RpcClient = createRpcClient(nc, disabledTracing);
  return {
    allocate: (req: IpamAllocateRequest) =>
      rpc.request(ipamNodeSubject('allocate', req.node), req, IpamAllocateReplySchema, {
        timeoutMs,
      }),
    release: (req: IpamReleaseRequest) =>
      rpc.request(ipamNodeSubject('release', req.node ?? ''), req, IpamReleaseReplySchema, {
        timeoutMs,
      }),
    list: (node?: string) =>
      rpc.request(ipamSubject('list'), node ? { node } : {}, IpamListReplySchema, { timeoutMs }),
    nodeCidrs: (node: string) =>
      rpc.request(ipamNodeSubject('node-cidrs', node), { node }, IpamNodeCidrsReplySchema, {
        timeoutMs,
      }),
    status: () => rpc.request(ipamSubject('status'), {}, IpamStatusReplySchema, { timeoutMs }),
    raw: rpc,
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
