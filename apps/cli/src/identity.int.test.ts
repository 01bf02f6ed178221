import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  IdentityAllocateReplySchema,
  IdentityInfoSchema,
  identitySubject,
  identityNodeSubject,
  type Principal,
} from '@ciliate/contracts';
import { createRpcClient, disabledTracing } from '@ciliate/runtime';
import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import { ResourceStore } from '@ciliate/store';
import { spawnNode, waitFor, type NodeProcess } from '@ciliate/testkit';
import type { NatsConnection } from '@nats-io/transport-node';

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));
const IDENTITY = fileURLToPath(import.meta.resolve('@ciliate/identity/main'));
const VIEWER: Principal = { role: 'viewer' };

describe('ciliate identity', () => {
  let nats: SecureNats;
  const conns: NatsConnection[] = [];
  let svc: NodeProcess;
  let web: number;

  // Reading identities is a viewer's right: the CLI runs as one, its credentials in the
  // environment or in flags.
  async function cli(
    args: string[],
    how: 'env' | 'flags' = 'env',
  ): Promise<{ code: number | null; out: string }> {
    const creds = nats.env(VIEWER);
    const flags = [
      ['--nats', creds.CILIATE_NATS_URL!],
      ['--nkey', creds.CILIATE_NATS_NKEY!],
      ['--tls-ca', creds.CILIATE_NATS_TLS_CA!],
      ['--tls-cert', creds.CILIATE_NATS_TLS_CERT!],
      ['--tls-key', creds.CILIATE_NATS_TLS_KEY!],
    ].flat();
    const p = spawnNode(CLI, how === 'flags' ? [...args, ...flags] : args, {
      env: {
        CILIATE_CONTEXT_FILE: '/nonexistent/context.json',
        ...(how === 'env' ? creds : {}),
      },
    });
    const { code } = await p.exited;
    return { code, out: p.output() };
  }

  before(async () => {
    nats = await startSecureNats({ nodes: ['node-a', 'node-b'] });
    // The store's buckets are the kube-bridge's (or an operator's) to create.
    const admin = await nats.connect();
    conns.push(admin);
    await ResourceStore.open(admin);
    svc = spawnNode(IDENTITY, [], {
      env: {
        ...nats.env({ role: 'identity' }),
        CILIATE_HTTP_ADDRESS: '127.0.0.1:0',
        CILIATE_NODE: 'id-0',
      },
    });
    await waitFor(
      'ciliate-identity',
      () => (svc.output().includes('identity.synced') ? true : undefined),
      {
        timeoutMs: 20_000,
      },
    );
    // Each node's datapath allocates for its own pods, with its own credentials.
    const rpcs = new Map<string, ReturnType<typeof createRpcClient>>();
    for (const node of ['node-a', 'node-b']) {
      const nc = await nats.connect({ role: 'datapath', node });
      conns.push(nc);
      rpcs.set(node, createRpcClient(nc, disabledTracing));
    }
    const alloc = (node: string, labels: string[]) =>
      rpcs
        .get(node)!
        .request(
          identityNodeSubject('allocate', node),
          { node, labels },
          IdentityAllocateReplySchema,
        );
    const viewer = await nats.connect(VIEWER);
    conns.push(viewer);
    const rpc = createRpcClient(viewer, disabledTracing);
    web = (await alloc('node-a', ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop'])).id;
    await alloc('node-b', ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop']);
    await alloc('node-a', ['k8s:app=db', 'k8s:io.kubernetes.pod.namespace=shop']);
    // The service answers list and get from its mirror: wait until it shows both references.
    await waitFor('the mirror', async () => {
      const i = await rpc.request(identitySubject('lookup'), { id: web }, IdentityInfoSchema);
      return i.references === 2 ? true : undefined;
    });
  });
  after(async () => {
    for (const nc of conns) await nc.close().catch(() => undefined);
    await svc?.kill('SIGKILL');
    await nats?.close();
  });

  it('lists identities as JSON, reserved ones first, with reference counts', async () => {
    const { code, out } = await cli(['identity', 'list', '-o', 'json']);
    assert.equal(code, 0, out);
    const parsed = JSON.parse(out) as { kind: string; items: unknown };
    assert.equal(parsed.kind, 'IdentityList');
    const report = { items: IdentityInfoSchema.array().parse(parsed.items) };
    assert.equal(report.items[0]!.id, 1);
    assert.deepEqual(report.items[0]!.labels, ['reserved:host']);
    const w = report.items.find((i) => i.id === web)!;
    assert.deepEqual(w.labels, ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop']);
    assert.equal(w.references, 2);
    assert.deepEqual(w.nodes, ['node-a', 'node-b']);
    assert.equal(report.items.filter((i) => !i.reserved).length, 2);
  });

  it('prints a table by default', async () => {
    const { code, out } = await cli(['identity', 'list']);
    assert.equal(code, 0, out);
    assert.match(out, /^ID\s+REFS\s+NODES\s+LABELS$/m);
    assert.match(
      out,
      new RegExp(
        `^${web}\\s+2\\s+node-a,node-b\\s+k8s:app=web k8s:io.kubernetes.pod.namespace=shop$`,
        'm',
      ),
    );
    assert.match(out, /^1\s+-\s+-\s+reserved:host$/m);
  });

  it('gets one identity with labels, references and nodes', async () => {
    const { code, out } = await cli(['identity', 'get', String(web)]);
    assert.equal(code, 0, out);
    assert.match(out, new RegExp(`^ID:\\s+${web}$`, 'm'));
    assert.match(out, /^ {2}k8s:app=web$/m);
    assert.match(out, /^References:\s+2$/m);
    assert.match(out, /^Nodes:\s+node-a, node-b$/m);
    const json = await cli(['identity', 'get', String(web), '-o', 'json'], 'flags');
    assert.equal(json.code, 0, json.out);
    assert.equal(IdentityInfoSchema.parse(JSON.parse(json.out)).references, 2);
  });

  it('says so when an identity does not exist, and refuses a non-numeric one', async () => {
    const missing = await cli(['identity', 'get', '65000']);
    assert.equal(missing.code, 1);
    assert.match(missing.out, /identity 65000 not found/);
    const bad = await cli(['identity', 'get', 'web']);
    assert.equal(bad.code, 2);
    assert.match(bad.out, /numeric identity/);
  });
});
