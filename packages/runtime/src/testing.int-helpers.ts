// Helpers shared by the runtime's integration tests (not exported from the package).
import { fileURLToPath } from 'node:url';

import type { Principal } from '@ciliate/contracts';
import { spawnNode, waitFor, type NodeProcess } from '@ciliate/testkit';

export const PROBE = fileURLToPath(new URL('./fixtures/probe-service.js', import.meta.url));

/** The principal the probe runs as (its `role`): a secured server's env for it is its env. */
export const PROBE_PRINCIPAL: Principal = { role: 'admin' };

export interface Probe {
  proc: NodeProcess;
  httpAddress: string;
}

export async function startProbe(env: Record<string, string>, args: string[] = []): Promise<Probe> {
  const proc = spawnNode(PROBE, args, {
    env: {
      CILIATE_HTTP_ADDRESS: '127.0.0.1:0',
      CILIATE_LOG_LEVEL: 'info',
      CILIATE_NODE: 'test-node',
      ...env,
    },
  });
  try {
    return { proc, httpAddress: await waitUntilStarted(proc) };
  } catch (err) {
    await proc.kill('SIGKILL');
    throw new Error(
      `${(err as Error).message}\n--- probe output ---\n${proc.output().slice(-3000)}`,
    );
  }
}

async function waitUntilStarted(proc: NodeProcess): Promise<string> {
  const httpAddress = await waitFor(
    'the probe to listen',
    () => {
      if (proc.child.exitCode !== null) throw new Error(`probe exited: ${proc.output()}`);
      return proc
        .jsonLines<{ event?: string; address?: string }>()
        .find((l) => l.event === 'http.listening')?.address;
    },
    { timeoutMs: 15_000 },
  );
  await waitFor(
    'the probe to start',
    () =>
      proc.jsonLines<{ event?: string }>().some((l) => l.event === 'started') ? true : undefined,
    { timeoutMs: 15_000 },
  );
  return httpAddress;
}

export async function getStatus(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}
